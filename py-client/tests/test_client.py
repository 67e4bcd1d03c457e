"""btu_client over a real Unix socket, against a fake daemon answering golden frames."""

from __future__ import annotations

import pathlib
import socket
import threading
import time
from datetime import timedelta, timezone
from typing import Callable

import pytest

import btu_client
from btu_client import _core

from conftest import FakeDaemon, Handler, golden_reply, raw_reply

StartDaemon = Callable[[Handler], FakeDaemon]


class Doc:
    """Stands in for a Frappe document: only .name matters."""

    def __init__(self, name: str) -> None:
        self.name = name


def test_missing_socket_is_daemon_unavailable_with_what_to_check(sock_dir: pathlib.Path) -> None:
    path = sock_dir / "absent.sock"
    with pytest.raises(btu_client.DaemonUnavailable) as info:
        btu_client.ping(socket_path=str(path))
    message = str(info.value)
    assert str(path) in message
    assert "btu-daemon running" in message
    assert "BTU_SOCKET_PATH" in message
    assert info.value.code is None


def test_stale_socket_file_is_connection_refused(sock_dir: pathlib.Path) -> None:
    path = sock_dir / "stale.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens
    with pytest.raises(btu_client.DaemonUnavailable, match="connection refused"):
        btu_client.notify("TS-0001", socket_path=path)


def test_daemon_that_never_accepts_times_out(sock_dir: pathlib.Path) -> None:
    path = sock_dir / "silent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)  # connect succeeds via the backlog, but nobody ever answers
    try:
        with pytest.raises(btu_client.DaemonUnavailable, match="did not answer within 0.200 s"):
            btu_client.ping(socket_path=str(path), timeout=0.2)
    finally:
        server.close()


def test_daemon_that_reads_but_never_answers_times_out(fake_daemon: StartDaemon) -> None:
    daemon = fake_daemon(lambda _request: time.sleep(1.0))  # holds the connection open, silent
    with pytest.raises(btu_client.DaemonUnavailable, match="did not answer"):
        btu_client.status(socket_path=str(daemon.path), timeout=0.3)


def test_daemon_closing_without_answer_is_unavailable(sock_dir: pathlib.Path) -> None:
    path = sock_dir / "rude.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def accept_and_close() -> None:
        conn, _ = server.accept()
        conn.recv(4096)
        conn.close()

    thread = threading.Thread(target=accept_and_close, daemon=True)
    thread.start()
    try:
        with pytest.raises(btu_client.DaemonUnavailable, match="closed the connection without answering"):
            btu_client.ping(socket_path=str(path), timeout=2.0)
    finally:
        thread.join(timeout=5)
        server.close()


def test_ping_returns_versions(fake_daemon: StartDaemon) -> None:
    daemon = fake_daemon(golden_reply("response_pong"))
    assert btu_client.ping(socket_path=str(daemon.path)) == {"daemon_version": "0.1.0", "protocol_version": 2}
    assert _core._request_kind(daemon.requests[0]) == "ping"


def test_socket_path_from_environment(fake_daemon: StartDaemon, monkeypatch: pytest.MonkeyPatch) -> None:
    daemon = fake_daemon(golden_reply("response_pong"))
    monkeypatch.setenv("BTU_SOCKET_PATH", str(daemon.path))
    assert btu_client.ping()["protocol_version"] == btu_client.PROTOCOL_VERSION


def test_default_socket_path_is_the_btu_apps() -> None:
    assert btu_client.DEFAULT_SOCKET_PATH == "/tmp/btu_scheduler.sock"


def test_notify_accepts_a_document_and_returns_aware_next_runs(fake_daemon: StartDaemon) -> None:
    daemon = fake_daemon(golden_reply("response_notified"))
    states = btu_client.notify(Doc("TS-0001"), socket_path=str(daemon.path))
    assert len(states) == 1
    state = states[0]
    assert (state["schedule"], state["runs"], state["reason"], state["time_zone"]) == ("TS-0001", True, None, "Europe/Berlin")
    run = state["next_runs"][0]
    assert run["utc"].tzinfo is timezone.utc
    assert run["local"].utcoffset() == timedelta(hours=1)
    assert run["utc"] == run["local"]
    # The request on the wire is exactly the golden one, apart from the id.
    request_id = _core._peek_request_id(daemon.requests[0])
    assert request_id is not None
    assert daemon.requests[0] == _core._encode_request("notify", request_id, schedules=["TS-0001"])


