"""frappe.utils for the stand-in: re-exports frappe.utils.data (as Frappe does) and
CallbackManager (Frappe v15: frappe/utils/__init__.py)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from frappe.utils.data import (
    cint,
    convert_utc_to_system_timezone,
    cstr,
    get_datetime_str,
    get_system_timezone,
    now,
    now_datetime,
)

__all__ = ["CallbackManager", "cint", "convert_utc_to_system_timezone", "cstr", "get_datetime_str", "get_system_timezone", "now",
           "now_datetime"]


class CallbackManager:
    """FIFO list of callables run at a transaction boundary (frappe.db.after_commit etc.)."""

    __slots__ = ("_functions",)

    def __init__(self) -> None:
        self._functions: deque[Callable[[], Any]] = deque()

    def add(self, func: Callable[[], Any]) -> None:
        self._functions.append(func)

    def run(self) -> None:
        while self._functions:
            self._functions.popleft()()

    def reset(self) -> None:
        self._functions.clear()
