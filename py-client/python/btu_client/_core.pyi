"""Type stubs of the native module btu_client._core (Rust, PyO3)."""

import os
from datetime import datetime
from typing import Final, Protocol, Sequence, TypedDict

__version__: Final[str]
PROTOCOL_VERSION: Final[int]
DEFAULT_SOCKET_PATH: Final[str]
SOCKET_PATH_ENV: Final[str]
MAX_FRAME_LEN: Final[int]

class HasName(Protocol):
    """A Frappe document (BTU Task Schedule): only ``.name`` is read."""

    @property
    def name(self) -> str: ...

ScheduleRef = str | HasName
SocketPath = str | os.PathLike[str]

class NextRun(TypedDict):
    utc: datetime
    """The due instant in UTC (tzinfo = timezone.utc)."""
    local: datetime
    """The same instant in the schedule's time zone (tzinfo = fixed offset of that instant)."""

class ScheduleState(TypedDict):
    site: str
    schedule: str
    runs: bool
    reason: str | None
    """Why it will not run: disabled, task not submitted, invalid cron + reason, unknown."""
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
    job_id: str
    due: datetime
    enqueued_at: datetime

class RanNow(TypedDict):
    site: str
    schedule: str
    job_id: str
    queue: str

def ping(*, socket_path: SocketPath | None = None, timeout: float = 2.0) -> Pong:
    """Is btu-daemon alive? Returns its daemon and protocol versions.

    Raises DaemonUnavailable, ProtocolError."""

def notify(
    schedule: ScheduleRef | Sequence[ScheduleRef],
    *,
    site: str | None = None,
    socket_path: SocketPath | None = None,
    timeout: float = 2.0,
) -> list[ScheduleState]:
    """Re-read the schedule(s) from their source and replan them now.

    ``schedule`` is a schedule id, a document with ``.name``, or a list/tuple of those. Returns
    one state per schedule in request order (an empty list for an empty list, without I/O).
    Raises DaemonUnavailable, ProtocolError, ScheduleError, DaemonError, TypeError/ValueError
    for a bad argument."""

def cancel(
    schedule: ScheduleRef, *, site: str | None = None, socket_path: SocketPath | None = None, timeout: float = 2.0
) -> Cancelled:
    """Drop the schedule's planned runs (deleted or disabled schedule)."""

def rebuild(*, site: str | None = None, socket_path: SocketPath | None = None, timeout: float = 2.0) -> Rebuilt:
    """Re-read every schedule of ``site`` (or of all sites) from the source."""

def status(*, socket_path: SocketPath | None = None, timeout: float = 2.0) -> Status:
    """Daemon health: versions, start time, uptime, source, per-site state."""

def upcoming(
    schedule: ScheduleRef | None = None,
    count: int = 10,
    *,
    site: str | None = None,
    socket_path: SocketPath | None = None,
    timeout: float = 2.0,
) -> list[UpcomingRun]:
    """The next ``count`` planned runs (soonest first), of one schedule or of all."""

def history(
    schedule: ScheduleRef,
    count: int = 20,
    *,
    site: str | None = None,
    socket_path: SocketPath | None = None,
    timeout: float = 2.0,
) -> list[HistoryRun]:
    """The most recent ``count`` runs the daemon enqueued for the schedule, newest first."""

def run_now(
    schedule: ScheduleRef, *, site: str | None = None, socket_path: SocketPath | None = None, timeout: float = 2.0
) -> RanNow:
    """Enqueue the schedule's task immediately, outside its cron plan."""

# Private helpers for tests (golden vectors, fake daemons); not part of the API.
def _encode_request(
    kind: str,
    id: int,
    *,
    schedules: list[str] | None = None,
    schedule: str | None = None,
    site: str | None = None,
    count: int | None = None,
) -> bytes: ...
def _decode_response(frame: bytes) -> tuple[int, object]: ...
def _peek_request_id(frame: bytes) -> int | None: ...
def _request_kind(frame: bytes) -> str: ...
def _with_response_id(frame: bytes, id: int) -> bytes: ...
