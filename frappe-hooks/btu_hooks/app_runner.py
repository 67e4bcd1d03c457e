"""Runs a task through the BTU app's own runner:
``btu.btu_core.task_runner.TaskRunner(task, site_name, schedule_id).function_wrapper()``.

The app's runner merges the task's arguments with the schedule's argument_overrides itself (at
run time), writes the BTU Task Log row In-Progress and then finished through documents (so its
start / success / failure e-mails go out), captures stdout and runs BTU-aware classes. It never
raises for a failing task: it records 'Failed' with str(exception). So afterwards the row it
wrote is read back and a Failed or Timeout run is raised as TaskRunFailed, for RQ to mark the
job failed too. A missing or cancelled task is refused first (recorded as Failed, then raised);
an error of the app's runner before it wrote a row (e.g. the task's module cannot be imported)
is recorded as a Failed row by btu_hooks, then re-raised.
"""

from __future__ import annotations

import logging
from typing import Any

import frappe

from btu_hooks.errors import TaskRunFailed
from btu_hooks.own_runner import FAILED, LOG_DOCTYPE, TIMEOUT, TaskLog, load_task_or_record

logger = logging.getLogger("btu_hooks.runner")


def run(task: str, schedule: str | None) -> str | None:
    """Run BTU Task `task` with the app's TaskRunner; returns the row's result_message."""
    from btu.btu_core.task_runner import TaskRunner

    load_task_or_record(TaskLog(task, schedule))
    runner: Any = None
    try:
        runner = TaskRunner(task, frappe.local.site, schedule_id=schedule)
        runner.function_wrapper()
    except Exception as e:
        if getattr(runner, "task_log_name", None) is None:  # the app wrote no row: write one
            TaskLog(task, schedule).record_failure(FAILED, e, stdout="")
        raise
    log_name: str | None = runner.task_log_name
    row = frappe.db.get_value(LOG_DOCTYPE, log_name, ["success_fail", "result_message"], as_dict=True) if log_name else None
    if row is None:
        raise TaskRunFailed(task, log_name, "not recorded", "the BTU app's TaskRunner wrote no BTU Task Log row")
    logger.info("btu run %s (BTU app runner): task=%s schedule=%s log=%s", row["success_fail"], task, schedule, log_name)
    if row["success_fail"] in (FAILED, TIMEOUT):
        raise TaskRunFailed(task, log_name, row["success_fail"], row["result_message"])
    return row["result_message"]
