"""The wheel encodes and decodes the shared golden vectors exactly as btu-protocol's Rust tests do."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import btu_client
from btu_client import _core

from conftest import VECTORS, vector

UTC = timezone.utc


def tz(hours: float) -> timezone:
    return timezone(timedelta(hours=hours))


REQUESTS: list[tuple[str, str, int, dict[str, Any]]] = [
    ("request_ping", "ping", 1, {}),
    ("request_notify_one", "notify", 2, {"schedules": ["TS-0001"]}),
    ("request_notify_many", "notify", 3, {"schedules": ["TS-0001", "TS-0002", "Zeitplan-Ü"], "site": "site1.local"}),
    ("request_cancel", "cancel", 4, {"schedule": "TS-0001"}),
    ("request_rebuild", "rebuild", 5, {}),
    ("request_status", "status", 6, {}),
    ("request_upcoming", "upcoming", 7, {"count": 10}),
    ("request_upcoming_one", "upcoming", 8, {"schedule": "TS-0001", "site": "site1.local", "count": 3}),
    ("request_history", "history", 9, {"schedule": "TS-0001", "count": 20}),
    ("request_run_now", "run_now", 10, {"schedule": "TS-0001"}),
    (
        "request_pause",
        "pause",
        12,
        {"schedule": "TS-0001", "site": "site1.local", "until": "2025-12-27T08:00:00Z", "note": "holidays: office closed"},
    ),
    ("request_pause_bare", "pause", 13, {"schedule": "TS-0001"}),
    ("request_resume", "resume", 14, {"schedule": "TS-0001"}),
    ("request_skip_next", "skip_next", 15, {"schedule": "TS-0001", "count": 2}),
    (
        "request_backfill",
        "backfill",
        16,
        {
            "schedule": "TS-0001",
            "site": "site1.local",
            "start": "2025-01-13T00:00:00Z",
            "end": "2025-01-15T00:00:00+01:00",
            "max": 1000,
            "dry_run": True,
        },
    ),
    ("request_audit", "audit", 17, {"count": 50}),
    ("request_audit_one", "audit", 18, {"schedule": "TS-0001", "site": "site1.local", "count": 5}),
]


@pytest.mark.parametrize(("name", "kind", "request_id", "kwargs"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_request_encoding_matches_golden_vector(name: str, kind: str, request_id: int, kwargs: dict[str, Any]) -> None:
    assert _core._encode_request(kind, request_id, **kwargs).hex() == vector(name).hex()
    assert _core._request_kind(vector(name)) == kind
    assert _core._peek_request_id(vector(name)) == request_id


def test_every_request_vector_is_covered() -> None:
    names = {p.stem for p in VECTORS.glob("request_*.hex")}
    assert names - {r[0] for r in REQUESTS} == {"request_ping_v3", "request_ping_v1"}


def test_future_client_request_is_unsupported_version() -> None:
    with pytest.raises(btu_client.ProtocolError, match="protocol version mismatch: client speaks 3, daemon speaks 2"):
        _core._request_kind(vector("request_ping_v3"))
    assert _core._peek_request_id(vector("request_ping_v3")) == 11


def test_previous_version_client_request_is_unsupported_version() -> None:
    with pytest.raises(btu_client.ProtocolError, match="protocol version mismatch: client speaks 1, daemon speaks 2"):
        _core._request_kind(vector("request_ping_v1"))


PAUSE = {
    "until": datetime(2025, 12, 27, 8, 0, tzinfo=UTC),
    "note": "holidays: office closed",
    "at": datetime(2025, 1, 15, 14, 0, tzinfo=UTC),
    "uid": 1000,
    "pid": 4242,
}


def ny(day: int) -> dict[str, datetime]:
    return {"utc": datetime(2025, 1, day, 14, 0, tzinfo=UTC), "local": datetime(2025, 1, day, 9, 0, tzinfo=tz(-5))}


# A schedule that chose every policy (the Rust golden sample's policy_settings).
SETTINGS = {"overlap": "skip", "catchup": "all", "jitter_secs": 30, "dst_gap": "skip", "dst_overlap": "last"}

RESPONSES: list[tuple[str, int, Any]] = [
    ("response_pong", 1, {"daemon_version": "0.1.0", "protocol_version": 2}),
    (
        "response_notified",
        2,
        [
            {
                "site": "site1.local",
                "schedule": "TS-0001",
                "runs": True,
                "reason": None,
                "time_zone": "Europe/Berlin",
                "next_runs": [
                    {"utc": datetime(2025, 3, 30, 0, 30, tzinfo=UTC), "local": datetime(2025, 3, 30, 1, 30, tzinfo=tz(1))},
                    {"utc": datetime(2025, 3, 31, 0, 30, tzinfo=UTC), "local": datetime(2025, 3, 31, 2, 30, tzinfo=tz(2))},
                ],
                "settings": None,
            }
        ],
    ),
    (
        "response_notified_many",
        3,
        [
            {
                "site": "site1.local",
                "schedule": "TS-0001",
                "runs": True,
                "reason": None,
                "time_zone": "America/New_York",
                "next_runs": [
                    {"utc": datetime(2025, 1, 15, 14, 0, tzinfo=UTC), "local": datetime(2025, 1, 15, 9, 0, tzinfo=tz(-5))}
                ],
                "settings": None,
            },
            {"site": "site1.local", "schedule": "TS-0002", "runs": False, "reason": "disabled", "time_zone": "UTC", "next_runs": [], "settings": None},
            {
                "site": "site1.local",
                "schedule": "Zeitplan-Ü",
                "runs": False,
                "reason": "invalid cron: hour field: 24 is out of range 0-23",
                "time_zone": None,
                "next_runs": [],
                "settings": None,
            },
        ],
    ),
    ("response_cancelled", 4, {"site": "site1.local", "schedule": "TS-0001", "removed": True}),
    ("response_rebuilt", 5, {"sites": ["site1.local"], "schedules": 42, "skipped": 3, "duration_ms": 187}),
    (
        "response_status",
        6,
        {
            "daemon_version": "0.1.0",
            "protocol_version": 2,
            "started_at": datetime(2025, 1, 15, 8, 0, tzinfo=UTC),
            "uptime_secs": 3600,
            "source": "mariadb://127.0.0.1:3306",
            "sites": [
                {
                    "site": "site1.local",
                    "schedules": 42,
                    "redis_ok": True,
                    "source_ok": True,
                    "last_rebuild": datetime(2025, 1, 15, 8, 45, tzinfo=UTC),
                    "paused": [{"schedule": "TS-0002", **PAUSE}],
                    "skipped": [{"schedule": "TS-0001", "utc": datetime(2025, 1, 16, 14, 0, tzinfo=UTC)}],
                }
            ],
            "defaults": None,
        },
    ),
    (
        "response_upcoming",
        7,
        [
            {
                "site": "site1.local",
                "schedule": "TS-0001",
                "task": "TASK-0001",
                "utc": datetime(2025, 1, 15, 14, 0, tzinfo=UTC),
                "local": datetime(2025, 1, 15, 9, 0, tzinfo=tz(-5)),
                "paused": False,
                "skipped": True,
                "settings": None,
            },
            {
                "site": "site1.local",
                "schedule": "TS-0003",
                "task": None,
                "utc": datetime(2025, 1, 15, 14, 30, tzinfo=UTC),
                "local": datetime(2025, 1, 15, 20, 0, tzinfo=tz(5.5)),
                "paused": True,
                "skipped": False,
                "settings": None,
            },
        ],
    ),
    (
        "response_notified_settings",
        12,
        [
            {
                "site": "site1.local",
                "schedule": "TS-0001",
                "runs": True,
                "reason": None,
                "time_zone": "America/Los_Angeles",
                "next_runs": [
                    {"utc": datetime(2027, 11, 7, 9, 30, tzinfo=UTC), "local": datetime(2027, 11, 7, 1, 30, tzinfo=tz(-8))}
                ],
                "settings": SETTINGS,
            }
        ],
    ),
    (
        "response_status_defaults",
        13,
        {
            "daemon_version": "0.1.0",
            "protocol_version": 1,
            "started_at": datetime(2025, 1, 15, 8, 0, tzinfo=UTC),
            "uptime_secs": 3600,
            "source": "mariadb://127.0.0.1:3306",
            "sites": [],
            "defaults": {"overlap": "allow", "catchup": "latest", "jitter_secs": 0, "dst_gap": "shift", "dst_overlap": "auto"},
        },
    ),
    (
        "response_upcoming_settings",
        14,
        [
            {
                "site": "site1.local",
                "schedule": "TS-0001",
                "task": None,
                "utc": datetime(2027, 11, 7, 9, 30, tzinfo=UTC),
                "local": datetime(2027, 11, 7, 1, 30, tzinfo=tz(-8)),
                "paused": False,
                "skipped": False,
                "settings": SETTINGS,
            }
        ],
    ),
    (
        "response_history",
        9,
        [
            {
                "job_id": "btu:TS-0001:1736949600",
                "due": datetime(2025, 1, 15, 14, 0, tzinfo=UTC),
                "enqueued_at": datetime(2025, 1, 15, 14, 0, 0, 42000, tzinfo=UTC),
                "outcome": "enqueued",
                "lateness_ms": 42,
            },
            {
                "job_id": "btu:TS-0001:1736949540",
                "due": datetime(2025, 1, 15, 13, 59, tzinfo=UTC),
                "enqueued_at": None,
                "outcome": "skipped_overlap",
                "lateness_ms": None,
            },
        ],
    ),
    ("response_ran_now", 10, {"site": "site1.local", "schedule": "TS-0001", "job_id": "btu:TS-0001:now:1736949600", "queue": "default"}),
    ("response_paused", 12, {"site": "site1.local", "schedule": "TS-0001", **PAUSE}),
    ("response_resumed", 14, {"site": "site1.local", "schedule": "TS-0001", "was_paused": True}),
    ("response_skipped", 15, {"site": "site1.local", "schedule": "TS-0001", "added": [ny(16)], "pending": [ny(15), ny(16)]}),
    (
        "response_backfilled",
        16,
        [
            {"due": ny(13)["utc"], "local": ny(13)["local"], "job_id": "btu:TS-0001:1736776800", "status": "exists"},
            {"due": ny(14)["utc"], "local": ny(14)["local"], "job_id": "btu:TS-0001:1736863200", "status": "enqueued"},
        ],
    ),
    (
        "response_backfilled_dry_run",
        16,
        [{"due": ny(14)["utc"], "local": ny(14)["local"], "job_id": "btu:TS-0001:1736863200", "status": "would_enqueue"}],
    ),
    (
        "response_audited",
        17,
        [
            {
                "id": "1736949600123-0",
                "time": datetime(2025, 1, 15, 14, 0, 0, 123000, tzinfo=UTC),
                "action": "pause",
                "schedule": "TS-0001",
                "args": {"until": "2025-12-27T08:00:00Z"},
                "note": "holidays: office closed",
                "uid": 1000,
                "pid": 4242,
            },
            {
                "id": "1736949500000-0",
                "time": datetime(2025, 1, 15, 13, 58, 20, tzinfo=UTC),
                "action": "rebuild",
                "schedule": None,
                "args": {},
                "note": None,
                "uid": None,
                "pid": None,
            },
        ],
    ),
]


@pytest.mark.parametrize(("name", "response_id", "expected"), RESPONSES, ids=[r[0] for r in RESPONSES])
def test_response_vector_decodes_to_documented_python_objects(name: str, response_id: int, expected: Any) -> None:
    got_id, value = _core._decode_response(vector(name))
    assert got_id == response_id
    assert value == expected


def test_datetimes_are_aware_and_keep_the_local_offset() -> None:
    _, states = _core._decode_response(vector("response_notified"))
    assert isinstance(states, list)
    first, second = states[0]["next_runs"]
    assert first["utc"].tzinfo is UTC
    assert first["local"].utcoffset() == timedelta(hours=1)
    assert second["local"].utcoffset() == timedelta(hours=2)  # after the DST change
    assert first["utc"] == first["local"]


ERRORS = [
    ("response_error_unknown_schedule", btu_client.ScheduleError, "unknown_schedule", "TS-9999"),
    ("response_error_invalid_schedule", btu_client.ScheduleError, "invalid_schedule", "TS-0001"),
    ("response_error_unsupported_version", btu_client.ProtocolError, "unsupported_version", None),
    ("response_error_malformed", btu_client.ProtocolError, "malformed", None),
    ("response_error_internal", btu_client.DaemonError, "internal", None),
    ("response_error_invalid_argument", btu_client.ArgumentError, "invalid_argument", "TS-0001"),
]


@pytest.mark.parametrize(("name", "exc", "code", "schedule"), ERRORS, ids=[e[0] for e in ERRORS])
def test_error_vectors_raise_typed_exceptions(name: str, exc: type[btu_client.BtuError], code: str, schedule: str | None) -> None:
    with pytest.raises(exc) as info:
        _core._decode_response(vector(name))
    assert info.value.code == code
    assert isinstance(info.value, btu_client.BtuError)
    if schedule is not None:
        assert isinstance(info.value, (btu_client.ScheduleError, btu_client.ArgumentError))
        assert info.value.schedule == schedule


def test_every_response_vector_is_covered() -> None:
    names = {p.stem for p in VECTORS.glob("response_*.hex")}
    covered = {r[0] for r in RESPONSES} | {e[0] for e in ERRORS}
    assert names == covered | {"response_pong_v3", "response_error_unsupported_version_v1"}


def test_future_daemon_response_is_a_version_mismatch() -> None:
    with pytest.raises(btu_client.ProtocolError, match="protocol version mismatch: client speaks 2, daemon speaks 3"):
        _core._decode_response(vector("response_pong_v3"))


def test_invalid_argument_is_also_a_value_error() -> None:
    with pytest.raises(ValueError):
        _core._decode_response(vector("response_error_invalid_argument"))
