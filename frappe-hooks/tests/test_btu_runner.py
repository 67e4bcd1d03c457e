"""btu_hooks' own task runner (a site WITHOUT the BTU app), called the way a stock `rq worker`
calls it in a bench: through frappe.utils.background_jobs.execute_job with the daemon's keyword
arguments. The task functions live in btu_hooks_testtasks, a module of no installed app."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import frappe
import pytest
from btu_hooks.arguments import parse_arguments
from btu_hooks.capture import OutputCapture
from btu_hooks.errors import InvalidArguments, TaskCancelled, TaskFunctionNotFound, TaskNotFound
from btu_hooks.own_runner import is_timeout
import btu_hooks_testutil as testutil
from btu_hooks_testutil import SITE, add_schedule, add_task, log_rows
from btu_testdb import TestDatabase

T = "btu_hooks_testtasks"


@pytest.fixture(autouse=True)
def _no_btu_app(without_btu_app: Path) -> None:
    """Every test here runs on a site without the BTU app: btu_hooks' own runner."""


def run_job(task: str, schedule: str | None = "TS-000002", arguments: dict[str, Any] | None = None) -> Any:
    return testutil.run_job(task, schedule, arguments)


def test_success_writes_one_log_row_with_stdout_and_result(sites: Path, testdb: TestDatabase) -> None:
    add_task(testdb, "BTU-10001", f"{T}.say_hello", desc="Say hello")
    assert run_job("BTU-10001", arguments={"name": "BTU"}) == 42

    [row] = log_rows(testdb)
    assert re.fullmatch(r"BTLOG-\d{7}", row["name"])
    assert row["success_fail"] == "Success"
    assert row["stdout"] == "hello BTU\n"
    assert row["result_message"] == "42"  # str() of the return value
    assert row["task_component"] == "Main"
    assert row["task"] == "BTU-10001"
    assert row["task_desc_short"] == "Say hello"
    assert row["schedule"] == "TS-000002"
    assert isinstance(row["execution_time"], Decimal) and row["execution_time"] >= 0
    # date_time_started is naive local time of the site (System Settings: America/Los_Angeles)
    local_now = datetime.now(ZoneInfo("America/Los_Angeles")).replace(tzinfo=None)
    assert abs(row["date_time_started"] - local_now) < timedelta(minutes=10)
    utc_now = datetime.now(UTC).replace(tzinfo=None)
    assert abs(row["date_time_started"] - utc_now) > timedelta(hours=6)


def test_each_run_gets_its_own_row_from_the_naming_series(sites: Path, testdb: TestDatabase) -> None:
    add_task(testdb, "BTU-10001", f"{T}.say_hello")
    run_job("BTU-10001", arguments={})
    run_job("BTU-10001", arguments={})
    assert [r["name"] for r in log_rows(testdb)] == ["BTLOG-0000001", "BTLOG-0000002"]
    assert testdb.query("SELECT current FROM tabSeries WHERE name = 'BTLOG-'") == [{"current": 2}]


def test_failure_is_recorded_rolled_back_and_reraised(sites: Path, testdb: TestDatabase) -> None:
    add_task(testdb, "BTU-10002", f"{T}.fail_after_write")
    with pytest.raises(ValueError, match="boom"):
        run_job("BTU-10002", arguments={})

    [row] = log_rows(testdb)
    assert row["success_fail"] == "Failed"
    assert row["result_message"].startswith("ValueError: boom: the invoice run failed")
    assert "Traceback" in row["result_message"]
    assert row["stdout"] == "about to fail\n"
    # the task's own write did not survive its failure
    [task] = testdb.query("SELECT desc_short FROM `tabBTU Task` WHERE name = 'BTU-00001'")
    assert task["desc_short"] == "Nightly stock reconciliation"


def test_timeout_is_recorded_as_timeout_and_reraised(sites: Path, testdb: TestDatabase) -> None:
    add_task(testdb, "BTU-10003", f"{T}.time_out")
    with pytest.raises(Exception, match="maximum timeout"):
        run_job("BTU-10003", arguments={})
    [row] = log_rows(testdb)
    assert row["success_fail"] == "Timeout"
    assert row["stdout"] == "working...\n"
    assert "JobTimeoutException" in row["result_message"]


