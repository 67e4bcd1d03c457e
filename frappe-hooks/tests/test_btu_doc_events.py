"""doc_events handlers, loaded from the installed btu_hooks app's hooks.py, firing from real
document saves in the stand-in frappe (with the stand-in BTU app's controllers and btu_hooks'
BTU Task Schedule override), with a fake btu_client."""

from __future__ import annotations

import sys
from typing import Any

import frappe
import pytest
from btu_hooks_testutil import SITE, FakeClient
from btu_testdb import TestDatabase

SOCKET = "/tmp/btu_scheduler.sock"  # BTU Configuration.path_to_btu_scheduler_uds in the sample data


def messages() -> list[dict[str, Any]]:
    return frappe.get_message_log()


def test_schedule_save_notifies_only_after_commit(site: str, testdb: TestDatabase, fake_client: FakeClient) -> None:
    seen_by_daemon: list[str] = []
    # what a daemon reading the row at notify time would see (another connection: committed data only)
    fake_client.on_call = lambda: seen_by_daemon.extend(
        r["cron_string"] for r in testdb.query("SELECT cron_string FROM `tabBTU Task Schedule` WHERE name='TS-000002'"))

    doc = frappe.get_doc("BTU Task Schedule", "TS-000002")
    doc.cron_string = "5 4 * * *"
    doc.save()
    assert fake_client.calls == []  # not before the commit

    frappe.db.commit()
    assert fake_client.calls == [("notify", ["TS-000002"], SITE, SOCKET)]
    assert seen_by_daemon == ["5 4 * * *"]
    [msg] = messages()
    assert "TS-000002: next run 2026-12-01 19:00-08:00" in msg["message"]
    assert msg["indicator"] == "green" and msg.get("alert") == 1


def test_insert_notifies_once(site: str, fake_client: FakeClient) -> None:
    # the sample rows were inserted without their naming-series counter
    frappe.db.sql("INSERT INTO tabSeries (name, current) VALUES ('TS-', 6)")
    doc = frappe.get_doc({"doctype": "BTU Task Schedule", "task": "BTU-00002", "enabled": 1,
                          "cron_string": "0 6 * * *"}).insert()
    assert doc.name == "TS-000007"
    frappe.db.commit()
    # after_insert and on_update both fired: one call for the transaction
    assert fake_client.calls == [("notify", ["TS-000007"], SITE, SOCKET)]


def test_rollback_tells_the_daemon_nothing(site: str, fake_client: FakeClient) -> None:
    doc = frappe.get_doc("BTU Task Schedule", "TS-000002")
    doc.save()
    frappe.db.rollback()
    frappe.db.commit()
    assert fake_client.calls == []
    # the next transaction is unaffected
    frappe.get_doc("BTU Task Schedule", "TS-000001").save()
    frappe.db.commit()
    assert fake_client.calls == [("notify", ["TS-000001"], SITE, SOCKET)]


def test_disabling_a_schedule_cancels_it(site: str, fake_client: FakeClient) -> None:
    doc = frappe.get_doc("BTU Task Schedule", "TS-000002")
    doc.enabled = 0
    doc.save()
    frappe.db.commit()
    assert fake_client.calls == [("cancel", "TS-000002", SITE, SOCKET)]


def test_cancel_of_a_schedule_the_daemon_never_planned_is_quiet(site: str, fake_client: FakeClient) -> None:
    fake_client.reject["TS-000003"] = "unknown schedule"
    frappe.get_doc("BTU Task Schedule", "TS-000003").save()  # disabled in the sample data
    frappe.db.commit()
    assert fake_client.calls == [("cancel", "TS-000003", SITE, SOCKET)]
    assert messages() == []


def test_deleting_a_schedule_cancels_it(site: str, fake_client: FakeClient) -> None:
    frappe.delete_doc("BTU Task Schedule", "TS-000002")
    frappe.db.commit()
    assert fake_client.calls == [("cancel", "TS-000002", SITE, SOCKET)]


