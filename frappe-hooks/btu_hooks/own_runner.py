"""btu_hooks' own task runner, for sites without the BTU app's TaskRunner. It reaches the result
the app's runner reaches (a BTU Task Log row 'In-Progress', then 'Success' / 'Failed' /
'Timeout', written through documents so the log's after_insert / on_update run), and also:
refuses a missing or cancelled task, keeps the full traceback of a failure, rolls the task's own
writes back when it fails, records RQ's timeout as 'Timeout', and re-raises every failure so
that RQ marks the job failed.

A run:
1. loads the BTU Task (a missing or cancelled task is recorded as Failed and raised);
2. inserts the log row In-Progress (task_component 'Main') and commits it;
3. imports the function_string's module with importlib (like the app: no installed-app check)
   and calls the function with the arguments as keyword arguments; a BTU-aware class is run as
   cls(task name).run(**arguments); what it prints is captured;
4. saves the row as Success (result_message = str() of the return value) or Failed / Timeout
   (the error, its traceback) with execution_time and stdout, and commits.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import logging
import pickle
import sys
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import frappe
from frappe.utils import cint, now_datetime

from btu_hooks.arguments import check_kwargs, merged_arguments
from btu_hooks.capture import OutputCapture, error_text, truncate_bytes
from btu_hooks.errors import BtuHooksError, InvalidArguments, TaskCancelled, TaskFunctionNotFound, TaskNotFound

logger = logging.getLogger("btu_hooks.runner")

TASK_DOCTYPE = "BTU Task"
LOG_DOCTYPE = "BTU Task Log"

IN_PROGRESS = "In-Progress"
SUCCESS = "Success"
FAILED = "Failed"
TIMEOUT = "Timeout"

#: Most characters of captured output kept in the log row (the most recent ones are kept).
MAX_STDOUT_CHARS = 1_000_000
#: result_message is a TEXT column: at most 65,535 bytes.
MAX_RESULT_BYTES = 60_000


def run(task: str, schedule: str | None, arguments: Mapping[str, Any] | None) -> Any:
    """Run BTU Task `task` once and record it. `arguments` (already merged by the daemon) are the
    keyword arguments; when None they are merged here. Returns the function's return value (its
    str() if it cannot be pickled, as RQ stores the result with pickle)."""
    log = TaskLog(task, schedule)
    doc = load_task_or_record(log)
    log.start(doc.get("desc_short"))
    capture = OutputCapture(MAX_STDOUT_CHARS, echo=sys.stdout if cint(doc.get("repeat_log_in_stdout")) else None)
    try:
        function = resolve_function(doc)
        if arguments is not None and not isinstance(arguments, Mapping):
            raise InvalidArguments(f"arguments of the job for BTU Task {task}",
                                   f"expected a dict, got {type(arguments).__name__}")
        kwargs = dict(arguments) if arguments is not None else merged_arguments(doc, schedule)
        check_kwargs(kwargs, f"arguments of the job for BTU Task {task}")
        with contextlib.redirect_stdout(capture):
            result = call_task(function, task, kwargs)
    except BaseException as e:  # recorded (Failed or Timeout), then re-raised unchanged
        status = TIMEOUT if is_timeout(e) else FAILED
        log.record_failure(status, e, stdout=capture.getvalue())
        logger.info("btu run %s: task=%s schedule=%s log=%s", status, task, schedule, log.name)
        raise
    log.finish(SUCCESS, truncate_bytes(str(result), MAX_RESULT_BYTES), capture.getvalue())
    logger.info("btu run Success: task=%s schedule=%s log=%s", task, schedule, log.name)
    return _storable(result)


# --- the log row ---------------------------------------------------------------------------------
class TaskLog:
    """One BTU Task Log row: inserted In-Progress, finished once, both through documents."""

    def __init__(self, task: str, schedule: str | None) -> None:
        self.task = task
        self.schedule = schedule
        self.name: str | None = None
        self.started: datetime = now_datetime()  # naive, in the site's time zone
        self._t0 = time.perf_counter()

    def _insert(self, status: str, desc: str | None, **fields: Any) -> None:
        doc = frappe.get_doc({
            "doctype": LOG_DOCTYPE,
            "task": self.task,
            "task_desc_short": desc,
            "task_component": "Main",
            "schedule": self.schedule,
            "success_fail": status,
            "date_time_started": self.started,
            **fields,
        })
        # ignore_links: the task or schedule may be gone, the log must still be written
        doc.insert(ignore_permissions=True, ignore_links=True)
        self.name = doc.name

    def start(self, desc: str | None) -> None:
        self._insert(IN_PROGRESS, desc, stdout="", execution_time=0)
        frappe.db.commit()  # visible to others while the task runs

    def finish(self, status: str, result_message: str, stdout: str) -> None:
        fields = {
            "success_fail": status,
            "execution_time": round(time.perf_counter() - self._t0, 6),
            "result_message": result_message,
            "stdout": stdout,
        }
        if self.name is None:
            self._insert(status, None, **fields)
        else:
            doc = frappe.get_doc(LOG_DOCTYPE, self.name)
            doc.update(fields)
            doc.save(ignore_permissions=True)
        frappe.db.commit()

    def record_failure(self, status: str, error: BaseException, stdout: str) -> None:
        """Roll back the task's own writes, then record the failure. Never raises: the caller
        re-raises the task's error, which must not be masked by a logging problem."""
        try:
            frappe.db.rollback()
            self.finish(status, error_text(error, MAX_RESULT_BYTES), stdout)
        except Exception:
            logger.exception("btu run: could not record %s of task=%s in %s %s", status, self.task, LOG_DOCTYPE, self.name)


