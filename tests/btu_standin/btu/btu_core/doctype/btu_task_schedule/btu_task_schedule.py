"""BTU Task Schedule controller, as the app behaves (btu 0.8.0):

- before_validate: copies the task's desc_short; clears the fields the frequency does not use
  (Cron Style: all five; Hourly: all but minute; Daily: day_of_week, day_of_month, month).
- validate: checks the fields and, for every frequency but Cron Style, stores in cron_string a
  copy converted to UTC with the site's UTC offset of the moment of the save (the weekday and the
  day of the month are not shifted). Cron Style: the cron is checked but never rejected.
  Monthly and Yearly crash in the real app (day_of_month is never put into the cron; Yearly's
  month name fails the app's numeric cron check): here they store what a fixed version would,
  `m h dom * *` and `m h dom month-number *`.
- before_save: '|' in the name is refused; then, BEFORE the row is written or committed, the
  legacy daemon is told over its Unix socket: enabled -> cancel_task_schedule then
  create_task_schedule (errors only shown); just disabled -> cancel_task_schedule (errors raise).
- on_trash: cancel_task_schedule.
"""

from __future__ import annotations

import ast
import calendar
from calendar import monthrange
from datetime import datetime
from typing import Any

import frappe
from frappe import _
from frappe.model.document import Document

from btu import get_system_datetime_now, validate_cron_string
from btu.btu_api.scheduler import SchedulerAPI

cron_day_dictionary = {"Sun": 0, "Mon": 1, "Tue": 2, "Wed": 3, "Thu": 4, "Fri": 5, "Sat": 6}

_CLEARED = {
    "Cron Style": ("day_of_week", "day_of_month", "month", "hour", "minute"),
    "Hourly": ("day_of_week", "day_of_month", "month", "hour"),
    "Daily": ("day_of_week", "day_of_month", "month"),
}


class BTUTaskSchedule(Document):
    def on_trash(self) -> None:
        self.cancel_schedule()

    def before_validate(self) -> None:
        self.task_description = self.get_task_doc().desc_short
        for fieldname in _CLEARED.get(self.run_frequency, ()):
            setattr(self, fieldname, None)

    def validate(self) -> None:
        freq = self.run_frequency
        if freq == "Cron Style":
            validate_cron_string(str(self.cron_string))
        elif freq in ("Hourly", "Daily", "Weekly", "Monthly", "Yearly"):
            if freq == "Weekly":
                check_day_of_week(self.day_of_week)
            if freq in ("Monthly", "Yearly"):
                check_day_of_month(freq, self.day_of_month, self.month if freq == "Yearly" else None)
            if freq != "Hourly":
                check_hours(self.hour)
            check_minutes(self.minute)
            self.cron_string = schedule_to_cron_string(self)
        import cron_descriptor  # the app's dependency; only saving a schedule needs it

        self.schedule_description = cron_descriptor.get_description(self.cron_string)

    def before_save(self) -> None:
        if "|" in self.name:
            raise ValueError("Task Schedules cannot have the pipe character (|) in their primary key 'name'.")
        if self.enabled:
            try:
                self.resubmit_task_schedule()
            except Exception as ex:  # noqa: BLE001  # the app shows it (the exception object itself)
                frappe.msgprint(ex, indicator="red")
        else:
            before = self.get_doc_before_save()
            if before and before.enabled != self.enabled:
                self.cancel_schedule()

    def resubmit_task_schedule(self, autosave: bool = False) -> None:
        """Ask the daemon to cancel, then reload this schedule."""
        try:
            self.cancel_schedule()
        except Exception as ex:  # noqa: BLE001  # the app goes on with the reload
            frappe.msgprint(f"Error while attempting to cancel Task Schedule {self.name}")
            print(ex)
        response = SchedulerAPI.reload_task_schedule(task_schedule_id=self.name)
        if not response:
            raise ConnectionError("Error, no response from BTU Task Scheduler daemon.")
        if response.startswith("Exception while connecting"):
            raise ConnectionError(response)
        print(f"Response from BTU Scheduler: {response}")
        frappe.msgprint(f"Response from BTU Scheduler daemon:<br>{response}")
        if autosave:
            self.save()

    def cancel_schedule(self) -> str | None:
        response = SchedulerAPI.cancel_task_schedule(task_schedule_id=self.name)
        message = f"Request = Cancel Task Schedule.\nResponse from BTU Scheduler: {response}"
        print(message)
        frappe.msgprint(message)
        self.redis_job_id = ""
        return response

    def get_task_doc(self) -> Any:
        return frappe.get_doc("BTU Task", self.task)

    @frappe.whitelist()
    def get_last_execution_results(self) -> None:
        """The form's button: the status of RQ job `redis_job_id` (and its error, if failed)."""
        import zlib

        from frappe.utils.background_jobs import get_redis_conn

        if not self.redis_job_id:
            frappe.msgprint("No results available; Task may not have been processed yet.")
            return
        conn = get_redis_conn()
        status = conn.hget(f"rq:job:{self.redis_job_id}", "status")
        if status is None:
            frappe.msgprint(f"No job information is available for Job {self.redis_job_id}")
            return
        if status.decode() == "finished":
            frappe.msgprint(f"Job {self.redis_job_id} completed successfully.")
            return
        frappe.msgprint(f"Job status = {status.decode()}")
        exc_info = conn.hget(f"rq:job:{self.redis_job_id}", "exc_info")
        frappe.msgprint(zlib.decompress(exc_info) if exc_info else "No results available; job may not have been processed yet.")

    def built_in_arguments(self) -> dict[str, Any] | None:
        return ast.literal_eval(self.argument_overrides) if self.argument_overrides else None


