"""doc_events handlers for the BTU app: tell the btu-daemon about changed schedules.

Every handler has Frappe's doc_event signature ``(doc, method=None)``. None of them talks to the
daemon directly: they record what changed in the current database transaction, and one
callback registered on ``frappe.db.after_commit`` tells the daemon once the transaction has
committed (before that, the daemon would re-read the old row). A rolled-back transaction tells
the daemon nothing.

Talking to the daemon never breaks the save: the document is already committed when the
callback runs. If the daemon cannot be reached the user is told so (the periodic rebuild of
the daemon picks the change up); a schedule the daemon rejects (invalid cron...) is reported
with the daemon's reason.

Messages: during an HTTP request Frappe builds the response *before* it commits, so a
``frappe.msgprint`` from an after-commit callback would never reach the browser; there the
message is sent as the realtime "msgprint" event to the session user (Desk shows it like a
msgprint). Outside a request (bench console, background jobs, tests) ``frappe.msgprint`` is used.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import frappe
from frappe.utils import cint

from btu_hooks import client as _client
from btu_hooks.errors import ClientNotInstalled

logger = logging.getLogger("btu_hooks")

SCHEDULE_DOCTYPE = "BTU Task Schedule"
TASK_DOCTYPE = "BTU Task"
CONFIGURATION_DOCTYPE = "BTU Configuration"
_PENDING_ATTR = "btu_hooks_pending"
_MESSAGE_TITLE = "BTU Scheduler"
_RUNS_SHOWN = 3

Action = Literal["notify", "cancel"]


# --- the handlers (named in btu_hooks.hooks.doc_events) -----------------------------------------
def schedule_changed(doc: Any, method: str | None = None) -> None:
    """BTU Task Schedule after_insert / on_update (covers enabling and disabling): plan it if
    enabled, remove its planned runs if disabled."""
    enabled = cint(doc.get("enabled"))
    _pending().add(doc.name, "notify" if enabled else "cancel")


def schedule_deleted(doc: Any, method: str | None = None) -> None:
    """BTU Task Schedule on_trash: remove its planned runs."""
    _pending().add(doc.name, "cancel")


def task_changed(doc: Any, method: str | None = None) -> None:
    """BTU Task on_update / on_update_after_submit / on_submit / on_cancel / on_trash: every
    schedule of the task is re-read by the daemon (a cancelled or deleted task stops them)."""
    names = frappe.get_all(SCHEDULE_DOCTYPE, filters={"task": doc.name}, pluck="name", order_by="name asc")
    pending = _pending()
    for name in names:
        pending.add(name, "notify")


def configuration_changed(doc: Any, method: str | None = None) -> None:
    """BTU Configuration on_update (e.g. the cron time zone changed): the daemon rebuilds all."""
    _pending().rebuild = True


# --- after-commit batching -----------------------------------------------------------------------
class PendingChanges:
    """What the current transaction changed; told to the daemon once, after commit."""

    def __init__(self, site: str | None) -> None:
        self.site = site
        self.schedules: dict[str, Action] = {}  # insertion-ordered; the last action wins
        self.rebuild = False

    def add(self, schedule: str, action: Action) -> None:
        self.schedules.pop(schedule, None)
        self.schedules[schedule] = action

    def discard(self) -> None:
        """after_rollback: the changes never happened."""
        if getattr(frappe.local, _PENDING_ATTR, None) is self:
            setattr(frappe.local, _PENDING_ATTR, None)

    def flush(self) -> None:
        """after_commit: tell the daemon. Never raises (the save has already committed)."""
        self.discard()
        notify = [s for s, a in self.schedules.items() if a == "notify"]
        cancel = [s for s, a in self.schedules.items() if a == "cancel"]
        if not (notify or cancel or self.rebuild):
            return
        what = _describe_work(self.rebuild, notify, cancel)
        try:
            client = _client.get_client()
        except ClientNotInstalled as e:
            logger.error("btu_hooks: %s not sent to the daemon: %s", what, e)
            _tell_user(f"Saved, but the BTU scheduler was not told about {what}: {e}. "
                       "The daemon's periodic rebuild will pick the change up.", indicator="orange")
            return
        path: str | None = None
        try:
            path = socket_path()
            opts: dict[str, Any] = {"site": self.site, "socket_path": path}
            if self.rebuild:
                client.rebuild(**opts)
                logger.info("btu_hooks: daemon rebuild requested (site=%s)", self.site)
            if notify:
                _notify(client, notify, opts)
            for schedule in cancel:
                _cancel(client, schedule, opts)
        except client.DaemonUnavailable as e:
            logger.warning("btu_hooks: daemon unavailable, %s not told: %s", what, e)
            _tell_user(
                f"Saved. The BTU scheduler daemon could not be reached at {path or 'its default socket'}, "
                f"so it was not told about {what}: {e}. The daemon's next periodic rebuild will pick the "
                "change up.",
                indicator="orange",
            )
        except client.BtuError as e:
            frappe.log_error(title="BTU scheduler: request failed", message=f"{what}: {type(e).__name__}: {e}")
            _tell_user(f"Saved, but telling the BTU scheduler about {what} failed: {type(e).__name__}: {e}. "
                       "The daemon's periodic rebuild will pick the change up.", indicator="orange")
        except Exception as e:  # noqa: BLE001  # an after-commit callback must not fail a committed save
            frappe.log_error(title="BTU scheduler: unexpected error after commit")
            _tell_user(f"Saved, but telling the BTU scheduler about {what} failed unexpectedly: "
                       f"{type(e).__name__}: {e}. See the Error Log.", indicator="orange")


def _pending() -> PendingChanges:
    """The PendingChanges of the current transaction, registering its callbacks on first use."""
    pending: PendingChanges | None = getattr(frappe.local, _PENDING_ATTR, None)
    if pending is not None:
        return pending
    pending = PendingChanges(getattr(frappe.local, "site", None))
    after_commit = getattr(frappe.db, "after_commit", None)
    if after_commit is None:
        # Frappe before v15 has no frappe.db.after_commit: tell the daemon at once (it may read
        # the row before this transaction commits; its periodic rebuild then corrects it).
        logger.warning("btu_hooks: frappe.db.after_commit is missing (Frappe < v15); notifying before commit")
        return _ImmediateChanges(pending)
    setattr(frappe.local, _PENDING_ATTR, pending)
    after_commit.add(pending.flush)
    after_rollback = getattr(frappe.db, "after_rollback", None)
    if after_rollback is not None:
        after_rollback.add(pending.discard)
    return pending


class _ImmediateChanges(PendingChanges):
    """Without an after-commit hook: every change is sent as soon as it is recorded."""

    def __init__(self, pending: PendingChanges) -> None:
        super().__init__(pending.site)

    def add(self, schedule: str, action: Action) -> None:
        super().add(schedule, action)
        self.flush()
        self.schedules.clear()

    def __setattr__(self, key: str, value: Any) -> None:
        super().__setattr__(key, value)
        if key == "rebuild" and value:
            self.flush()
            super().__setattr__("rebuild", False)


def _notify(client: _client.BtuClient, names: list[str], opts: dict[str, Any]) -> None:
    try:
        replies = client.notify(names, **opts)
    except client.ScheduleError as e:
        if len(names) == 1:
            _tell_rejected(names[0], e)
            return
        # One rejected schedule must not hide the others: ask again one by one.
        replies = []
        for name in names:
            try:
                replies.extend(client.notify([name], **opts))
            except client.ScheduleError as e1:
                _tell_rejected(name, e1)
    logger.info("btu_hooks: daemon notified of %s (site=%s)", ", ".join(names), opts.get("site"))
    _tell_replies(replies)


def _cancel(client: _client.BtuClient, name: str, opts: dict[str, Any]) -> None:
    try:
        client.cancel(name, **opts)
    except client.ScheduleError as e:
        # The daemon had nothing planned for it (never enabled, or already removed): the wanted state.
        logger.info("btu_hooks: cancel %s: nothing planned (%s)", name, e)
        return
    logger.info("btu_hooks: daemon cancelled %s (site=%s)", name, opts.get("site"))


def socket_path() -> str | None:
    """The daemon's socket as configured for this site (BTU Configuration), else the client's default."""
    value = frappe.db.get_single_value(CONFIGURATION_DOCTYPE, "path_to_btu_scheduler_uds")
    return str(value) if value else None


# --- messages ------------------------------------------------------------------------------------
def _describe_work(rebuild: bool, notify: Sequence[str], cancel: Sequence[str]) -> str:
    parts = []
    if rebuild:
        parts.append("the configuration change (rebuild)")
    if notify:
        parts.append(f"schedule{'s' if len(notify) > 1 else ''} {', '.join(notify)}")
    if cancel:
        parts.append(f"the removal of {', '.join(cancel)}")
    return " and ".join(parts)


def _tell_rejected(name: str, error: Exception) -> None:
    logger.warning("btu_hooks: daemon rejected %s: %s", name, error)
    _tell_user(f"Schedule {name} is saved, but the BTU scheduler will not run it: {error}", indicator="red")


def _format_instant(value: Any) -> str:
    if isinstance(value, Mapping):
        value = value.get("local") or value.get("local_time") or value.get("utc")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    return str(value)


def describe_reply(reply: Mapping[str, Any]) -> tuple[str, bool]:
    """One line for one notify reply (btu_client's ScheduleState: ``schedule``, ``runs``,
    ``reason``, ``time_zone``, ``next_runs`` of ``{"utc", "local"}`` datetimes), and whether the
    schedule will run."""
    name = reply.get("schedule") or "schedule"
    runs = list(reply.get("next_runs") or [])
    reason = reply.get("reason")
    if reply.get("runs", bool(runs)) and runs and not reason:
        shown = ", ".join(_format_instant(r) for r in runs[:_RUNS_SHOWN])
        zone = f" ({reply['time_zone']})" if reply.get("time_zone") else ""
        return f"{name}: next run{'s' if len(runs) > 1 else ''} {shown}{zone}", True
    return f"{name} will not run: {reason or 'no upcoming run'}", False


def _tell_replies(replies: Sequence[Mapping[str, Any]]) -> None:
    lines = [describe_reply(r) for r in replies if isinstance(r, Mapping)]
    if not lines:
        return
    all_run = all(ok for _, ok in lines)
    text = "<br>".join(line for line, _ in lines)
    _tell_user(text, indicator="green" if all_run else "orange", alert=all_run)


def _tell_user(message: str, *, indicator: str, alert: bool = False) -> None:
    if getattr(frappe.local, "request", None):
        frappe.publish_realtime(
            "msgprint",
            {"message": message, "title": _MESSAGE_TITLE, "indicator": indicator, "alert": alert},
            user=frappe.session.user,
        )
    else:
        frappe.msgprint(message, title=_MESSAGE_TITLE, indicator=indicator, alert=alert)
