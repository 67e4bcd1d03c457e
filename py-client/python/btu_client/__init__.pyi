from ._core import (
    DEFAULT_SOCKET_PATH as DEFAULT_SOCKET_PATH,
    PROTOCOL_VERSION as PROTOCOL_VERSION,
    SOCKET_PATH_ENV as SOCKET_PATH_ENV,
    Cancelled as Cancelled,
    HistoryRun as HistoryRun,
    NextRun as NextRun,
    Pong as Pong,
    RanNow as RanNow,
    Rebuilt as Rebuilt,
    ScheduleState as ScheduleState,
    SiteStatus as SiteStatus,
    Status as Status,
    UpcomingRun as UpcomingRun,
    __version__ as __version__,
    cancel as cancel,
    history as history,
    notify as notify,
    ping as ping,
    rebuild as rebuild,
    run_now as run_now,
    status as status,
    upcoming as upcoming,
)
from ._errors import (
    BtuError as BtuError,
    DaemonError as DaemonError,
    DaemonUnavailable as DaemonUnavailable,
    ProtocolError as ProtocolError,
    ScheduleError as ScheduleError,
)

__all__: list[str]