# --- task and function ---------------------------------------------------------------------------
def load_task_or_record(log: TaskLog) -> Any:
    """The BTU Task document; a missing or cancelled task is recorded as Failed, then raised."""
    try:
        doc = frappe.get_doc(TASK_DOCTYPE, log.task)
        if cint(doc.get("docstatus")) == 2:
            raise TaskCancelled(log.task)
    except frappe.DoesNotExistError as e:
        error = TaskNotFound(log.task)
        log.record_failure(FAILED, error, stdout="")
        raise error from e
    except BtuHooksError as e:
        log.record_failure(FAILED, e, stdout="")
        raise
    return doc


def resolve_function(doc: Any) -> Callable[..., Any]:
    """The task's function (or class), imported with importlib as the BTU app does: a module of
    any package importable by the worker works, installed as a Frappe app or not."""
    path = (doc.get("function_string") or "").strip()
    if "." not in path:
        raise TaskFunctionNotFound(doc.name, path, "not a dotted path module.function")
    module_path, name = path.rsplit(".", 1)
    try:
        function: Callable[..., Any] = getattr(importlib.import_module(module_path), name)
    except Exception as e:  # importing the module can raise anything; re-raised as a typed error
        raise TaskFunctionNotFound(doc.name, path, f"{type(e).__name__}: {e}") from e
    if not callable(function):
        raise TaskFunctionNotFound(doc.name, path, f"{type(function).__name__} is not callable")
    return function


def _btu_aware_base() -> type | None:
    """The BTU app's BTU_AWARE_FUNCTION, when the app is importable (looked up per run: cheap)."""
    if importlib.util.find_spec("btu") is None:
        return None
    from btu.btu_core.doctype.btu_task.btu_task import BTU_AWARE_FUNCTION

    return BTU_AWARE_FUNCTION


def is_btu_aware(function: Any) -> bool:
    """A BTU-aware task is a class made with the task's name and then run(**kwargs): a subclass of
    the app's BTU_AWARE_FUNCTION, or, without the app, any class with a run() method."""
    if not isinstance(function, type):
        return False
    base = _btu_aware_base()
    if base is not None:
        return issubclass(function, base)
    return callable(getattr(function, "run", None))


def call_task(function: Callable[..., Any], task: str, kwargs: dict[str, Any]) -> Any:
    if is_btu_aware(function):
        return function(task).run(**kwargs)
    return function(**kwargs)


# --- timeouts and results ------------------------------------------------------------------------
@functools.cache
def _rq_timeout_class() -> type[BaseException] | None:
    try:
        from rq.timeouts import JobTimeoutException
    except ImportError:
        return None
    return JobTimeoutException


def is_timeout(error: BaseException) -> bool:
    """RQ's JobTimeoutException (raised in the work horse when the job's timeout expires)."""
    cls = _rq_timeout_class()
    if cls is not None and isinstance(error, cls):
        return True
    return any(c.__name__ == "JobTimeoutException" for c in type(error).__mro__)


def _storable(result: Any) -> Any:
    try:
        pickle.dumps(result)
    except Exception as e:  # noqa: BLE001  # RQ could not store it; the text is in the log row
        logger.info("btu run: return value not picklable (%s: %s), returning its str()", type(e).__name__, e)
        return str(result)
    return result
