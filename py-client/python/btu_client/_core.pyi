"""Type stubs of the native module btu_client._core (Rust, PyO3)."""

from typing import Final, Sequence

from ._types import (
    AuditEntry,
    BackfillRun,
    Instant,
    Paused,
    Resumed,
    Skipped,
    Cancelled,
    HistoryRun,
    Pong,
    RanNow,
    Rebuilt,
    ScheduleRef,
    ScheduleState,
    SocketPath,
    Status,
    UpcomingRun,
)

__all__ = [
    "DEFAULT_SOCKET_PATH",
    "MAX_FRAME_LEN",
    "PROTOCOL_VERSION",
    "SOCKET_PATH_ENV",
    "__version__",
    "_decode_response",
    "_encode_request",
    "_peek_request_id",
    "_request_kind",
    "_with_response_id",
    "audit",
    "backfill",
    "pause",
    "resume",
    "skip_next",
    "cancel",
    "history",
    "notify",
    "ping",
    "rebuild",
    "run_now",
    "status",
    "upcoming",
]

__version__: Final[str]
PROTOCOL_VERSION: Final[int]
DEFAULT_SOCKET_PATH: Final[str]
SOCKET_PATH_ENV: Final[str]
MAX_FRAME_LEN: Final[int]

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
    """What happened to the schedule's most recent ``count`` due instants, newest first:
    each with its ``outcome`` and, when enqueued, ``enqueued_at`` and ``lateness_ms``."""

def run_now(
    schedule: ScheduleRef, *, site: str | None = None, socket_path: SocketPath | None = None, timeout: float = 2.0
) -> RanNow:
    """Enqueue the schedule's task immediately, outside its cron plan."""

def pause(
    schedule: ScheduleRef,
    until: Instant | None = None,
    note: str | None = None,
    *,
    site: str | None = None,
    socket_path: SocketPath | None = None,
    timeout: float = 2.0,
) -> Paused:
    """Pause the schedule: none of its runs is enqueued until ``until`` (an aware datetime or an
    RFC 3339 string; None: until resumed). Replaces an earlier pause. Recorded in the audit trail
    with ``note`` and the caller's uid/pid. Raises ScheduleError (unknown schedule), ArgumentError
    (``until`` not in the future), ValueError (a naive datetime), DaemonUnavailable, DaemonError."""

def resume(
    schedule: ScheduleRef, *, site: str | None = None, socket_path: SocketPath | None = None, timeout: float = 2.0
) -> Resumed:
    """End the schedule's pause; the runs due while paused are not replayed."""

def skip_next(
    schedule: ScheduleRef,
    count: int = 1,
    *,
    site: str | None = None,
    socket_path: SocketPath | None = None,
    timeout: float = 2.0,
) -> Skipped:
    """Skip the schedule's next ``count`` planned runs (after those already skipped): they are
    not enqueued. Raises ScheduleError for a schedule that does not run."""

def backfill(
    schedule: ScheduleRef,
    start: Instant,
    end: Instant,
    max: int = 1000,
    dry_run: bool = False,
    *,
    site: str | None = None,
    socket_path: SocketPath | None = None,
    timeout: float = 30.0,
) -> list[BackfillRun]:
    """Enqueue every planned run in ``[start, end)`` that has no job yet, each under its
    deterministic job id (a run that has one is ``"exists"``, never duplicated); runs from now on
    are left to the plan. More than ``max`` planned runs raises ArgumentError (nothing written).
    ``dry_run`` writes nothing and answers ``"would_enqueue"``. Oldest first."""

def audit(
    schedule: ScheduleRef | None = None,
    count: int = 50,
    *,
    site: str | None = None,
    socket_path: SocketPath | None = None,
    timeout: float = 2.0,
) -> list[AuditEntry]:
    """The newest ``count`` operator actions of the site's audit trail (of one schedule, or
    all), newest first."""

# Private helpers for tests (golden vectors, fake daemons); not part of the API.
def _encode_request(
    kind: str,
    id: int,
    *,
    schedules: list[str] | None = None,
    schedule: str | None = None,
    site: str | None = None,
    count: int | None = None,
    until: str | None = None,
    note: str | None = None,
    start: str | None = None,
    end: str | None = None,
    max: int | None = None,
    dry_run: bool = False,
) -> bytes: ...
def _decode_response(frame: bytes) -> tuple[int, object]: ...
def _peek_request_id(frame: bytes) -> int | None: ...
def _request_kind(frame: bytes) -> str: ...
def _with_response_id(frame: bytes, id: int) -> bytes: ...
