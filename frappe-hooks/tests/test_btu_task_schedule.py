"""BTU Task Schedule saves: the BTU app's own controller (stand-in, unmodified) tells the original
daemon over its Unix socket BEFORE the commit; with btu_hooks installed its override makes no
socket calls and doc_events tells btu-daemon after the commit. Also what the app stores for each
run_frequency (what the daemon reads)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import frappe
import pytest
from btu_hooks_testutil import SITE, FakeClient, set_installed_apps
from btu_testdb import TestDatabase
from legacy_daemon import FakeLegacyDaemon

CANCEL, CREATE = "cancel_task_schedule", "create_task_schedule"


def connect() -> None:
    frappe.init(SITE)
    frappe.connect()


@pytest.fixture
def app_only(sites: Path, testdb: TestDatabase) -> Path:
    """The BTU app as it ships: btu_hooks not installed on the site."""
    set_installed_apps(testdb, ["frappe", "btu"])
    frappe.init(SITE)
    frappe.connect()
    frappe.clear_cache()
    frappe.destroy()
    return sites


def requests(legacy: FakeLegacyDaemon) -> list[tuple[str, str | None]]:
    return [(r["request_type"], r["request_content"]) for r in legacy.requests]


def committed_cron(testdb: TestDatabase, name: str) -> Any:
    rows = testdb.query("SELECT cron_string FROM `tabBTU Task Schedule` WHERE name = %s", (name,))
    return rows[0]["cron_string"] if rows else None


def test_the_apps_controller_tells_the_legacy_daemon_before_the_commit(app_only: Path, testdb: TestDatabase,
                                                                       legacy_daemon: FakeLegacyDaemon) -> None:
    seen: list[Any] = []  # the committed cron when each request arrived
    legacy_daemon.answer = lambda req: (seen.append(committed_cron(testdb, "TS-000002")), "ok")[1]
    connect()
    doc = frappe.get_doc("BTU Task Schedule", "TS-000002")
    doc.cron_string = "5 4 * * *"
    doc.save()
    assert requests(legacy_daemon) == [(CANCEL, "TS-000002"), (CREATE, "TS-000002")]
    assert seen == ["0 19 * * MON-FRI"] * 2  # the daemon could only read the old row
    frappe.db.rollback()  # ... and was told about a change that never happened
    assert committed_cron(testdb, "TS-000002") == "0 19 * * MON-FRI"

    doc = frappe.get_doc("BTU Task Schedule", "TS-000002")
    doc.enabled = 0
    doc.save()  # disabling: one cancel
    frappe.delete_doc("BTU Task Schedule", "TS-000001")  # deleting: one cancel
    frappe.db.commit()
    assert requests(legacy_daemon)[2:] == [(CANCEL, "TS-000002"), (CANCEL, "TS-000001")]
    assert any("Response from BTU Scheduler daemon" in str(m["message"]) for m in frappe.get_message_log())


def test_the_apps_controller_without_a_daemon_shows_the_error_object(app_only: Path) -> None:
    """No socket file: an enabled save goes through but queues the exception object itself as a
    message (which real Frappe cannot serialise in an HTTP response: the save then fails)."""
    connect()
    frappe.db.set_value("BTU Configuration", None, "path_to_btu_scheduler_uds", "/nonexistent/btu.sock")
    frappe.get_doc("BTU Task Schedule", "TS-000002").save()
    assert any(isinstance(m["message"], FileNotFoundError) for m in frappe.get_message_log())
    doc = frappe.get_doc("BTU Task Schedule", "TS-000002")
    doc.enabled = 0
    with pytest.raises(FileNotFoundError):  # disabling is not guarded: the save fails
        doc.save()


def test_with_btu_hooks_saves_make_no_socket_calls(site: str, testdb: TestDatabase, legacy_daemon: FakeLegacyDaemon,
                                                  fake_client: FakeClient) -> None:
    doc = frappe.get_doc("BTU Task Schedule", "TS-000002")
    doc.cron_string = "5 4 * * *"
    doc.save()
    frappe.db.rollback()
    doc = frappe.get_doc("BTU Task Schedule", "TS-000002")
    doc.cron_string = "6 4 * * *"
    doc.save()
    frappe.db.commit()
    doc = frappe.get_doc("BTU Task Schedule", "TS-000002")
    doc.enabled = 0
    doc.save()
    frappe.delete_doc("BTU Task Schedule", "TS-000001")
    frappe.db.commit()
    assert legacy_daemon.requests == []
    assert [c[:2] for c in fake_client.calls] == [("notify", ["TS-000002"]), ("cancel", "TS-000002"),
                                                   ("cancel", "TS-000001")]
    assert committed_cron(testdb, "TS-000002") == "6 4 * * *"


def test_the_override_keeps_the_apps_checks(site: str, fake_client: FakeClient) -> None:
    from btu.btu_core.doctype.btu_task_schedule.btu_task_schedule import BTUTaskSchedule as AppSchedule

    doc = frappe.get_doc("BTU Task Schedule", "TS-000002")
    assert isinstance(doc, AppSchedule)
    with pytest.raises(ValueError, match=r"pipe character \(\|\)"):
        frappe.get_doc({"doctype": "BTU Task Schedule", "task": "BTU-00002", "enabled": 1, "cron_string": "0 6 * * *",
                        "run_frequency": "Cron Style"}).insert(set_name="TS|1")
    doc.run_frequency, doc.minute = "Hourly", 75
    with pytest.raises(ValueError, match="Minute value must be between 0 and 59"):
        doc.save()


def test_resubmit_all_goes_through_btu_client(site: str, testdb: TestDatabase, legacy_daemon: FakeLegacyDaemon,
                                              fake_client: FakeClient) -> None:
    """BTU Configuration's "Resubmit all Task Schedules": each enabled schedule is notified; one
    the daemon rejects is disabled (the app's own rule); nothing goes to the legacy socket."""
    from btu.btu_core.doctype.btu_task_schedule.btu_task_schedule import resubmit_all_task_schedules

    fake_client.reject["TS-000005"] = "minute field: 61 is out of range 0-59"
    frappe.get_doc("BTU Configuration").button_resubmit_all_task_schedules()
    frappe.db.commit()
    notified = [c[1] for c in fake_client.calls if c[0] == "notify"]
    assert notified[:5] == [["TS-000001"], ["TS-000002"], ["TS-000004"], ["TS-000005"], ["TS-000006"]]
    assert testdb.query("SELECT name FROM `tabBTU Task Schedule` WHERE enabled = 0 ORDER BY name") == [
        {"name": "TS-000003"}, {"name": "TS-000005"}]
    assert legacy_daemon.requests == []

    fake_client.calls.clear()
    fake_client.reject.clear()
    fake_client.fail = FakeClient.DaemonUnavailable("connection refused")
    resubmit_all_task_schedules()  # an unreachable daemon disables nothing
    frappe.db.commit()
    assert len(testdb.query("SELECT name FROM `tabBTU Task Schedule` WHERE enabled = 1")) == 4
    assert "connection refused" in str(frappe.get_message_log()[-1]["message"])


# --- what the app stores per run_frequency (the stand-in's controller, override or not) ----------
def _utc_hour(local_hour: int, zone: str) -> int:
    offset = datetime.now(UTC).astimezone(ZoneInfo(zone)).utcoffset()
    assert offset is not None
    return (local_hour - int(offset.total_seconds() // 3600)) % 24


@pytest.mark.parametrize("fields, cron", [
    ({"run_frequency": "Hourly", "minute": 15, "hour": "9", "day_of_week": "Friday"}, "15 * * * *"),
    ({"run_frequency": "Daily", "minute": 30, "hour": "9", "month": "JAN"}, "30 {h9} * * *"),
    ({"run_frequency": "Weekly", "minute": 0, "hour": "20", "day_of_week": "Monday"}, "0 {h20} * * 1"),
    ({"run_frequency": "Monthly", "minute": 0, "hour": "9", "day_of_month": 15}, "0 {h9} 15 * *"),
    ({"run_frequency": "Yearly", "minute": 5, "hour": "9", "day_of_month": 1, "month": "MAR"}, "5 {h9} 1 3 *"),
    ({"run_frequency": "Cron Style", "minute": 5, "hour": "9", "cron_string": "*/10 * * * *"}, "*/10 * * * *"),
])
def test_each_frequency_stores_a_utc_cron_string(site: str, testdb: TestDatabase, fake_client: FakeClient,
                                                 fields: dict[str, Any], cron: str) -> None:
    """Daily 09:30 in New York is stored as 14:30 UTC in winter (13:30 in summer); the weekday is
    not shifted when the hour crosses midnight (Monday 20:00 New York -> '* * 1' at 01:00 UTC)."""
    zone = "America/New_York"
    frappe.db.set_value("System Settings", None, "time_zone", zone)
    frappe.local.system_settings = None
    doc = frappe.get_doc({"doctype": "BTU Task Schedule", "task": "BTU-00002", "enabled": 1, **fields})
    doc.insert(set_name="TS-200001")
    frappe.db.commit()
    [row] = testdb.query("SELECT run_frequency, cron_string, minute, hour, day_of_week, day_of_month, month,"
                         " task_description, schedule_description FROM `tabBTU Task Schedule` WHERE name = 'TS-200001'")
    assert row["cron_string"] == cron.format(h9=_utc_hour(9, zone), h20=_utc_hour(20, zone))
    assert row["task_description"] == "Email overdue invoices" and row["schedule_description"]
    cleared = {"Cron Style": ("minute", "hour", "day_of_week", "day_of_month", "month"),
               "Hourly": ("hour", "day_of_week", "day_of_month", "month"),
               "Daily": ("day_of_week", "day_of_month", "month")}.get(fields["run_frequency"], ())
    for f in cleared:
        assert row[f] in (None, 0), (f, row[f])  # Int columns hold 0 for an empty field
    for f in set(fields) - set(cleared) - {"run_frequency", "cron_string"}:
        assert row[f] == fields[f]
