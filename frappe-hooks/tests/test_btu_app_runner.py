"""Runs on a site WITH the BTU app (the stand-in of tests/btu_standin) and btu_hooks installed:
btu_hooks.runner.run_task, called through execute_job as a worker calls it, delegates to the
app's TaskRunner; the app's BTU Task Log controller sends the run e-mails to a real SMTP server."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import frappe
import pytest
from btu_hooks.errors import TaskNotFound, TaskRunFailed
import btu_hooks_testutil as testutil
from btu_hooks_testutil import JOB_ID, SITE, add_recipient, add_schedule, add_task, log_rows, set_installed_apps
from btu_testdb import TestDatabase
from smtp_sink import SmtpSink

T = "btu_hooks_testtasks"


def run_job(task: str, schedule: str | None = "TS-100001", arguments: dict[str, Any] | None = None) -> Any:
    return testutil.run_job(task, schedule, arguments)


def test_a_run_goes_through_the_apps_task_runner(sites: Path, testdb: TestDatabase) -> None:
    add_task(testdb, "BTU-20001", f"{T}.echo_kwargs", arguments="{'a': 1, 'b': 'task'}")
    add_schedule(testdb, "TS-100001", "BTU-20001", overrides="{'b': 'schedule'}")
    result = run_job("BTU-20001", arguments={"ignored": "the app merges the rows itself"})

    [row] = log_rows(testdb)
    assert row["success_fail"] == "Success" and row["task_component"] == "Main"
    assert row["schedule"] == "TS-100001" and row["task_desc_short"] == "test task BTU-20001"
    assert row["result_message"] == "{'a': 1, 'b': 'schedule'}" == result  # the app's str() of the result
    assert row["stdout"].startswith("Is this a BTU-Aware function = False\n")  # what the app's runner prints
    [task] = testdb.query("SELECT last_runtime FROM `tabBTU Task` WHERE name = 'BTU-20001'")
    assert task["last_runtime"] is not None  # stamped by the app's BTU Task Log controller


def test_the_job_id_goes_into_redis_job_id_without_touching_modified(sites: Path, testdb: TestDatabase) -> None:
    add_task(testdb, "BTU-20002", f"{T}.greet")
    add_schedule(testdb, "TS-100001", "BTU-20002")
    [before] = testdb.query("SELECT modified FROM `tabBTU Task Schedule` WHERE name = 'TS-100001'")
    run_job("BTU-20002")
    [after] = testdb.query("SELECT redis_job_id, modified FROM `tabBTU Task Schedule` WHERE name = 'TS-100001'")
    assert after == {"redis_job_id": JOB_ID, "modified": before["modified"]}


def test_a_failure_recorded_by_the_app_is_raised_for_rq(sites: Path, testdb: TestDatabase) -> None:
    add_task(testdb, "BTU-20003", f"{T}.fail_after_write")
    add_schedule(testdb, "TS-100001", "BTU-20003")
    with pytest.raises(TaskRunFailed, match="run Failed .*boom: the invoice run failed") as caught:
        run_job("BTU-20003")
    [row] = log_rows(testdb)
    assert caught.value.log == row["name"] and caught.value.status == "Failed"
    assert row["success_fail"] == "Failed"
    assert row["result_message"] == "boom: the invoice run failed"  # the app records str(exception)
    assert row["stdout"] is None  # the app loses the output of a failed run


def test_the_apps_result_rule_an_int_return_is_a_failure(sites: Path, testdb: TestDatabase) -> None:
    """btu.Result accepts only str, dict or list messages: the app records a task returning 7 as
    Failed (a TypeError), and btu_hooks raises it like any failure."""
    add_task(testdb, "BTU-20004", f"{T}.return_an_int")
    add_schedule(testdb, "TS-100001", "BTU-20004")
    with pytest.raises(TaskRunFailed, match="must be a Python String, List, or Dictionary"):
        run_job("BTU-20004")
    assert log_rows(testdb)[0]["success_fail"] == "Failed"


def test_a_btu_aware_class_runs_as_the_app_runs_it(sites: Path, testdb: TestDatabase) -> None:
    from btu_hooks_awaretasks import AwareGreeter

    AwareGreeter.made.clear()
    add_task(testdb, "BTU-20005", "btu_hooks_awaretasks.AwareGreeter", arguments="{'name': 'Ann', 'x': 1}")
    add_schedule(testdb, "TS-100001", "BTU-20005")
    assert run_job("BTU-20005") == "greeted Ann as BTU-20005"
    assert AwareGreeter.made == ["BTU-20005", "BTU-20005"]  # one instance to detect, one to run
    [row] = log_rows(testdb)
    assert "BTU-20005 greets Ann with ['x']" in row["stdout"]


def test_a_missing_task_is_recorded_and_raised(sites: Path, testdb: TestDatabase) -> None:
    with pytest.raises(TaskNotFound):
        run_job("BTU-29999", schedule="TS-000006")
    [row] = log_rows(testdb)
    assert row["success_fail"] == "Failed" and row["task_component"] == "Main"


def test_a_module_the_app_cannot_import_is_recorded_and_raised(sites: Path, testdb: TestDatabase) -> None:
    add_task(testdb, "BTU-20006", "no_such_module_xyz.run")
    add_schedule(testdb, "TS-100001", "BTU-20006")
    with pytest.raises(ModuleNotFoundError):
        run_job("BTU-20006")
    [row] = log_rows(testdb)  # the app's runner wrote none before failing; btu_hooks did
    assert row["success_fail"] == "Failed" and "ModuleNotFoundError" in row["result_message"]


def test_start_success_and_failure_emails_arrive(sites: Path, testdb: TestDatabase, smtp: SmtpSink) -> None:
    add_task(testdb, "BTU-20007", f"{T}.greet", desc="Say hello")
    add_task(testdb, "BTU-20008", f"{T}.fail_after_write", desc="Fail")
    add_schedule(testdb, "TS-100001", "BTU-20007")
    add_schedule(testdb, "TS-100002", "BTU-20008")
    for sched in ("TS-100001", "TS-100002"):
        add_recipient(testdb, sched, "ops@example.com", start=1, success=1, error=1)
        add_recipient(testdb, sched, "quiet@example.com", start=0, success=0, error=0)

    run_job("BTU-20007", schedule="TS-100001")
    with pytest.raises(TaskRunFailed):
        run_job("BTU-20008", schedule="TS-100002")

    mails = smtp.wait_for(4)
    assert [(m.subject, m.rcpt_tos) for m in mails] == [
        ("(TEST) Started: BTU Task Say hello", ["ops@example.com"]),
        ("(TEST) Success: BTU Task Say hello", ["ops@example.com"]),
        ("(TEST) Started: BTU Task Fail", ["ops@example.com"]),
        ("(TEST) Failed: BTU Task Fail", ["ops@example.com"]),
    ]
    assert all(m.mail_from == "btu@example.com" for m in mails)
    assert "Outcome: Failed" in mails[3].body and "boom: the invoice run failed" in mails[3].body
    assert mails[1].body.startswith("(sent from the ERPNext TEST environment)")
    assert smtp.failed_logins == []


def test_a_run_left_in_progress_becomes_timeout_with_its_email(sites: Path, testdb: TestDatabase, smtp: SmtpSink) -> None:
    """A run whose worker died stays In-Progress; the app's own check (a scheduler event every
    5 minutes) marks it Timeout through a document save, and the Timeout e-mail goes out."""
    add_task(testdb, "BTU-20009", f"{T}.greet", desc="Slow")
    add_schedule(testdb, "TS-100001", "BTU-20009")
    add_recipient(testdb, "TS-100001", "ops@example.com", error=0, timeout=1)
    frappe.init(SITE)
    frappe.connect()
    log = frappe.get_doc({"doctype": "BTU Task Log", "task": "BTU-20009", "task_desc_short": "Slow",
                          "schedule": "TS-100001", "task_component": "Main", "success_fail": "In-Progress"})
    log.insert(ignore_permissions=True)
    frappe.db.sql("UPDATE `tabBTU Task Log` SET creation = %s WHERE name = %s",
                  (frappe.utils.now_datetime() - timedelta(seconds=700), log.name))
    frappe.db.commit()
    from btu.btu_core.doctype.btu_task_log.btu_task_log import check_in_progress_logs_for_timeout

    check_in_progress_logs_for_timeout()
    [mail] = smtp.wait_for(1)
    assert mail.subject == "(TEST) Timeout: BTU Task Slow" and "Timeout!" in mail.body
    assert log_rows(testdb)[0]["success_fail"] == "Timeout"


def test_without_a_stored_smtp_password_the_app_marks_the_run_failed(sites: Path, testdb: TestDatabase, smtp: SmtpSink) -> None:
    """The app's Emailer always logs in: with no email_auth_password stored, sending fails and the
    app's on_update marks the log row Failed (so btu_hooks fails the job)."""
    testdb.query("DELETE FROM `__Auth`")
    add_task(testdb, "BTU-20010", f"{T}.greet")
    add_schedule(testdb, "TS-100001", "BTU-20010")
    add_recipient(testdb, "TS-100001", "ops@example.com", success=1)
    with pytest.raises(TaskRunFailed):
        run_job("BTU-20010")
    [row] = log_rows(testdb)
    assert row["success_fail"] == "Failed"
    assert "Password not found for BTU Configuration" in row["stdout"]
    assert smtp.messages == []


def test_installed_btu_app_means_the_apps_runner(sites: Path, testdb: TestDatabase) -> None:
    from btu_hooks.runner import uses_app_runner

    frappe.init(SITE)
    frappe.connect()
    assert uses_app_runner()
    set_installed_apps(testdb, ["frappe", "btu_hooks"])
    frappe.destroy()
    frappe.init(SITE)
    frappe.connect()
    assert not uses_app_runner()
    assert "btu" in sys.modules  # importable is not enough: the app must be installed on the site