def test_system_exit_in_a_task_is_recorded(sites: Path, testdb: TestDatabase) -> None:
    add_task(testdb, "BTU-10004", f"{T}.exit_process")
    with pytest.raises(SystemExit):
        run_job("BTU-10004", arguments={})
    [row] = log_rows(testdb)
    assert row["success_fail"] == "Failed"
    assert row["result_message"].startswith("SystemExit: 3")


def test_in_progress_row_is_committed_while_the_task_runs(sites: Path, testdb: TestDatabase) -> None:
    add_task(testdb, "BTU-10005", f"{T}.own_log_status")
    assert run_job("BTU-10005", arguments={"task_name": "BTU-10005"}) == "In-Progress"
    [row] = log_rows(testdb)
    assert row["success_fail"] == "Success"
    assert row["result_message"] == "In-Progress"


def test_arguments_from_the_daemon_are_used_as_given(sites: Path, testdb: TestDatabase) -> None:
    add_task(testdb, "BTU-10006", f"{T}.echo_kwargs", arguments="{'a': 1}")
    given = {"a": 2, "nested": {"x": [1, (2, 3)], "none": None}, "flag": True}
    assert run_job("BTU-10006", arguments=given) == given


def test_arguments_merged_here_when_absent_schedule_overrides_win(sites: Path, testdb: TestDatabase) -> None:
    add_task(testdb, "BTU-10007", f"{T}.echo_kwargs", arguments="{'a': 1, 'b': 'task', 'keep': [1, 2]}")
    add_schedule(testdb, "TS-100007", "BTU-10007", overrides="{'b': 'schedule', 'c': 3.5}")
    result = run_job("BTU-10007", schedule="TS-100007", arguments=None)
    assert result == {"a": 1, "b": "schedule", "keep": [1, 2], "c": 3.5}
    # and the sample data's task BTU-00002 with TS-000002's overrides
    frappe.init(SITE)
    frappe.connect()
    from btu_hooks.arguments import merged_arguments

    merged = merged_arguments(frappe.get_doc("BTU Task", "BTU-00002"), "TS-000002")
    assert merged == {"days_overdue": 60, "dry_run": False, "customer_group": "Wholesale"}


def test_missing_task_is_recorded_and_raised(sites: Path, testdb: TestDatabase) -> None:
    with pytest.raises(TaskNotFound, match="BTU Task BTU-09999 not found"):
        run_job("BTU-09999", schedule="TS-000006", arguments={})
    [row] = log_rows(testdb)
    assert row["success_fail"] == "Failed"
    assert row["task"] == "BTU-09999" and row["schedule"] == "TS-000006"
    assert row["result_message"].startswith("TaskNotFound: BTU Task BTU-09999 not found")


def test_cancelled_task_is_not_run(sites: Path, testdb: TestDatabase) -> None:
    with pytest.raises(TaskCancelled):
        run_job("BTU-00004", schedule=None, arguments={})
    assert log_rows(testdb)[0]["success_fail"] == "Failed"


@pytest.mark.parametrize("function_string, reason", [
    ("btu_hooks_testtasks.no_such_function", "AttributeError"),
    ("no_such_module_xyz.run", "ModuleNotFoundError"),
    ("nodots", "not a dotted path"),
    ("btu_hooks_testtasks.not_callable", "not callable"),
])
def test_unresolvable_function_string(sites: Path, testdb: TestDatabase, function_string: str, reason: str) -> None:
    add_task(testdb, "BTU-10008", function_string)
    with pytest.raises(TaskFunctionNotFound, match=reason):
        run_job("BTU-10008", arguments={})
    [row] = log_rows(testdb)
    assert row["success_fail"] == "Failed"
    assert function_string in row["result_message"]


def test_invalid_argument_literal_fails_the_run(sites: Path, testdb: TestDatabase) -> None:
    add_task(testdb, "BTU-10009", f"{T}.echo_kwargs", arguments="{'a': os.system('x')}")
    with pytest.raises(InvalidArguments, match="BTU Task BTU-10009 arguments: not a Python literal"):
        run_job("BTU-10009", schedule=None, arguments=None)
    assert log_rows(testdb)[0]["success_fail"] == "Failed"


