"""The whitelisted methods behind the BTU Task Schedule form (btu_hooks.schedule_actions), called
as Desk calls them (frappe.handler.execute_cmd: whitelisted, HTTP method, form values as
strings), with a fake btu_client of the same signatures: what reaches the daemon, who may call
them, and how every btu_client error becomes one clear message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import btu_hooks.client
import frappe
import pytest
from btu_hooks_testutil import SITE, FakeActionsClient
from btu_testdb import TestDatabase
from frappe.handler import call_as_request

import btu_hooks.schedule_actions as actions
from btu_hooks.errors import ClientNotInstalled

M = "btu_hooks.schedule_actions."
SOCKET = "/tmp/btu_scheduler.sock"  # BTU Configuration's path_to_btu_scheduler_uds in the sample data


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> FakeActionsClient:
    fake = FakeActionsClient()
    monkeypatch.setattr(btu_hooks.client, "get_client", lambda: fake)
    return fake


@pytest.fixture
def desk(site: str) -> str:
    """A Desk session of Administrator on the site."""
    frappe.set_user("Administrator")
    return site


def socket_path() -> str:
    return frappe.db.get_single_value("BTU Configuration", "path_to_btu_scheduler_uds")


def test_every_method_is_whitelisted_and_actions_want_post(desk: str, client: FakeActionsClient) -> None:
    for name in ("pause", "resume", "skip_next", "run_now", "backfill"):
        with pytest.raises(frappe.PermissionError):
            call_as_request(M + name, "GET", schedule="TS-000002")
    assert client.calls == []
    assert call_as_request(M + "overview", "GET", schedule="TS-000002")["error"] is None


def test_pause_sends_note_and_until_in_utc(desk: str, client: FakeActionsClient) -> None:
    until_local = (datetime.now(UTC) + timedelta(days=3)).astimezone(actions.ZoneInfo("America/Los_Angeles"))
    # The dialog's Datetime: naive, in the site's time zone (System Settings: Los Angeles).
    out = call_as_request(M + "pause", schedule="TS-000002", note="holidays",
                          until=until_local.strftime("%Y-%m-%d %H:%M:%S"))
    (call,) = client.calls
    name, schedule, until, note, site, path = call
    assert (name, schedule, site, path) == ("pause", "TS-000002", SITE, socket_path())
    assert until == until_local.replace(microsecond=0).astimezone(UTC) and until.tzinfo is not None
    assert note == "holidays (Administrator via Desk)"  # the daemon's audit knows only the web process
    assert out["message"] == f"TS-000002 is paused until {until:%Y-%m-%d %H:%M:%S}Z. Note: holidays (Administrator via Desk)"
    assert out["reply"]["until"] == until.isoformat()  # JSON-friendly for the browser


def test_pause_without_until_and_with_an_offset(desk: str, client: FakeActionsClient) -> None:
    out = call_as_request(M + "pause", schedule="TS-000002", note="", until="")
    assert client.calls[-1][2:4] == (None, "Administrator via Desk")
    assert out["message"] == "TS-000002 is paused until resumed. Note: Administrator via Desk"
    call_as_request(M + "pause", schedule="TS-000002", until="2099-01-01T12:00:00+01:00")
    assert client.calls[-1][2] == datetime(2099, 1, 1, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize("until, message", [
    ("2001-01-01 00:00:00", "is in the past"),
    ("next tuesday", "is not a date and time"),
])
def test_pause_refuses_bad_until_before_calling_the_daemon(desk: str, client: FakeActionsClient, until: str,
                                                           message: str) -> None:
    with pytest.raises(frappe.ValidationError, match=message):
        call_as_request(M + "pause", schedule="TS-000002", until=until)
    assert client.calls == []


def test_resume_skip_and_run_now(desk: str, client: FakeActionsClient) -> None:
    call_as_request(M + "pause", schedule="TS-000002")
    out = call_as_request(M + "resume", schedule="TS-000002")
    assert out["message"].startswith("TS-000002 is resumed")
    assert call_as_request(M + "resume", schedule="TS-000002")["message"] == "TS-000002 was not paused: nothing changed."

    out = call_as_request(M + "skip_next", schedule="TS-000002", count="2")
    assert client.calls[-1] == ("skip_next", "TS-000002", 2, SITE, socket_path())
    assert out["message"] == ("TS-000002: skipping 2026-12-01 22:00 -05:00, 2026-12-01 23:00 -05:00"
                              " (2 runs skipped in all).")  # local times as the daemon answered (the fake: New York)

    out = call_as_request(M + "run_now", schedule="TS-000002")
    assert client.calls[-1] == ("run_now", "TS-000002", SITE, socket_path())
    assert out["message"] == f"TS-000002: job {SITE}||btu-TS-000002-now enqueued on queue default."


@pytest.mark.parametrize("count", ["0", "-1", "two", "1.5", "1001"])
def test_skip_next_wants_a_whole_count(desk: str, client: FakeActionsClient, count: str) -> None:
    with pytest.raises(frappe.ValidationError, match="Count must be a whole number from 1 to 1000"):
        call_as_request(M + "skip_next", schedule="TS-000002", count=count)
    assert client.calls == []


def test_backfill_dry_run_and_real(desk: str, client: FakeActionsClient) -> None:
    out = call_as_request(M + "backfill", schedule="TS-000002", start="2026-11-30 10:00:00",
                          end="2026-11-30 13:00:00", max="1000", dry_run="1")
    name, schedule, start, end, limit, dry_run, site, _path = client.calls[-1]
    assert (name, schedule, limit, dry_run, site) == ("backfill", "TS-000002", 1000, True, SITE)
    assert (start, end) == (datetime(2026, 11, 30, 18, tzinfo=UTC), datetime(2026, 11, 30, 21, tzinfo=UTC))
    assert out["dry_run"] is True
    assert out["message"] == "Dry run of TS-000002: 3 planned runs (3 would enqueue)."
    assert [r["utc"] for r in out["runs"]] == ["2026-11-30 18:00:00Z", "2026-11-30 19:00:00Z", "2026-11-30 20:00:00Z"]
    assert out["runs"][0]["local"] == "2026-11-30 13:00 -05:00"  # as the daemon answered (the fake: New York)

    out = call_as_request(M + "backfill", schedule="TS-000002", start="2026-11-30 10:00:00",
                          end="2026-11-30 13:00:00", max="2", dry_run="0")
    assert client.calls[-1][4:6] == (2, False)
    assert out["message"] == "Backfill of TS-000002: 2 planned runs (2 enqueued)."


def test_backfill_checks_its_range(desk: str, client: FakeActionsClient) -> None:
    with pytest.raises(frappe.ValidationError, match="Until must be after From"):
        call_as_request(M + "backfill", schedule="TS-000002", start="2026-11-30 13:00:00", end="2026-11-30 10:00:00")
    with pytest.raises(frappe.ValidationError, match="Max must be a whole number"):
        call_as_request(M + "backfill", schedule="TS-000002", start="2026-11-30 10:00:00", end="2026-11-30 13:00:00",
                        max="0")
    assert client.calls == []


def test_overview_for_the_form(desk: str, client: FakeActionsClient) -> None:
    due = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
    client.history_entries = [
        {"job_id": "j3", "due": due, "enqueued_at": due + timedelta(milliseconds=87), "outcome": "enqueued",
         "lateness_ms": 87},
        {"job_id": "j2", "due": due - timedelta(hours=1), "enqueued_at": due, "outcome": "skipped_overlap",
         "lateness_ms": None},
        {"job_id": "j1", "due": due - timedelta(hours=2), "enqueued_at": due},  # written before issue 9
    ]
    call_as_request(M + "pause", schedule="TS-000002", note="db upgrade", until="2099-01-01 00:00:00")
    call_as_request(M + "skip_next", schedule="TS-000002", count="1")
    frappe.clear_messages()

    out = call_as_request(M + "overview", "GET", schedule="TS-000002")
    assert [c[0] for c in client.calls[-3:]] == ["upcoming", "history", "status"]
    assert client.calls[-3][1:4] == ("TS-000002", 10, SITE) and client.calls[-2][1:4] == ("TS-000002", 20, SITE)
    assert out["error"] is None
    assert len(out["upcoming"]) == 10
    assert out["upcoming"][0] == {"local": "2026-12-01 22:00 -05:00", "utc": "2026-12-02 03:00:00Z", "note": "paused"}
    assert out["paused"] == {"until_utc": "2099-01-01 08:00:00Z", "note": "db upgrade (Administrator via Desk)",
                             "at_utc": "2026-12-02 02:00:00Z"}
    assert out["history"] == [
        {"due_local": "2026-12-01 03:00 -08:00", "due_utc": "2026-12-01 11:00:00Z", "outcome": "enqueued",
         "lateness": "87 ms", "job_id": "j3"},
        {"due_local": "2026-12-01 02:00 -08:00", "due_utc": "2026-12-01 10:00:00Z", "outcome": "skipped_overlap",
         "lateness": "", "job_id": "j2"},
        {"due_local": "2026-12-01 01:00 -08:00", "due_utc": "2026-12-01 09:00:00Z", "outcome": "enqueued",
         "lateness": "", "job_id": "j1"},
    ]
    assert frappe.get_message_log() == []


def test_overview_answers_daemon_errors_without_throwing(desk: str, client: FakeActionsClient) -> None:
    client.fail = client.DaemonUnavailable("no socket at /tmp/btu_scheduler.sock")
    out = call_as_request(M + "overview", "GET", schedule="TS-000002")
    assert out["upcoming"] == [] and out["history"] == [] and out["paused"] is None
    assert out["error"].startswith(f"The BTU scheduler daemon could not be reached at {socket_path()}")
    assert frappe.get_message_log() == []  # the form opens without a popup


def _client_errors(c: FakeActionsClient) -> list[tuple[Exception, str]]:
    return [
        (c.DaemonUnavailable("connection refused"),
         "The BTU scheduler daemon could not be reached at /tmp/btu_scheduler.sock (connection refused). "
         "Is btu-daemon running? Nothing was done (pause)."),
        (c.ProtocolError("protocol version mismatch: client speaks 2, daemon speaks 1"),
         "btu_client and btu-daemon do not understand each other (protocol version mismatch: client speaks 2, "
         "daemon speaks 1). Upgrade the daemon and the client together."),
        (_coded(c.ScheduleError, "unknown schedule TS-000002", "unknown_schedule"),
         "btu-daemon does not plan TS-000002 (unknown schedule TS-000002): is the schedule enabled, its task "
         "submitted, and the schedule saved?"),
        (_coded(c.ArgumentError, "until is in the past", "invalid_argument"),
         "btu-daemon refused the pause: until is in the past"),
        (_coded(c.DaemonError, "redis unreachable", "internal"),
         "btu-daemon could not do the pause of TS-000002: DaemonError: redis unreachable"),
    ]


def _coded(cls: type[Exception], message: str, code: str) -> Exception:
    e = cls(message)
    e.code = code  # type: ignore[attr-defined]  # btu_client's errors carry the daemon's code
    return e


def test_client_errors_become_one_clear_message(desk: str, client: FakeActionsClient, testdb: TestDatabase) -> None:
    testdb.query("UPDATE tabSingles SET value = '/tmp/btu_scheduler.sock' WHERE doctype = 'BTU Configuration'"
                 " AND field = 'path_to_btu_scheduler_uds'")
    for error, message in _client_errors(client):
        client.fail = error
        frappe.clear_messages()
        with pytest.raises(actions.SchedulerRequestFailed) as raised:
            call_as_request(M + "pause", schedule="TS-000002")
        assert str(raised.value) == message
        (shown,) = frappe.get_message_log()  # what Desk shows: the message, no traceback
        assert shown["message"] == message and shown["title"] == "BTU Scheduler" and shown["indicator"] == "red"
        assert "Traceback" not in shown["message"]
        assert frappe.flags.disable_traceback  # real Frappe then sends no traceback in the response
        frappe.flags.disable_traceback = False


def test_an_old_btu_client_or_none_at_all(desk: str, client: FakeActionsClient,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(FakeActionsClient, "pause")
    with pytest.raises(actions.SchedulerRequestFailed, match=r"The installed btu_client has no pause\(\): upgrade"):
        call_as_request(M + "pause", schedule="TS-000002")

    def missing() -> Any:
        raise ClientNotInstalled("the btu_client package is not installed in this Python environment")

    monkeypatch.setattr(btu_hooks.client, "get_client", missing)
    with pytest.raises(actions.SchedulerRequestFailed, match="btu_client package is not installed"):
        call_as_request(M + "run_now", schedule="TS-000002")
    assert call_as_request(M + "overview", "GET", schedule="TS-000002")["error"].startswith(
        "the btu_client package is not installed")


def test_permissions_as_for_the_apps_schedule_methods(sites: Path, client: FakeActionsClient) -> None:
    frappe.init(SITE)
    frappe.connect()
    frappe.set_user("viewer@example.com")  # a Desk user without roles: All may read BTU Task Schedule
    assert call_as_request(M + "overview", "GET", schedule="TS-000002")["error"] is None
    for name, args in (("pause", {}), ("resume", {}), ("skip_next", {"count": "1"}), ("run_now", {}),
                       ("backfill", {"start": "2026-11-30 10:00:00", "end": "2026-11-30 13:00:00"})):
        with pytest.raises(frappe.PermissionError, match="No permission for BTU Task Schedule TS-000002"):
            call_as_request(M + name, schedule="TS-000002", **args)
    assert [c[0] for c in client.calls] == ["upcoming", "history", "status"]

    frappe.set_user("ops@example.com")  # System Manager may write
    call_as_request(M + "pause", schedule="TS-000002", note="maintenance")
    assert client.calls[-1][3] == "maintenance (ops@example.com via Desk)"

    frappe.set_user("Guest")
    with pytest.raises(frappe.PermissionError):
        call_as_request(M + "overview", "GET", schedule="TS-000002")
    frappe.destroy()


def test_an_unknown_schedule(desk: str, client: FakeActionsClient) -> None:
    with pytest.raises(frappe.DoesNotExistError, match="BTU Task Schedule TS-999999 not found"):
        call_as_request(M + "pause", schedule="TS-999999")
    with pytest.raises(frappe.DoesNotExistError):
        call_as_request(M + "overview", "GET", schedule="TS-999999")
    assert client.calls == []


def test_with_the_real_btu_client_and_no_daemon(desk: str, tmp_path: Path) -> None:
    """The real wheel, every action with the arguments btu_hooks passes: each reaches the socket
    (a wrong keyword would be a TypeError instead) and its DaemonUnavailable is the message."""
    real = pytest.importorskip("btu_client")
    if not hasattr(real, "pause"):
        pytest.skip("this btu_client predates the operator actions (issue 9)")
    missing = str(tmp_path / "no-daemon.sock")
    frappe.db.set_value("BTU Configuration", "BTU Configuration", "path_to_btu_scheduler_uds", missing,
                        update_modified=False)
    frappe.db.commit()
    window = {"start": "2026-11-30 10:00:00", "end": "2026-11-30 13:00:00", "max": "5", "dry_run": "1"}
    for name, args in (("pause", {"note": "n", "until": "2099-01-01 00:00:00"}), ("resume", {}),
                       ("skip_next", {"count": "2"}), ("run_now", {}), ("backfill", window)):
        with pytest.raises(actions.SchedulerRequestFailed, match=f"could not be reached at {missing}"):
            call_as_request(M + name, schedule="TS-000002", **args)
    out = call_as_request(M + "overview", "GET", schedule="TS-000002")
    assert out["error"].startswith(f"The BTU scheduler daemon could not be reached at {missing}")
