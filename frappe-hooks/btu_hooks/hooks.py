"""hooks.py of the btu_hooks Frappe app. Frappe reads it from every installed app and caches the
result in Redis: after changing it run `bench --site SITE clear-cache` and `bench restart`."""

from btu_hooks import __version__ as app_version  # noqa: F401  # Frappe apps publish it

app_name = "btu_hooks"
app_title = "BTU Hooks"
app_publisher = "The btu-scheduler authors"
app_description = "Connects the BTU app (Background Tasks Unleashed) to btu-daemon: after-commit notifications and the task runner"
app_email = "btu-scheduler@users.noreply.github.com"
app_license = "MIT"

# Tell the daemon about changes once the transaction has committed (see btu_hooks.doc_events).
doc_events = {
    "BTU Task Schedule": {
        "after_insert": "btu_hooks.doc_events.schedule_changed",
        "on_update": "btu_hooks.doc_events.schedule_changed",
        "on_trash": "btu_hooks.doc_events.schedule_deleted",
    },
    "BTU Task": {
        "on_update": "btu_hooks.doc_events.task_changed",
        "on_update_after_submit": "btu_hooks.doc_events.task_changed",
        "on_submit": "btu_hooks.doc_events.task_changed",
        "on_cancel": "btu_hooks.doc_events.task_changed",
        "on_trash": "btu_hooks.doc_events.task_changed",
    },
    "BTU Configuration": {
        "on_update": "btu_hooks.doc_events.configuration_changed",
    },
}

# The BTU app's controller sends its legacy socket requests from before_save / on_trash, before
# the row is committed; this subclass keeps its checks and leaves the telling to doc_events.
override_doctype_class = {
    "BTU Task Schedule": "btu_hooks.task_schedule.BTUTaskSchedule",
}

# The form's buttons (Pause, Resume, Skip next, Run now, Backfill) and its read-only section of
# upcoming runs and outcomes; they call btu_hooks.schedule_actions (whitelisted methods).
doctype_js = {"BTU Task Schedule": "public/js/btu_task_schedule.js"}

# The per-schedule policies btu-daemon reads (Custom Fields on BTU Task Schedule, see
# btu_hooks.custom_fields): created on install and brought up to date on every migrate; their
# records go on uninstall (the columns and values stay, as Frappe leaves them).
after_install = "btu_hooks.custom_fields.ensure_custom_fields"
after_migrate = "btu_hooks.custom_fields.ensure_custom_fields"
before_uninstall = "btu_hooks.custom_fields.remove_custom_fields"