@pytest.mark.parametrize("change", ["save", "submit", "cancel", "delete", "update_after_submit"])
def test_task_changes_notify_all_its_schedules(site: str, fake_client: FakeClient, change: str) -> None:
    if change == "submit":
        doc = frappe.get_doc("BTU Task", "BTU-00002")
        frappe.db.set_value("BTU Task", "BTU-00002", "docstatus", 0)
        doc.docstatus = 0
        doc.submit()
    elif change == "cancel":
        frappe.get_doc("BTU Task", "BTU-00002").cancel()
    elif change == "delete":
        frappe.delete_doc("BTU Task", "BTU-00002")
    elif change == "update_after_submit":
        frappe.get_doc("BTU Task", "BTU-00002").save()  # docstatus 1: on_update_after_submit
    else:
        doc = frappe.get_doc("BTU Task", "BTU-00002")
        frappe.db.set_value("BTU Task", "BTU-00002", "docstatus", 0)
        doc.docstatus = 0
        doc.save()
    frappe.db.commit()
    assert fake_client.calls == [("notify", ["TS-000002", "TS-000003"], SITE, SOCKET)]


def test_configuration_change_rebuilds(site: str, fake_client: FakeClient) -> None:
    doc = frappe.get_doc("BTU Configuration")
    doc.cron_time_zone = "Europe/Berlin"
    doc.save()
    frappe.db.commit()
    assert fake_client.calls == [("rebuild", SITE, SOCKET)]


def test_daemon_unavailable_keeps_the_save_and_tells_the_user(site: str, testdb: TestDatabase, fake_client: FakeClient) -> None:
    fake_client.fail = FakeClient.DaemonUnavailable(f"cannot connect to {SOCKET}: No such file or directory")
    doc = frappe.get_doc("BTU Task Schedule", "TS-000002")
    doc.cron_string = "7 7 * * *"
    doc.save()
    frappe.db.commit()  # must not raise

    assert testdb.query("SELECT cron_string FROM `tabBTU Task Schedule` WHERE name='TS-000002'") == [{"cron_string": "7 7 * * *"}]
    [msg] = messages()
    assert "could not be reached" in msg["message"]
    assert "TS-000002" in msg["message"] and "No such file or directory" in msg["message"]
    assert "periodic rebuild" in msg["message"]
    assert msg["indicator"] == "orange"


def test_daemon_unavailable_stops_after_the_first_call(site: str, fake_client: FakeClient) -> None:
    fake_client.fail = FakeClient.DaemonUnavailable("timed out")
    frappe.get_doc("BTU Task Schedule", "TS-000002").save()
    frappe.delete_doc("BTU Task Schedule", "TS-000001")
    frappe.db.commit()
    assert len(fake_client.calls) == 1
    assert "TS-000002" in messages()[0]["message"] and "TS-000001" in messages()[0]["message"]


def test_rejected_schedule_shows_the_daemons_reason(site: str, fake_client: FakeClient) -> None:
    fake_client.reject["TS-000005"] = "minute field: 61 is out of range 0-59"
    frappe.get_doc("BTU Task Schedule", "TS-000005").save()
    frappe.get_doc("BTU Task Schedule", "TS-000002").save()
    frappe.db.commit()
    # the batch was rejected, so each schedule was asked for on its own
    assert [c[1] for c in fake_client.calls] == [["TS-000005", "TS-000002"], ["TS-000005"], ["TS-000002"]]
    rejected, ok = messages()
    assert "TS-000005" in rejected["message"] and "minute field: 61 is out of range 0-59" in rejected["message"]
    assert rejected["indicator"] == "red"
    assert "TS-000002: next run" in ok["message"]


def test_protocol_error_is_logged_and_shown(site: str, fake_client: FakeClient) -> None:
    fake_client.fail = FakeClient.ProtocolError("client speaks 2, daemon speaks 1")
    frappe.get_doc("BTU Task Schedule", "TS-000002").save()
    frappe.db.commit()
    assert "client speaks 2, daemon speaks 1" in messages()[0]["message"]
    assert frappe.local.error_log[0].method == "BTU scheduler: request failed"