def check_minutes(minute: Any) -> None:
    if minute is None or not 0 <= int(minute) < 60:
        raise ValueError(_("Minute value must be between 0 and 59"))


def check_hours(hour: Any) -> None:
    if not hour or not hour.isdigit() or not 0 <= int(hour) < 24:  # a Data field: a str
        raise ValueError(_("Hour value must be between 0 and 23"))


def check_day_of_week(day_of_week: str | None) -> None:
    if not day_of_week:
        raise ValueError(_("Please select a day of the week"))


def check_day_of_month(run_frequency: str, day: Any, month: str | None = None) -> None:
    if run_frequency == "Monthly" and not day:
        raise ValueError(_("Please select a day of the month"))
    if run_frequency == "Yearly":
        if not (day and month):
            raise ValueError(_("Please select a day of the week and a month"))
        last = monthrange(datetime.now().year, _month_number(month))[1]
        if int(day) > last:
            raise ValueError(_("Day value for {0} must be between 1 and {1}").format(month, last))


def _month_number(month: str) -> int:
    return list(calendar.month_abbr).index(str(month).title())


def schedule_to_cron_string(doc: BTUTaskSchedule) -> str:
    """The schedule's fields as a UTC cron: today's date at hour:minute in the site's zone, with
    the zone's offset of this moment, converted to UTC; weekday and day of month kept as they are."""
    if not isinstance(doc, BTUTaskSchedule):
        raise ValueError("Function argument 'doc_schedule' should be a BTU Task Schedule document.")
    if doc.run_frequency == "Cron Style":
        return doc.cron_string
    now = get_system_datetime_now()
    local = datetime(now.year, now.month, now.day, int(doc.hour) if doc.hour else 0, int(doc.minute) if doc.minute else 0)
    utc = local - now.utcoffset()  # the offset of NOW, not of that time of day
    cron = [
        "*" if doc.minute is None else str(utc.minute),
        str(utc.hour) if doc.hour else "*",
        str(doc.day_of_month) if doc.day_of_month and doc.run_frequency in ("Monthly", "Yearly") else "*",
        _cron_month(doc),
        str(cron_day_dictionary[doc.day_of_week[:3]]) if doc.day_of_week else "*",
    ]
    result = " ".join(cron)
    validate_cron_string(result, error_on_invalid=True)
    return result


def _cron_month(doc: BTUTaskSchedule) -> str:
    if doc.run_frequency == "Yearly":  # fixed: the month's number
        return str(_month_number(doc.month))
    if doc.run_frequency == "Monthly":  # fixed: every month
        return "*"
    return "*" if doc.month is None else doc.month  # as the app (a Weekly row with a month fails)


@frappe.whitelist()
def resubmit_all_task_schedules() -> None:
    """The configuration form's button: resubmit every enabled schedule; one that fails is disabled."""
    for name in frappe.db.get_all("BTU Task Schedule", filters={"enabled": True}, pluck="name"):
        doc = frappe.get_doc("BTU Task Schedule", name)
        try:
            doc.validate()
            doc.resubmit_task_schedule()
        except Exception as ex:  # noqa: BLE001  # the app reports it and disables the schedule
            message = f"Error from BTU Scheduler while submitting Task {doc.name} : {ex}"
            frappe.msgprint(message)
            print(message)
            doc.enabled = False
            doc.save()

