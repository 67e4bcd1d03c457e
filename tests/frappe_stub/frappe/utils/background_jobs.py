"""execute_job as RQ calls it in a Frappe bench (frappe/utils/background_jobs.py, v15).

Faithful in what a job sees: init + connect the site (sites_path is the worker's current
directory, i.e. the bench's sites/), set the user, resolve a dotted `method` with
frappe.get_attr (so the method's app must be installed on the site), run the `before_job`
hooks, call method(**kwargs), commit on success, on an exception roll back, log the error,
commit that log and re-raise (RQ then marks the job failed), run the `after_job` hooks and the
job's after_job callbacks, destroy at the end.
Not reproduced: frappe.monitor, and the retry of deadlocked jobs (InternalError 1213/1205 or
RetryBackgroundJobError).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import frappe
from frappe.utils import CallbackManager


def get_redis_conn(username: str | None = None, password: str | None = None) -> Any:
    """The RQ Redis of the bench: common_site_config's `redis_queue`."""
    import redis

    url = frappe.local.conf.get("redis_queue")
    if not url:
        raise frappe.ValidationError("redis_queue is not set in common_site_config.json")
    return redis.Redis.from_url(url)


def execute_job(
    site: str,
    method: str | Callable[..., Any],
    event: str | None,
    job_name: str,
    kwargs: dict[str, Any],
    user: str | None = None,
    is_async: bool = True,
    retry: int = 0,
) -> Any:
    """Executes job in a worker, performs commit/rollback and logs if there is any error."""
    retval = None
    if is_async:
        frappe.init(site)
        frappe.connect()
        if os.environ.get("CI"):
            frappe.flags.in_test = True
        if user:
            frappe.set_user(user)

    if isinstance(method, str):
        method_name = method
        method = frappe.get_attr(method)
    else:
        method_name = f"{method.__module__}.{method.__qualname__}"

    frappe.local.job = frappe._dict(site=site, method=method_name, job_name=job_name, kwargs=kwargs, user=user,
                                    after_job=CallbackManager())
    for before_job_task in frappe.get_hooks("before_job"):
        frappe.call(before_job_task, method=method_name, kwargs=kwargs, transaction_type="job")
    try:
        retval = method(**kwargs)
    except Exception:
        frappe.db.rollback()
        frappe.log_error(title=method_name)
        frappe.db.commit()
        raise
    else:
        frappe.db.commit()
        return retval
    finally:
        if not hasattr(frappe.local, "site"):
            frappe.init(site)
            frappe.connect()
        for after_job_task in frappe.get_hooks("after_job"):
            frappe.call(after_job_task, method=method_name, kwargs=kwargs, result=retval)
        frappe.local.job.after_job.run()
        if is_async:
            frappe.destroy()