def test_unexpected_error_after_commit_does_not_break_the_commit(site: str, fake_client: FakeClient) -> None:
    fake_client.fail = RuntimeError("bug")
    frappe.get_doc("BTU Task Schedule", "TS-000002").save()
    frappe.db.commit()
    assert "RuntimeError: bug" in messages()[0]["message"]
    assert "RuntimeError: bug" in frappe.local.error_log[0].error


def test_in_a_web_request_the_message_goes_out_as_a_realtime_event(site: str, fake_client: FakeClient) -> None:
    frappe.local.request = object()  # Frappe builds the HTTP response before it commits
    frappe.set_user("planner@example.com")
    fake_client.fail = FakeClient.DaemonUnavailable("connection refused")
    frappe.get_doc("BTU Task Schedule", "TS-000002").save()
    frappe.db.commit()
    assert messages() == []
    [event] = frappe.local.realtime_log
    assert event.event == "msgprint" and event.user == "planner@example.com"
    assert "could not be reached" in event.message["message"]


def test_missing_btu_client_is_reported(site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "btu_client", None)  # makes `import btu_client` fail
    frappe.get_doc("BTU Task Schedule", "TS-000002").save()
    frappe.db.commit()
    assert "btu_client package is not installed" in messages()[0]["message"]


def test_without_after_commit_hook_the_daemon_is_told_at_once(site: str, fake_client: FakeClient,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(frappe.local.db, "after_commit")  # as on Frappe before v15
    frappe.get_doc("BTU Task Schedule", "TS-000002").save()
    assert fake_client.calls == [("notify", ["TS-000002"], SITE, SOCKET)]
    frappe.get_doc("BTU Configuration").save()
    assert fake_client.calls[-1] == ("rebuild", SITE, SOCKET)


def test_documented_doc_events_are_the_app_hooks() -> None:
    import ast
    import re
    from pathlib import Path

    from btu_hooks.hooks import doc_events

    doc = "docs/frappe.md"

    text = (Path(__file__).resolve().parents[2] / doc).read_text(encoding="utf-8")
    match = re.search(r"```python\n(doc_events = \{.*?\n\})\n```", text, re.DOTALL)
    assert match, f"no doc_events snippet in {doc}"
    assert ast.literal_eval(match.group(1).split("=", 1)[1].strip()) == doc_events


def test_schedule_that_will_not_run_is_reported(site: str, fake_client: FakeClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def notify(schedules: Any, **kw: Any) -> list[dict[str, Any]]:
        fake_client.calls.append(("notify", list(schedules)))
        return [{"site": SITE, "schedule": "TS-000004", "runs": False, "reason": "task BTU-00003 is not submitted",
                 "time_zone": None, "next_runs": []}]

    monkeypatch.setattr(fake_client, "notify", notify)
    frappe.get_doc("BTU Task Schedule", "TS-000004").save()
    frappe.db.commit()
    [msg] = messages()
    assert msg["message"] == "TS-000004 will not run: task BTU-00003 is not submitted"
    assert msg["indicator"] == "orange" and "alert" not in msg


def test_with_the_real_btu_client_and_no_daemon(site: str, tmp_path: Any) -> None:
    """The real wheel's DaemonUnavailable (socket path from BTU Configuration) is handled."""
    pytest.importorskip("btu_client")
    missing = str(tmp_path / "no-daemon.sock")
    frappe.db.set_value("BTU Configuration", "BTU Configuration", "path_to_btu_scheduler_uds", missing,
                        update_modified=False)
    frappe.db.commit()
    frappe.get_doc("BTU Task Schedule", "TS-000002").save()
    frappe.db.commit()
    [msg] = messages()
    assert "could not be reached" in msg["message"] and missing in msg["message"]
