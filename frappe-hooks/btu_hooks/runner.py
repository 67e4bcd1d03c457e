"""The task runner the daemon's Frappe-mode RQ jobs call, inside
``frappe.utils.background_jobs.execute_job`` (which resolves this path with frappe.get_attr, so
btu_hooks must be installed on the site):

    run_task(task="BTU-00002", schedule="TS-000002", arguments={...merged...},
             due="2026-12-01T03:00:00Z", job_id="<the RQ job id>")

1. The job id goes into the schedule's `redis_job_id` (without touching `modified`) and is
   committed at once, for the BTU app's "last job results" button (it reads `rq:job:<id>`).
2. With the BTU app installed on the site, the run goes through the app's own TaskRunner
   (btu_hooks.app_runner); otherwise through btu_hooks' own runner (btu_hooks.own_runner), which
   reaches the same BTU Task Log record.
3. A failed run raises, so that RQ marks the job failed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import frappe

from btu_hooks import app_runner, own_runner

logger = logging.getLogger("btu_hooks.runner")

SCHEDULE_DOCTYPE = "BTU Task Schedule"
BTU_APP = "btu"


def run_task(
    task: str,
    schedule: str | None = None,
    arguments: Mapping[str, Any] | None = None,
    due: str | None = None,
    job_id: str | None = None,
    **_ignored: Any,
) -> Any:
    """Run BTU Task `task` once (for `schedule`, due at `due`) and record it in a BTU Task Log row.

    `arguments`: the keyword arguments as merged by the daemon; the BTU app's runner merges them
    itself from the rows, btu_hooks' own runner uses them (and merges them when None).
    `job_id`: this job's RQ id (else the current RQ job's). Unknown keyword arguments (from newer
    daemons) are ignored."""
    job_id = job_id or _current_rq_job_id()
    logger.info("btu run started: task=%s schedule=%s due=%s job_id=%s", task, schedule, due, job_id)
    if _ignored:
        logger.debug("btu run: ignoring unknown job arguments %s", sorted(_ignored))
    record_job_id(schedule, job_id)
    if uses_app_runner():
        return app_runner.run(task, schedule)
    return own_runner.run(task, schedule, arguments)


def uses_app_runner() -> bool:
    """Whether runs on this site go through the BTU app's TaskRunner: the app is installed here."""
    return BTU_APP in frappe.get_installed_apps()


def record_job_id(schedule: str | None, job_id: str | None) -> None:
    """schedule.redis_job_id = job_id, `modified` untouched, committed (the row lock is held only
    for this statement's transaction)."""
    if not (schedule and job_id):
        return
    frappe.db.set_value(SCHEDULE_DOCTYPE, schedule, "redis_job_id", job_id, update_modified=False)
    frappe.db.commit()


def _current_rq_job_id() -> str | None:
    try:
        from rq import get_current_job
    except ImportError:
        return None
    job = get_current_job()
    return job.id if job is not None else None
