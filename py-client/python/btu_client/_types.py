"""Shapes of the values btu_client returns (TypedDicts, usable at runtime for annotations)."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Protocol, TypedDict, Union

__all__ = [
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

class NextRun(TypedDict):
    utc: datetime  # the due instant, tzinfo = timezone.utc
    local: datetime  # the same instant, tzinfo = the schedule's UTC offset at that instant

class ScheduleState(TypedDict):
    site: str
    schedule: str
    runs: bool
    reason: str | None  # why it will not run: disabled, task not submitted, invalid cron + reason, unknown
    time_zone: str | None
    next_runs: list[NextRun]

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

class SiteStatus(TypedDict):
    site: str
    schedules: int
    redis_ok: bool
    source_ok: bool
    last_rebuild: datetime | None

class Status(TypedDict):
    daemon_version: str
    protocol_version: int
    started_at: datetime
    uptime_secs: int
    source: str
    sites: list[SiteStatus]

class UpcomingRun(TypedDict):
    site: str
    schedule: str
    task: str | None
    utc: datetime
    local: datetime

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
