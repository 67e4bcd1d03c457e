"""btu_client: talk to btu-daemon (the BTU task scheduler) over its Unix socket.

Every function takes keyword-only ``socket_path`` (default: ``$BTU_SOCKET_PATH``, else
``/tmp/btu_scheduler.sock``) and ``timeout`` (seconds for the whole call, default 2.0), and
``site`` where it applies. Results are plain dicts/lists with timezone-aware datetimes; errors
are :class:`BtuError` subclasses. The wire format is implemented once, in Rust (btu-protocol);
this package only re-exports the native functions.
"""

from __future__ import annotations

from ._types import (
    Cancelled,
    HasName,
    HistoryRun,
    NextRun,
    Pong,
    RanNow,
    Rebuilt,
    ScheduleRef,
    ScheduleState,
    SiteStatus,
    SocketPath,
    Status,
    UpcomingRun,
)
from ._errors import BtuError, DaemonError, DaemonUnavailable, ProtocolError, ScheduleError
from ._core import (
    DEFAULT_SOCKET_PATH,
    PROTOCOL_VERSION,
    SOCKET_PATH_ENV,
    __version__,
    cancel,
    history,
    notify,
    ping,
    rebuild,
    run_now,
    status,
    upcoming,
)

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
    "BtuError",
    "DaemonError",
    "DaemonUnavailable",
    "ProtocolError",
    "ScheduleError",
    "DEFAULT_SOCKET_PATH",
    "PROTOCOL_VERSION",
    "SOCKET_PATH_ENV",
    "__version__",
    "cancel",
    "history",
    "notify",
    "ping",
    "rebuild",
    "run_now",
    "status",
    "upcoming",
]