def test_repeat_log_in_stdout_echoes_the_output(sites: Path, testdb: TestDatabase, capsys: pytest.CaptureFixture[str]) -> None:
    add_task(testdb, "BTU-10010", f"{T}.say_hello", repeat_log_in_stdout=1)
    run_job("BTU-10010", arguments={"name": "echo"})
    assert "hello echo" in capsys.readouterr().out
    assert log_rows(testdb)[0]["stdout"] == "hello echo\n"


def test_output_capture_keeps_the_most_recent_output() -> None:
    cap = OutputCapture(10)
    for i in range(100):
        cap.write(f"{i:03d}\n")
    text = cap.getvalue()
    assert text.endswith("098\n099\n")
    assert text.startswith("[... 390 earlier characters dropped ...]\n")


def test_parse_arguments() -> None:
    assert parse_arguments(None, "x") == {}
    assert parse_arguments("  ", "x") == {}
    assert parse_arguments("{'a': (1, 2), 'b': None}", "x") == {"a": (1, 2), "b": None}
    with pytest.raises(InvalidArguments, match="expected a dict literal, got list"):
        parse_arguments("[1, 2]", "x")
    with pytest.raises(InvalidArguments, match="keys must be strings"):
        parse_arguments("{1: 2}", "x")


def test_is_timeout_matches_rq_by_name_or_class() -> None:
    from btu_hooks_testtasks import JobTimeoutException

    assert is_timeout(JobTimeoutException("x"))
    assert not is_timeout(ValueError("x"))
    rq_timeouts = pytest.importorskip("rq.timeouts")
    assert is_timeout(rq_timeouts.JobTimeoutException("x"))


def test_arguments_that_are_not_a_dict_fail_the_run(sites: Path, testdb: TestDatabase) -> None:
    add_task(testdb, "BTU-10011", f"{T}.echo_kwargs")
    with pytest.raises(InvalidArguments, match="expected a dict, got list"):
        run_job("BTU-10011", arguments=[1, 2])  # type: ignore[arg-type]
    assert log_rows(testdb)[0]["success_fail"] == "Failed"


def test_a_btu_aware_class_is_made_with_the_task_name_then_run(sites: Path, testdb: TestDatabase) -> None:
    add_task(testdb, "BTU-10012", f"{T}.Greeter", arguments="{'name': 'Ann'}")
    assert run_job("BTU-10012", arguments={"name": "Bob"}) == "greeted Bob as BTU-10012"
    [row] = log_rows(testdb)
    assert row["success_fail"] == "Success" and row["stdout"] == "BTU-10012 greets Bob\n"
    assert row["result_message"] == "greeted Bob as BTU-10012"


def test_the_job_id_goes_into_redis_job_id_without_touching_modified(sites: Path, testdb: TestDatabase) -> None:
    add_task(testdb, "BTU-10013", f"{T}.say_hello")
    add_schedule(testdb, "TS-100013", "BTU-10013")
    [before] = testdb.query("SELECT modified, modified_by FROM `tabBTU Task Schedule` WHERE name = 'TS-100013'")
    run_job("BTU-10013", schedule="TS-100013", arguments={})
    [after] = testdb.query("SELECT redis_job_id, modified, modified_by FROM `tabBTU Task Schedule` WHERE name = 'TS-100013'")
    assert after["redis_job_id"] == "btu-hooks-test-job"
    assert (after["modified"], after["modified_by"]) == (before["modified"], before["modified_by"])


def test_a_failed_run_keeps_its_job_id_in_the_schedule(sites: Path, testdb: TestDatabase) -> None:
    add_task(testdb, "BTU-10014", f"{T}.fail_after_write")
    add_schedule(testdb, "TS-100014", "BTU-10014")
    with pytest.raises(ValueError):
        run_job("BTU-10014", schedule="TS-100014", arguments={})
    assert testdb.query("SELECT redis_job_id FROM `tabBTU Task Schedule` WHERE name = 'TS-100014'") == [
        {"redis_job_id": "btu-hooks-test-job"}]


def test_runs_without_the_btu_app_use_the_own_runner() -> None:
    from btu_hooks.runner import uses_app_runner

    frappe.init(SITE)
    frappe.connect()
    assert frappe.get_installed_apps() == ["frappe", "btu_hooks"]
    assert not uses_app_runner()
