"""btu_hooks: the Frappe app of btu-scheduler (install it on every site whose BTU schedules the
btu-daemon runs: `bench --site SITE install-app btu_hooks`).

- ``btu_hooks.hooks``: the app's hooks.py (after-commit doc_events, override_doctype_class).
- ``btu_hooks.doc_events``: tells the btu-daemon about changed schedules after the commit.
- ``btu_hooks.task_schedule.BTUTaskSchedule``: the BTU app's BTU Task Schedule controller without
  its before-commit calls to the daemon's socket.
- ``btu_hooks.runner.run_task``: what the daemon's Frappe-mode RQ jobs call inside
  ``frappe.utils.background_jobs.execute_job``; runs the task through the BTU app's own TaskRunner
  when the app is installed on the site, else through btu_hooks' own runner.

Importing this package does not import Frappe or btu_client; its submodules need Frappe.
"""

from __future__ import annotations

__version__ = "0.2.0"

RUNNER_PATH = "btu_hooks.runner.run_task"
"""The dotted path the daemon's configuration names as the Frappe-mode job method."""
