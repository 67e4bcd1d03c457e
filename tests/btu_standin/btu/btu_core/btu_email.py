"""The app's run e-mails, sent with smtplib per BTU Configuration (send_email_via 'SMTP':
email_server, email_server_port, email_encryption 'STARTTLS' or not, a login with
email_auth_username and the email_auth_password from __Auth; a missing password raises
frappe.AuthenticationError). Subjects and bodies get the environment_name prefix.
Not reproduced: sending through Mandrill (the real app imports a private `mailchimp` app for it)."""

from __future__ import annotations

import smtplib
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

import frappe
from frappe.utils.password import get_decrypted_password

from btu import dprint

DEBUG_ENV_VARIABLE = "BTU_DEBUG"


def _as_list(recipients: Any) -> list[str]:
    if not recipients:
        return []
    if isinstance(recipients, str):
        return recipients.replace(",", ";").split(";")
    if isinstance(recipients, list):
        return recipients
    raise TypeError(f"Argument 'recipients' has an unhandled data type '{type(recipients)}'")


def _as_csv(recipients: list[str]) -> str | None:
    return ", ".join(recipients) if recipients else None


class Emailer:
    def __init__(self, subject: str, body: str | None, sender: str | None = None, emailto_list: Any = None,
                 ccto_list: Any = None, bccto_list: Any = None) -> None:
        if not isinstance(subject, str):
            raise ValueError("Argument 'subject' should be a Python string type.")
        self.sender = sender
        self.config = frappe.get_single("BTU Configuration")
        env = self.config.environment_name
        self.subject = f"({env}) {subject}" if env else subject
        self.body = (f"(sent from the ERPNext {env} environment)\n\n" if env else "") + (body or "")
        self.emailto_list, self.ccto_list, self.bccto_list = _as_list(emailto_list), _as_list(ccto_list), _as_list(bccto_list)
        self.to_as_string = _as_csv(self.emailto_list)
        self.cc_as_string = _as_csv(self.ccto_list)
        self.bcc_as_string = _as_csv(self.bccto_list)

    def send(self) -> None:
        if self.config.send_email_via == "SMTP":
            self._send_via_smtp()
        else:
            raise ValueError(f"Unexpected configuration value '{self.config.send_email_via}' in BTU Configuration.")

    def _message(self) -> str:
        if self.config.email_body_is_html:
            msg = MIMEMultipart("alternative")
            msg["Subject"] = self.subject
            msg["From"] = self.sender or self.config.email_auth_username
            for header, value in (("To", self.to_as_string), ("CC", self.cc_as_string), ("Bcc", self.bcc_as_string)):
                if value:
                    msg[header] = value
            msg.attach(MIMEText(self.body, "plain"))
            msg.attach(MIMEText("<html> <head></head> <body>" + self.body.replace("\n", "<br>") + "</body></html>", "html"))
            return msg.as_string()
        header = f"From: {self.sender}\nTo: {self.to_as_string}\n"
        for value in (self.cc_as_string, self.bcc_as_string):
            if value:
                header += f"CC: {value}\n"
        return header + f"Subject: {self.subject}\n\n" + self.body

    def _send_via_smtp(self) -> None:
        password = get_decrypted_password("BTU Configuration", "BTU Configuration", "email_auth_password")
        message = self._message()
        with smtplib.SMTP(self.config.email_server, self.config.email_server_port) as smtp:
            if smtp.ehlo()[0] != 250:
                raise ValueError("SMTP 'Hello' check failed.")
            if self.config.email_encryption == "STARTTLS":
                smtp.starttls()
            smtp.login(user=self.config.email_auth_username, password=password)
            smtp.sendmail(from_addr=self.sender, to_addrs=(self.to_as_string or "").split(","), msg=message)


def _check_log(doc_task_log: Any) -> None:
    from btu.btu_core.doctype.btu_task_log.btu_task_log import BTUTaskLog

    if not isinstance(doc_task_log, BTUTaskLog):
        raise frappe.MandatoryError("Function requires argument 'doc_task_log', which should be an instance of BTU Task Log document.")


def email_on_task_start(doc_task_log: Any) -> None:
    """To the schedule's recipients with email_on_start."""
    _check_log(doc_task_log)
    if not doc_task_log.schedule:
        return
    schedule = frappe.get_doc("BTU Task Schedule", doc_task_log.schedule)
    for recipient in [r for r in schedule.email_recipients if r.email_on_start]:
        dprint(f"Sending email to {recipient.email_address}: {doc_task_log.schedule} started", DEBUG_ENV_VARIABLE)
        Emailer(sender=frappe.get_doc("BTU Configuration").email_auth_username,
                emailto_list=recipient.email_address or None,
                subject=f"Started: BTU Task {doc_task_log.task_desc_short}",
                body=f"Task Schedule {doc_task_log.schedule}\nTask {doc_task_log.task} "
                     f"({doc_task_log.task_desc_short}) is now In-Progress.").send()


_FLAG = {"Success": "email_on_success", "Failed": "email_on_error", "Timeout": "email_on_timeout"}


def email_on_task_conclusion(doc_task_log: Any) -> None:
    """To the schedule's recipients whose flag matches the outcome (Success, Failed, Timeout)."""
    _check_log(doc_task_log)
    if not doc_task_log.schedule:
        return
    schedule = frappe.get_doc("BTU Task Schedule", doc_task_log.schedule)
    status = doc_task_log.success_fail
    for recipient in schedule.email_recipients:
        if status in _FLAG and not recipient.get(_FLAG[status]):
            continue
        body = f"Task {doc_task_log.task} : '{doc_task_log.task_desc_short}'\nOutcome: {status}\n\n"
        if doc_task_log.result_message:
            body += f"Function returned this Result:\n'{doc_task_log.result_message}'\n\n"
        if doc_task_log.stdout:
            body += f"Standard Output:\n{doc_task_log.stdout}"
        if status == "Timeout":
            body += ("\nTimeout!\nTask has not returned results in a timely manner; "
                     "it may have timed-out or died inside Python RQ.")
        Emailer(sender=frappe.get_doc("BTU Configuration").email_auth_username,
                emailto_list=recipient.email_address or None,
                subject=f"{status}: BTU Task {doc_task_log.task_desc_short}", body=body).send()
