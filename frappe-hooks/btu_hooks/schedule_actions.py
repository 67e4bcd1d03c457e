"""Whitelisted methods behind the BTU Task Schedule form's buttons and its read-only section
(btu_hooks/public/js/btu_task_schedule.js calls them with frappe.call):

    btu_hooks.schedule_actions.pause(schedule, note=None, until=None)
    btu_hooks.schedule_actions.resume(schedule)
    btu_hooks.schedule_actions.skip_next(schedule, count=1)
    btu_hooks.schedule_actions.run_now(schedule)
    btu_hooks.schedule_actions.backfill(schedule, start, end, max=1000, dry_run=0)
    btu_hooks.schedule_actions.overview(schedule)

Permissions as for the BTU app's own schedule methods (Frappe checks the document's permission
before running a whitelisted document method): reading the daemon's view of a schedule
(`overview`) needs read permission on the schedule, every action needs write permission
(System Manager in the BTU app's DocType). Each action goes to btu-daemon through btu_client,
with the site and BTU Configuration's socket path, like the after-commit notifications.

Errors of btu_client become one clear `frappe.throw` (a `SchedulerRequestFailed`, HTTP 417 with
the message; `frappe.flags.disable_traceback` keeps the traceback out of the response);
`overview` never throws for the daemon: it answers the error text, so the form still opens when
the daemon is down.

Times from the form's dialogs (`until`, `start`, `end`) are Frappe Datetime values: naive, in
the site's time zone (System Settings; Desk converts what the user typed in their own zone); a
value with an offset or `Z` is taken as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import frappe
from frappe import _
from frappe.utils import cint, get_system_timezone

from btu_hooks import client as _client
from btu_hooks import schedule_view as view
from btu_hooks.doc_events import socket_path
from btu_hooks.errors import ClientNotInstalled

logger = logging.getLogger("btu_hooks")

SCHEDULE_DOCTYPE = "BTU Task Schedule"
_TITLE = "BTU Scheduler"
UPCOMING_COUNT = 10
HISTORY_COUNT = 20
MAX_SKIP = 1000
MAX_BACKFILL = 10_000


class SchedulerRequestFailed(frappe.ValidationError):
    """btu-daemon could not do what the form asked (its reason is the message)."""


# --- the whitelisted methods ---------------------------------------------------------------------
@frappe.whitelist(methods=["POST"])
def pause(schedule: str, note: str | None = None, until: str | None = None) -> dict[str, Any]:
    """No run of the schedule is enqueued until `until` (empty: until resumed)."""
    _authorize(schedule, "write")
    until_dt = parse_instant(until, "Until") if until else None
    if until_dt is not None and until_dt <= datetime.now(timezone.utc):
        _throw(_("Until ({0}) is in the past.").format(until))
    reply = _call("pause", schedule, until=until_dt, note=_audited_note(note))
    return {"message": view.describe_pause(reply), "reply": _plain(reply)}


@frappe.whitelist(methods=["POST"])
def resume(schedule: str) -> dict[str, Any]:
    """End the pause; the runs due while paused are not replayed."""
    _authorize(schedule, "write")
    reply = _call("resume", schedule)
    return {"message": view.describe_resume(reply), "reply": _plain(reply)}


@frappe.whitelist(methods=["POST"])
def skip_next(schedule: str, count: int | str = 1) -> dict[str, Any]:
    """The next `count` planned runs are not enqueued."""
    _authorize(schedule, "write")
    n = _positive(count, "Count", MAX_SKIP)
    reply = _call("skip_next", schedule, count=n)
    return {"message": view.describe_skip(reply), "reply": _plain(reply)}


@frappe.whitelist(methods=["POST"])
def run_now(schedule: str) -> dict[str, Any]:
    """Enqueue the schedule's task now, outside its plan."""
    _authorize(schedule, "write")
    reply = _call("run_now", schedule)
    return {"message": view.describe_run_now(reply), "reply": _plain(reply)}


@frappe.whitelist(methods=["POST"])
def backfill(schedule: str, start: str, end: str, max: int | str = 1000,  # noqa: A002  # btu_client's name
             dry_run: int | str | bool = 0) -> dict[str, Any]:
    """Enqueue each planned instant in [start, end) that has no job yet (at most `max`);
    `dry_run` only lists them."""
    _authorize(schedule, "write")
    start_dt, end_dt = parse_instant(start, "From"), parse_instant(end, "Until")
    if end_dt <= start_dt:
        _throw(_("Until must be after From."))
    limit = _positive(max, "Max", MAX_BACKFILL)
    dry = bool(cint(dry_run))
    runs = list(_call("backfill", schedule, start=start_dt, end=end_dt, max=limit, dry_run=dry))
    return {"message": view.describe_backfill(schedule, runs, dry), "runs": view.backfill_rows(runs), "dry_run": dry}


@frappe.whitelist()
def overview(schedule: str) -> dict[str, Any]:
    """For the form's read-only section: the next 10 runs (local and UTC, marked paused /
    skipped), the last 20 outcomes with their lateness, and the pause in force. Daemon errors
    are answered in `error` (the form shows them), not thrown."""
    _authorize(schedule, "read")
    out: dict[str, Any] = {"schedule": schedule, "upcoming": [], "history": [], "paused": None, "error": None}
    try:
        out["upcoming"] = view.upcoming_rows(_call("upcoming", schedule, UPCOMING_COUNT, quiet=True))
        out["history"] = view.history_rows(_call("history", schedule, HISTORY_COUNT, quiet=True),
                                            ZoneInfo(get_system_timezone()))
        status = _call_global("status", quiet=True)
        out["paused"] = view.pause_of(status, getattr(frappe.local, "site", None), schedule)
    except SchedulerRequestFailed as e:
        out["error"] = str(e)
    return out