def test_notify_many_sends_one_request_with_all_schedules(fake_daemon: StartDaemon) -> None:
    daemon = fake_daemon(golden_reply("response_notified_many"))
    states = btu_client.notify(("TS-0001", Doc("TS-0002"), "Zeitplan-Ü"), site="site1.local", socket_path=str(daemon.path))
    assert [s["schedule"] for s in states] == ["TS-0001", "TS-0002", "Zeitplan-Ü"]
    assert [s["runs"] for s in states] == [True, False, False]
    assert states[2]["reason"] == "invalid cron: hour field: 24 is out of range 0-23"
    request_id = _core._peek_request_id(daemon.requests[0])
    assert request_id is not None
    expected = _core._encode_request("notify", request_id, schedules=["TS-0001", "TS-0002", "Zeitplan-Ü"], site="site1.local")
    assert daemon.requests[0] == expected


def test_notify_of_nothing_does_not_contact_the_daemon(sock_dir: pathlib.Path) -> None:
    assert btu_client.notify([], socket_path=str(sock_dir / "absent.sock")) == []


@pytest.mark.parametrize(
    ("call", "vector", "expected_kind"),
    [
        (lambda p: btu_client.cancel("TS-0001", socket_path=p), "response_cancelled", "cancel"),
        (lambda p: btu_client.rebuild(socket_path=p), "response_rebuilt", "rebuild"),
        (lambda p: btu_client.status(socket_path=p), "response_status", "status"),
        (lambda p: btu_client.upcoming(socket_path=p), "response_upcoming", "upcoming"),
        (lambda p: btu_client.history(Doc("TS-0001"), 5, socket_path=p), "response_history", "history"),
        (lambda p: btu_client.run_now("TS-0001", socket_path=p), "response_ran_now", "run_now"),
        (lambda p: btu_client.pause("TS-0001", note="n", socket_path=p), "response_paused", "pause"),
        (lambda p: btu_client.resume(Doc("TS-0001"), socket_path=p), "response_resumed", "resume"),
        (lambda p: btu_client.skip_next("TS-0001", 2, socket_path=p), "response_skipped", "skip_next"),
        (
            lambda p: btu_client.backfill("TS-0001", "2025-01-13T00:00:00Z", "2025-01-15T00:00:00Z", socket_path=p),
            "response_backfilled",
            "backfill",
        ),
        (lambda p: btu_client.audit(socket_path=p), "response_audited", "audit"),
    ],
)
def test_every_call_round_trips(fake_daemon: StartDaemon, call: Callable[[str], object], vector: str, expected_kind: str) -> None:
    daemon = fake_daemon(golden_reply(vector))
    value = call(str(daemon.path))
    _, expected = _core._decode_response(_core._with_response_id(_golden(vector), 0))
    assert value == expected
    assert _core._request_kind(daemon.requests[0]) == expected_kind


def _golden(name: str) -> bytes:
    from conftest import vector

    return vector(name)


def test_version_mismatch_is_protocol_error(fake_daemon: StartDaemon) -> None:
    daemon = fake_daemon(raw_reply("response_pong_v3"))
    with pytest.raises(btu_client.ProtocolError, match="protocol version mismatch: client speaks 2, daemon speaks 3"):
        btu_client.ping(socket_path=str(daemon.path))


def test_daemon_refusing_our_version_is_protocol_error(fake_daemon: StartDaemon) -> None:
    daemon = fake_daemon(golden_reply("response_error_unsupported_version"))
    with pytest.raises(btu_client.ProtocolError, match="protocol version mismatch: client speaks 3, daemon speaks 2") as info:
        btu_client.ping(socket_path=str(daemon.path))
    assert info.value.code == "unsupported_version"


def test_pause_against_a_version_1_daemon_is_the_version_error(fake_daemon: StartDaemon) -> None:
    """A daemon of protocol 1 knows no operator action: it answers in its own version with the
    frozen error shape (the bytes a version-1 daemon sends), and the client reports the mismatch."""
    daemon = fake_daemon(raw_reply("response_error_unsupported_version_v1"))
    with pytest.raises(btu_client.ProtocolError, match="protocol version mismatch: client speaks 2, daemon speaks 1"):
        btu_client.pause("TS-0001", socket_path=str(daemon.path))


