"""BTU Task Log controller: a 'Main' row stamps the task's last_runtime and sends the schedule's
e-mails, when inserted (start; and the outcome if it is already final) and when updated (the
outcome, unless still In-Progress). An e-mail error never fails the save: it is shown, printed
and prepended to the row's stdout (on update the row is also marked Failed)."""

from __future__ import annotations

from typing import Any

import frappe
from frappe.model.document import Document
from frappe.utils import now_datetime

from btu import Result, get_system_datetime_now
from btu.btu_core import btu_email


class BTUTaskLog(Document):
    def _stamp_task(self) -> None:
        frappe.db.set_value("BTU Task", self.task, "last_runtime",
                            frappe.utils.data.get_datetime_str(get_system_datetime_now()), update_modified=False)

    def after_insert(self) -> None:
        if self.task_component and self.task_component != "Main":
            return
        self._stamp_task()
        try:
            btu_email.email_on_task_start(self)
            if self.success_fail != "In-Progress":
                btu_email.email_on_task_conclusion(self)
        except Exception as ex:  # noqa: BLE001  # the app reports it and keeps the row
            message = f"Error in BTU Task Log (after_insert) while attempting to send email about Task Log.\n{ex}\n"
            frappe.msgprint(message)
            print(message)
            frappe.set_value("BTU Task Log", self.name, "stdout", message + (self.stdout or ""))

    def on_update(self) -> None:
        if self.task_component and self.task_component != "Main":
            return
        self._stamp_task()
        try:
            if self.success_fail != "In-Progress":
                btu_email.email_on_task_conclusion(self)
        except Exception as ex:  # noqa: BLE001  # the app reports it and marks the row Failed
            message = f"Error in function email_on_task_conclusion(), during attempt to send email about Task Log.\n{ex}\n"
            frappe.msgprint(message)
            print(message)
            frappe.db.set_value("BTU Task Log", self.name, "stdout", message + (self.stdout or ""))
            frappe.db.set_value("BTU Task Log", self.name, "success_fail", "Failed")


def write_log_for_task(task_id: str, result: Result, log_name: str | None = None, stdout: str | None = None,
                       date_time_started: Any = None, schedule_id: str | None = None) -> str:
    """Finish the row `log_name` (or make a new one) with the Result, through a document save, and commit."""
    if not isinstance(result, Result):
        raise ValueError(f"Argument 'result' should be an instance of BTU class 'Result'. Found '{type(result)}' instead.")
    if stdout and not isinstance(stdout, str):
        raise ValueError("Argument 'stdout' should be a Python string.")
    rows = frappe.db.get_values("BTU Task", filters={"name": task_id},
                                fieldname=["name", "desc_short", "repeat_log_in_stdout"], as_dict=True)
    task = rows[0] if rows else None
    if log_name:
        log = frappe.get_doc("BTU Task Log", log_name)
    else:
        log = frappe.new_doc("BTU Task Log")
        log.task = task_id
        log.task_desc_short = task["desc_short"] if task else "Unknown"
        if schedule_id:
            log.schedule = schedule_id
        if date_time_started:
            log.date_time_started = date_time_started
    if result.execution_time:
        log.execution_time = result.execution_time
    log.stdout = stdout
    log.result_message = str(result.message)
    log.success_fail = "Success" if result.okay else "Failed"
    log.save(ignore_permissions=True)
    frappe.db.commit()
    if task and task["repeat_log_in_stdout"]:
        print(log.stdout)
    return log.name


def check_in_progress_logs_for_timeout(verbose: bool = False) -> None:
    """The app's every-5-minutes scheduler event: an In-Progress row older than its task's
    max_task_duration becomes 'Timeout' (a document save, so on_update sends the timeout e-mail)."""
    for name in frappe.get_list("BTU Task Log", filters={"success_fail": "In-Progress"}, pluck="name"):
        log = frappe.get_doc("BTU Task Log", name)
        max_seconds = int(frappe.db.get_value("BTU Task", log.task, "max_task_duration"))
        if (now_datetime() - log.creation).total_seconds() > max_seconds:
            log.success_fail = "Timeout"
            log.save()
            frappe.db.commit()
