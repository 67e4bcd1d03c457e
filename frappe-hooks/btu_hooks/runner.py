"""The task runner the daemon's Frappe-mode RQ jobs call (inside
``frappe.utils.background_jobs.execute_job``), and the BTU Task Log row it writes.

A run:
1. loads the BTU Task (a missing or cancelled task is recorded as ``Failed`` and raised);
2. inserts a ``BTU Task Log`` row ``In-Progress`` and commits it, so it is visible while running;
3. resolves ``function_string`` with ``frappe.get_attr`` and calls it with the arguments as
   keyword arguments, capturing what it prints;
4. updates the row to ``Success`` / ``Failed`` / ``Timeout`` with ``execution_time`` (seconds),
   ``result_message`` (repr of the return value, or the error and its traceback) and
   ``stdout``, and commits. On failure the task's own uncommitted writes are rolled back first,
   and the exception is re-raised afterwards so that RQ marks the job failed too.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import io
import logging
import pickle
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TextIO

import frappe
from frappe.utils import cint, now_datetime

from btu_hooks.errors import (
    BtuHooksError,
    InvalidArguments,
    TaskCancelled,
    TaskFunctionNotFound,
    TaskNotFound,
)

logger = logging.getLogger("btu_hooks.runner")

TASK_DOCTYPE = "BTU Task"
SCHEDULE_DOCTYPE = "BTU Task Schedule"
LOG_DOCTYPE = "BTU Task Log"

IN_PROGRESS = "In-Progress"
SUCCESS = "Success"
FAILED = "Failed"
TIMEOUT = "Timeout"

#: Most characters of captured output kept in the log row (the most recent ones are kept).
MAX_STDOUT_CHARS = 1_000_000
#: result_message is a TEXT column: at most 65,535 bytes.
MAX_RESULT_BYTES = 60_000


def run_task(
    task: str,
    schedule: str | None = None,
    arguments: Mapping[str, Any] | None = None,
    due: str | None = None,
    job_id: str | None = None,
    **_ignored: Any,
) -> Any:
    """Run BTU Task `task` once and record it in a BTU Task Log row.

    `arguments` are the keyword arguments, already merged by the daemon (task arguments
    overridden by the schedule's argument_overrides); when None they are merged here from the
    two Python literals. `due` (RFC 3339, UTC) and `job_id` identify the run in log lines.
    Unknown keyword arguments (from newer daemons) are ignored. Returns the function's return
    value (its repr if it cannot be pickled, as RQ stores the result with pickle).
    """
    log = TaskLog(task, schedule)
    logger.info("btu run started: task=%s schedule=%s due=%s job_id=%s", task, schedule, due, job_id)
    if _ignored:
        logger.debug("btu run: ignoring unknown job arguments %s", sorted(_ignored))
    try:
        doc = load_task(task)
    except BtuHooksError as e:
        log.record_failure(FAILED, e, stdout="")
        raise

    log.start(doc.get("desc_short"))
    capture = OutputCapture(MAX_STDOUT_CHARS, echo=sys.stdout if cint(doc.get("repeat_log_in_stdout")) else None)
    try:
        function = resolve_function(doc)
        if arguments is not None and not isinstance(arguments, Mapping):
            raise InvalidArguments(f"arguments of the job for BTU Task {task}",
                                   f"expected a dict, got {type(arguments).__name__}")
        kwargs = dict(arguments) if arguments is not None else merged_arguments(doc, schedule)
        _check_kwargs(kwargs, f"arguments of the job for BTU Task {task}")
        with contextlib.redirect_stdout(capture):
            result = function(**kwargs)
    except BaseException as e:  # recorded (Failed or Timeout), then re-raised unchanged
        status = TIMEOUT if is_timeout(e) else FAILED
        log.record_failure(status, e, stdout=capture.getvalue())
        logger.info("btu run %s: task=%s schedule=%s job_id=%s log=%s", status, task, schedule, job_id, log.name)
        raise
    log.finish(SUCCESS, _truncate_bytes(repr(result), MAX_RESULT_BYTES), capture.getvalue())
    logger.info("btu run Success: task=%s schedule=%s job_id=%s log=%s", task, schedule, job_id, log.name)
    return _storable(result)


# --- the log row ---------------------------------------------------------------------------------
class TaskLog:
    """One BTU Task Log row: inserted In-Progress, finished once."""

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
            frappe.db.set_value(LOG_DOCTYPE, self.name, fields)
        frappe.db.commit()

    def record_failure(self, status: str, error: BaseException, stdout: str) -> None:
        """Roll back the task's own writes, then record the failure. Never raises: the caller
        re-raises the task's error, which must not be masked by a logging problem."""
        try:
            frappe.db.rollback()
            self.finish(status, _error_text(error), stdout)
        except Exception:
            logger.exception("btu run: could not record %s of task=%s in %s %s", status, self.task, LOG_DOCTYPE, self.name)


# --- task, function and arguments ----------------------------------------------------------------
def load_task(task: str) -> Any:
    try:
        doc = frappe.get_doc(TASK_DOCTYPE, task)
    except frappe.DoesNotExistError as e:
        raise TaskNotFound(task) from e
    if cint(doc.get("docstatus")) == 2:
        raise TaskCancelled(task)
    return doc


def resolve_function(doc: Any) -> Callable[..., Any]:
    path = (doc.get("function_string") or "").strip()
    if "." not in path:
        raise TaskFunctionNotFound(doc.name, path, "not a dotted path module.function")
    try:
        function: Callable[..., Any] = frappe.get_attr(path)
    except Exception as e:  # importing the module can raise anything; re-raised as a typed error
        raise TaskFunctionNotFound(doc.name, path, f"{type(e).__name__}: {e}") from e
    if not callable(function):
        raise TaskFunctionNotFound(doc.name, path, f"{type(function).__name__} is not callable")
    return function


def parse_arguments(text: str | None, where: str) -> dict[str, Any]:
    """A Python dict literal (what ast.literal_eval reads); empty or NULL is {}."""
    if text is None or not str(text).strip():
        return {}
    try:
        value = ast.literal_eval(str(text).strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        raise InvalidArguments(where, f"not a Python literal: {e}") from e
    if not isinstance(value, dict):
        raise InvalidArguments(where, f"expected a dict literal, got {type(value).__name__}")
    _check_kwargs(value, where)
    return value


def merged_arguments(task_doc: Any, schedule: str | None) -> dict[str, Any]:
    """The task's arguments, overridden key by key by the schedule's argument_overrides."""
    merged = parse_arguments(task_doc.get("arguments"), f"{TASK_DOCTYPE} {task_doc.name} arguments")
    if schedule:
        overrides = frappe.db.get_value(SCHEDULE_DOCTYPE, schedule, "argument_overrides")
        merged.update(parse_arguments(overrides, f"{SCHEDULE_DOCTYPE} {schedule} argument_overrides"))
    return merged


def _check_kwargs(value: Mapping[Any, Any], where: str) -> None:
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        raise InvalidArguments(where, f"keys must be strings (keyword arguments), got {bad!r}")


# --- timeouts, output, results -------------------------------------------------------------------
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


class OutputCapture(io.TextIOBase):
    """Text sink for redirect_stdout keeping the last `limit` characters; optionally echoes
    everything to another stream (the task's repeat_log_in_stdout)."""

    encoding = "utf-8"

    def __init__(self, limit: int, echo: TextIO | None = None) -> None:
        super().__init__()
        self._limit = limit
        self._echo = echo
        self._parts: list[str] = []
        self._size = 0
        self._dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        if self._echo is not None:
            self._echo.write(s)
        self._parts.append(s)
        self._size += len(s)
        if self._size > 2 * self._limit:
            self._compact()
        return len(s)

    def flush(self) -> None:
        if self._echo is not None:
            self._echo.flush()

    def _compact(self) -> None:
        text = "".join(self._parts)
        keep = text[-self._limit:]
        self._dropped += len(text) - len(keep)
        self._parts, self._size = [keep], len(keep)

    def getvalue(self) -> str:
        if self._size > self._limit:
            self._compact()
        text = "".join(self._parts)
        if self._dropped:
            return f"[... {self._dropped} earlier characters dropped ...]\n{text}"
        return text


def _error_text(error: BaseException) -> str:
    head = f"{type(error).__name__}: {error}"
    tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return _truncate_bytes(f"{head}\n\n{tb}", MAX_RESULT_BYTES)


def _truncate_bytes(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    marker = "\n[... truncated]"
    return data[: limit - len(marker)].decode("utf-8", errors="ignore") + marker


def _storable(result: Any) -> Any:
    try:
        pickle.dumps(result)
    except Exception as e:  # noqa: BLE001  # RQ could not store it; the repr is in the log row
        logger.info("btu run: return value not picklable (%s: %s), returning its repr", type(e).__name__, e)
        return repr(result)
    return result
