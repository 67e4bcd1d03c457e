"""Shapes of the values btu_client returns (TypedDicts, usable at runtime for annotations)."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any, Literal, Protocol, TypedDict, Union

__all__ = [
    "AuditEntry",
    "BackfillRun",
    "Instant",
    "Pause",
    "Paused",
    "Resumed",
    "SkippedRun",
    "Skipped",
    "Cancelled",
    "HasName",
    "HistoryRun",
    "NextRun",
    "Pong",
    "RanNow",
    "Rebuilt",
    "ScheduleRef",
    "ScheduleState",
    "SiteStatus",
    "SocketPath",
    "Status",
    "UpcomingRun",
]


class HasName(Protocol):
    """A Frappe document (BTU Task Schedule): only ``.name`` is read."""

    @property
    def name(self) -> str: ...

# Union[] rather than |: these aliases are evaluated at runtime on Python 3.10 too.
ScheduleRef = Union[str, HasName]
SocketPath = Union[str, "os.PathLike[str]"]
# An instant argument: an aware datetime (a naive one raises ValueError) or an RFC 3339 string.
Instant = Union[datetime, str]

class NextRun(TypedDict):
    utc: datetime  # the due instant, tzinfo = timezone.utc
    local: datetime  # the same instant, tzinfo = the schedule's UTC offset at that instant

class Settings(TypedDict):
    """A schedule's effective policies (docs/policies.md)."""

    overlap: str  # allow | skip | replace
    catchup: str  # latest | all | none
    jitter_secs: int
    dst_gap: str  # shift | skip
    dst_overlap: str  # auto | first | last | both

class ScheduleState(TypedDict):
    site: str
    schedule: str
    runs: bool
    reason: str | None  # why it will not run: disabled, task not submitted, invalid cron + reason, unknown
    time_zone: str | None
    next_runs: list[NextRun]
    settings: Settings | None  # None when it does not run (or from an older daemon)

class Pong(TypedDict):
    daemon_version: str
    protocol_version: int

class Cancelled(TypedDict):
    site: str
    schedule: str
    removed: bool

class Rebuilt(TypedDict):
    sites: list[str]
    schedules: int
    skipped: int
    duration_ms: int

class Pause(TypedDict):
    schedule: str
    until: datetime | None  # None: until resumed
    note: str | None
    at: datetime  # when the pause was set (UTC)
    uid: int | None  # who paused it (the caller's uid/pid, read by the daemon from the socket)
    pid: int | None

class Paused(Pause):
    site: str

class Resumed(TypedDict):
    site: str
    schedule: str
    was_paused: bool  # False: it was not paused, nothing changed

class Skipped(TypedDict):
    site: str
    schedule: str
    added: list[NextRun]  # the runs this call skipped, soonest first
    pending: list[NextRun]  # every run of the schedule now skipped

class SkippedRun(TypedDict):
    schedule: str
    utc: datetime

class BackfillRun(TypedDict):
    due: datetime  # UTC
    local: datetime  # the same instant in the schedule's offset
    job_id: str
    status: Literal["enqueued", "exists", "would_enqueue"]

class AuditEntry(TypedDict):
    id: str  # the Redis stream id
    time: datetime  # UTC, milliseconds
    action: str  # pause, resume, skip, backfill, run_now, cancel, rebuild, legacy_create, legacy_cancel
    schedule: str | None
    args: dict[str, Any]
    note: str | None
    uid: int | None
    pid: int | None

class SiteStatus(TypedDict):
    site: str
    schedules: int
    redis_ok: bool
    source_ok: bool
    last_rebuild: datetime | None
    paused: list[Pause]  # the site's paused schedules
    skipped: list[SkippedRun]  # the site's skipped runs still ahead, soonest first

class Status(TypedDict):
    daemon_version: str
    protocol_version: int
    started_at: datetime
    uptime_secs: int
    source: str
    sites: list[SiteStatus]
    defaults: Settings | None  # the config's [defaults] (None from an older daemon)

class UpcomingRun(TypedDict):
    site: str
    schedule: str
    task: str | None
    utc: datetime
    local: datetime
    paused: bool  # falls while the schedule is paused: not enqueued
    skipped: bool  # skipped with skip_next: not enqueued
    settings: Settings | None  # the schedule's effective policies (None from an older daemon)

class HistoryRun(TypedDict):
    """What happened to one due instant of a schedule."""

    job_id: str
    """The RQ job id (for a run not enqueued: the id it would have had)."""
    due: datetime
    enqueued_at: datetime | None
    """When the job was written to its queue; None when it was not enqueued."""
    outcome: str
    """enqueued, replaced, skipped_overlap, skipped_paused, skipped_by_request or skipped_missed."""
    lateness_ms: int | None
    """enqueued_at minus due in milliseconds (enqueued and replaced runs)."""

class RanNow(TypedDict):
    site: str
    schedule: str
    job_id: str
    queue: str