def test_instants_accept_aware_datetimes_and_rfc3339_and_refuse_naive(fake_daemon: StartDaemon) -> None:
    from datetime import datetime

    daemon = fake_daemon(golden_reply("response_paused"))
    btu_client.pause("TS-0001", datetime(2025, 12, 27, 9, 0, tzinfo=timezone(timedelta(hours=1))), socket_path=str(daemon.path))
    btu_client.pause("TS-0001", "2025-12-27T09:00:00+01:00", socket_path=str(daemon.path))
    for request in daemon.requests:
        request_id = _core._peek_request_id(request)
        assert request_id is not None
        assert request == _core._encode_request("pause", request_id, schedule="TS-0001", until="2025-12-27T08:00:00Z")
    with pytest.raises(ValueError, match="naive"):
        btu_client.pause("TS-0001", datetime(2025, 12, 27, 9, 0), socket_path=str(daemon.path))
    with pytest.raises(ValueError, match="RFC 3339"):
        btu_client.backfill("TS-0001", "yesterday", "2025-12-27T09:00:00Z", socket_path=str(daemon.path))
    with pytest.raises(TypeError):
        btu_client.backfill("TS-0001", 12, "2025-12-27T09:00:00Z", socket_path=str(daemon.path))  # type: ignore[arg-type]


def test_answer_to_another_request_is_protocol_error(fake_daemon: StartDaemon) -> None:
    def other_id(request: bytes) -> bytes:
        request_id = _core._peek_request_id(request)
        assert request_id is not None
        return _core._with_response_id(_golden("response_pong"), request_id + 1)

    daemon = fake_daemon(other_id)
    with pytest.raises(btu_client.ProtocolError, match="does not|request sent had id"):
        btu_client.ping(socket_path=str(daemon.path))


def test_answer_of_the_wrong_kind_is_protocol_error(fake_daemon: StartDaemon) -> None:
    daemon = fake_daemon(golden_reply("response_rebuilt"))
    with pytest.raises(btu_client.ProtocolError, match="answered 'rebuilt' to a 'ping' request"):
        btu_client.ping(socket_path=str(daemon.path))


def test_unknown_schedule_is_schedule_error(fake_daemon: StartDaemon) -> None:
    daemon = fake_daemon(golden_reply("response_error_unknown_schedule"))
    with pytest.raises(btu_client.ScheduleError) as info:
        btu_client.cancel("TS-9999", socket_path=str(daemon.path))
    assert info.value.code == "unknown_schedule"
    assert info.value.schedule == "TS-9999"
    assert "unknown schedule 'TS-9999'" in str(info.value)


def test_invalid_schedule_carries_the_reason(fake_daemon: StartDaemon) -> None:
    daemon = fake_daemon(golden_reply("response_error_invalid_schedule"))
    with pytest.raises(btu_client.ScheduleError, match="hour field: 24 is out of range 0-23") as info:
        btu_client.run_now(Doc("TS-0001"), socket_path=str(daemon.path))
    assert info.value.code == "invalid_schedule"
    assert info.value.schedule == "TS-0001"


def test_internal_failure_is_daemon_error(fake_daemon: StartDaemon) -> None:
    daemon = fake_daemon(golden_reply("response_error_internal"))
    with pytest.raises(btu_client.DaemonError, match="connection refused") as info:
        btu_client.status(socket_path=str(daemon.path))
    assert info.value.code == "internal"


@pytest.mark.parametrize("bad", [42, None, b"TS-1", Doc(None)])  # type: ignore[arg-type]
def test_bad_schedule_argument_is_type_error(bad: object) -> None:
    with pytest.raises(TypeError):
        btu_client.cancel(bad)  # type: ignore[arg-type]


def test_bad_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        btu_client.notify(" ")
    with pytest.raises(ValueError, match="timeout"):
        btu_client.ping(timeout=0)
    with pytest.raises(ValueError, match="count"):
        btu_client.upcoming(count=0)


def test_io_releases_the_gil(sock_dir: pathlib.Path) -> None:
    """While one thread waits on a silent daemon, other Python threads keep running."""
    path = sock_dir / "silent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    errors: list[BaseException] = []

    def waiter() -> None:
        try:
            btu_client.ping(socket_path=str(path), timeout=1.0)
        except btu_client.DaemonUnavailable as e:
            errors.append(e)

    thread = threading.Thread(target=waiter)
    thread.start()
    ticks = 0
    try:
        while thread.is_alive():
            ticks += 1
            time.sleep(0.001)
    finally:
        thread.join()
        server.close()
    assert len(errors) == 1
    assert ticks > 10  # the main thread ran while the call was blocked in the socket read
