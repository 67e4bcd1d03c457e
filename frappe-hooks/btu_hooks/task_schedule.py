"""The BTU Task Schedule controller btu_hooks installs (hooks.py: override_doctype_class).

The BTU app's own controller tells the original scheduler daemon about a schedule over its Unix
socket from before_save and on_trash, that is BEFORE the row is written and committed (the
daemon re-reads the old row; a rolled-back save is announced anyway; with no daemon listening a
save from Desk fails). This subclass keeps everything else of the app's controller (field
clearing, checks, the UTC cron_string, the buttons) and its own check that a name has no '|',
but makes no socket calls there: btu_hooks.doc_events tells the daemon after the commit.
resubmit_task_schedule (the configuration's "Resubmit all Task Schedules" button) and
cancel_schedule talk to btu-daemon through btu_client instead of the legacy socket.

Without the BTU app importable, the base is Frappe's Document (nothing to override).
"""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING, Any

import frappe

from btu_hooks import client as _client
from btu_hooks.doc_events import describe_reply, socket_path
from btu_hooks.errors import ClientNotInstalled

if TYPE_CHECKING or importlib.util.find_spec("btu") is None:
    from frappe.model.document import Document as AppTaskSchedule
else:
    from btu.btu_core.doctype.btu_task_schedule.btu_task_schedule import BTUTaskSchedule as AppTaskSchedule

logger = logging.getLogger("btu_hooks")


class BTUTaskSchedule(AppTaskSchedule):  # type: ignore[misc,valid-type]
    def before_save(self) -> None:
        """The app's check, without its calls to the daemon (doc_events.schedule_changed tells
        the daemon once the transaction commits)."""
        if "|" in (self.name or ""):
            raise ValueError("Task Schedules cannot have the pipe character (|) in their primary key 'name'.")

    def on_trash(self) -> None:
        """Nothing before the commit: doc_events.schedule_deleted cancels it afterwards."""

    def resubmit_task_schedule(self, autosave: bool = False) -> None:
        """Ask btu-daemon to re-read this (committed) schedule now and show what it will do.
        Raises only when the daemon rejects the schedule (the app's "Resubmit all Task
        Schedules" then disables it, as it does for the original daemon's errors); an
        unreachable daemon is reported, not raised (that would disable every schedule)."""
        try:
            client = _client.get_client()
        except ClientNotInstalled as e:
            frappe.msgprint(f"{self.name} was not resubmitted: {e}", title="BTU Scheduler", indicator="orange")
            return
        try:
            replies = client.notify([self.name], site=frappe.local.site, socket_path=socket_path())
        except client.ScheduleError:
            raise
        except client.BtuError as e:
            logger.warning("btu_hooks: resubmit of %s not sent: %s", self.name, e)
            frappe.msgprint(f"{self.name} was not resubmitted: {type(e).__name__}: {e}. The daemon's periodic "
                            "rebuild will pick it up.", title="BTU Scheduler", indicator="orange")
        else:
            for reply in replies:
                line, runs = describe_reply(reply)
                frappe.msgprint(line, title="BTU Scheduler", indicator="green" if runs else "orange")
        if autosave:
            self.save()

    def cancel_schedule(self) -> Any:
        """Ask btu-daemon to drop this schedule's planned runs (btu_client.cancel)."""
        client = _client.get_client()
        try:
            reply = client.cancel(self.name, site=frappe.local.site, socket_path=socket_path())
        except client.ScheduleError as e:  # nothing planned: the wanted state
            reply = str(e)
        frappe.msgprint(f"Request = Cancel Task Schedule.\nResponse from BTU Scheduler: {reply}")
        self.redis_job_id = ""
        return reply