# --- helpers -------------------------------------------------------------------------------------
def _authorize(schedule: str, ptype: str) -> None:
    if not schedule or not frappe.db.exists(SCHEDULE_DOCTYPE, schedule):
        _throw(_("{0} {1} not found").format(SCHEDULE_DOCTYPE, schedule), frappe.DoesNotExistError)
    frappe.has_permission(SCHEDULE_DOCTYPE, ptype, doc=schedule, throw=True)


def _audited_note(note: str | None) -> str:
    """The daemon records the web process's uid/pid (SO_PEERCRED); the Desk user goes into the note."""
    user = getattr(getattr(frappe.local, "session", None), "user", None) or "unknown user"
    text = (note or "").strip()
    return f"{text} ({user} via Desk)" if text else f"{user} via Desk"


def _positive(value: Any, label: str, upper: int) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        n = 0
    if not 1 <= n <= upper:
        _throw(_("{0} must be a whole number from 1 to {1}, not {2!r}.").format(label, upper, value))
    return n


def parse_instant(value: Any, label: str) -> datetime:
    """A Datetime from the form (naive = the site's time zone) or ISO 8601 with an offset, as an
    aware datetime in UTC."""
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value or "").strip()
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            _throw(_("{0}: {1!r} is not a date and time.").format(label, value))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo(get_system_timezone()))
    return dt.astimezone(timezone.utc)


def _client_or_throw() -> _client.BtuClient:
    try:
        return _client.get_client()
    except ClientNotInstalled as e:
        _throw(str(e))


def _call(name: str, schedule: str, *args: Any, quiet: bool = False, **kwargs: Any) -> Any:
    """btu_client.<name>(schedule, *args, site=, socket_path=, **kwargs), errors thrown as
    SchedulerRequestFailed."""
    return _invoke(name, lambda fn, opts: fn(schedule, *args, site=frappe.local.site, **opts, **kwargs),
                   schedule, quiet)


def _call_global(name: str, quiet: bool = False) -> Any:
    return _invoke(name, lambda fn, opts: fn(**opts), None, quiet)


def _invoke(name: str, call: Callable[[Any, dict[str, Any]], Any], schedule: str | None, quiet: bool) -> Any:
    client = _client_or_throw()
    fn = getattr(client, name, None)
    if fn is None:
        _fail(_("The installed btu_client has no {0}(): upgrade btu_client and btu-daemon together.").format(name),
              quiet)
    path = socket_path()
    try:
        reply = call(fn, {"socket_path": path})
    except client.BtuError as e:
        _fail(explain(client, e, name, schedule, path), quiet)
    if not quiet:
        logger.info("btu_hooks: %s %s by %s (site=%s)", name, schedule, getattr(frappe.session, "user", None),
                    getattr(frappe.local, "site", None))
    return reply


def explain(client: Any, error: Exception, action: str, schedule: str | None, path: str | None) -> str:
    """One sentence for a btu_client error (the exception classes of btu_client)."""
    what = action.replace("_", " ")
    code = getattr(error, "code", None)
    if isinstance(error, client.DaemonUnavailable):
        return (f"The BTU scheduler daemon could not be reached at {path or 'its default socket'} ({error}). "
                f"Is btu-daemon running? Nothing was done ({what}).")
    if isinstance(error, client.ProtocolError):
        return (f"btu_client and btu-daemon do not understand each other ({error}). "
                "Upgrade the daemon and the client together.")
    if isinstance(error, client.ScheduleError):
        if code == "unknown_schedule":
            return (f"btu-daemon does not plan {schedule} ({error}): is the schedule enabled, its task submitted, "
                    "and the schedule saved?")
        return f"btu-daemon refused {schedule}: {error}"
    argument_error = getattr(client, "ArgumentError", None)
    if code == "invalid_argument" or (argument_error is not None and isinstance(error, argument_error)):
        return f"btu-daemon refused the {what}: {error}"
    return f"btu-daemon could not do the {what} of {schedule or 'the site'}: {type(error).__name__}: {error}"


def _fail(message: str, quiet: bool) -> NoReturn:
    if quiet:
        raise SchedulerRequestFailed(message)
    logger.warning("btu_hooks: %s", message)
    _throw(message)


def _throw(message: str, exc: type[Exception] = SchedulerRequestFailed) -> NoReturn:
    """frappe.throw for an expected refusal: Desk shows the message; the response carries no
    traceback (Frappe's own flag for expected errors, as its login uses)."""
    frappe.flags.disable_traceback = True
    frappe.throw(message, exc, title=_TITLE)
    raise exc(message)  # frappe.throw raises; this keeps type checkers informed


def _plain(reply: Any) -> Any:
    """JSON-friendly copy of a btu_client answer (datetimes as ISO 8601)."""
    if isinstance(reply, dict):
        return {k: _plain(v) for k, v in reply.items()}
    if isinstance(reply, (list, tuple)):
        return [_plain(v) for v in reply]
    if isinstance(reply, datetime):
        return reply.isoformat()
    return reply
