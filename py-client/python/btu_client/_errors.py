"""Exceptions raised by btu_client. All derive from :class:`BtuError`."""

from __future__ import annotations

__all__ = ["BtuError", "DaemonUnavailable", "ProtocolError", "ScheduleError", "ArgumentError", "DaemonError"]


class BtuError(Exception):
    """Base class of every btu_client error.

    ``code`` is the daemon's error code (``"unknown_schedule"``, ``"internal"`` ...) when the
    error came from a daemon answer, else ``None``.
    """

    message: str
    code: str | None

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class DaemonUnavailable(BtuError):
    """btu-daemon cannot be reached: no socket file, connection refused, permission denied,
    no answer within the timeout, or the connection closed without an answer.

    The message says what to check (is btu-daemon running, the socket path, permissions).
    Callers saving documents may log it and go on: the daemon's periodic rebuild catches up.
    """


class ProtocolError(BtuError):
    """The daemon and the client do not understand each other: different protocol versions
    ("protocol version mismatch: client speaks X, daemon speaks Y"), a malformed or oversize message."""


class ScheduleError(BtuError):
    """The daemon refused a schedule: unknown (``code == "unknown_schedule"``) or invalid
    (``code == "invalid_schedule"``, the message carries the reason, e.g. the cron error).
    ``schedule`` is the schedule id concerned, when known."""

    schedule: str | None

    def __init__(self, message: str, code: str | None = None, schedule: str | None = None) -> None:
        super().__init__(message, code)
        self.schedule = schedule


class ArgumentError(BtuError, ValueError):
    """The daemon refused an argument of an operator action (``code == "invalid_argument"``): a
    ``until`` in the past, an unreadable instant, an empty backfill range or one with more planned
    runs than ``max``, a count of 0. Also a ``ValueError``. ``schedule`` is the schedule concerned."""

    schedule: str | None

    def __init__(self, message: str, code: str | None = None, schedule: str | None = None) -> None:
        super().__init__(message, code)
        self.schedule = schedule


class DaemonError(BtuError):
    """btu-daemon understood the request but failed to serve it (``code == "internal"``),
    e.g. Redis or the schedule source was unreachable. The message carries the daemon's reason."""
