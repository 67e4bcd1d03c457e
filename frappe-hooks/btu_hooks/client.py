"""The one place btu_hooks reaches the btu_client wheel.

`get_client()` imports btu_client lazily, so that btu_hooks imports (and its runner works) in a
bench where the wheel is missing, and so that tests can replace the client:
``monkeypatch.setattr(btu_hooks.client, "get_client", lambda: fake)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast

from btu_hooks.errors import ClientNotInstalled


class BtuClient(Protocol):
    """What btu_hooks needs of the btu_client module (functions and exception classes); see
    btu_client's stubs for the full API (notify returns ScheduleState dicts)."""

    BtuError: type[Exception]
    DaemonUnavailable: type[Exception]
    ProtocolError: type[Exception]
    ScheduleError: type[Exception]

    def notify(self, schedules: str | Any | Sequence[str | Any], *, site: str | None = ...,
               socket_path: str | None = ..., timeout: float = ...) -> Sequence[Mapping[str, Any]]: ...

    def cancel(self, schedule: str, *, site: str | None = ..., socket_path: str | None = ...,
               timeout: float = ...) -> Any: ...

    def rebuild(self, *, site: str | None = ..., socket_path: str | None = ..., timeout: float = ...) -> Any: ...


def get_client() -> BtuClient:
    try:
        import btu_client
    except ImportError as e:
        raise ClientNotInstalled(
            f"the btu_client package is not installed in this Python environment ({e}); "
            "install it into the bench's virtualenv: ./env/bin/pip install btu_client"
        ) from e
    return cast(BtuClient, btu_client)  # the module implements the protocol
