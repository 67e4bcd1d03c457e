"""hooks.py of the stand-in BTU app. The real app (Datahenge/btu version-15) declares no
doc_events; its controllers talk to the scheduler daemon themselves."""

app_name = "btu"
app_title = "Background Tasks Unleashed (stand-in)"
app_publisher = "btu-scheduler tests"
app_description = "Stand-in for the BTU app, tests only"
app_license = "MIT"

scheduler_events = {
    "cron": {"0/5 * * * *": ["btu.btu_core.doctype.btu_task_log.btu_task_log.check_in_progress_logs_for_timeout"]},
}
