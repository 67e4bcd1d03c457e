"""BTU Configuration (Single): the zone must be a known IANA name; the form's two daemon buttons."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import frappe
from frappe.model.document import Document

from btu.btu_api.scheduler import SchedulerAPI


class BTUConfiguration(Document):
    def validate(self) -> None:
        try:
            ZoneInfo(str(self.cron_time_zone))
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError("Invalid name for Time Zone.") from e

    @frappe.whitelist()
    def button_send_ping(self) -> None:
        frappe.msgprint(f"Response from BTU Scheduler daemon:<br>{SchedulerAPI.send_ping()}")

    @frappe.whitelist()
    def button_resubmit_all_task_schedules(self) -> None:
        from btu.btu_core.doctype.btu_task_schedule.btu_task_schedule import resubmit_all_task_schedules

        resubmit_all_task_schedules()
