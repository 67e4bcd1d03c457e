"""Stand-in for the Frappe app "Background Tasks Unleashed" (Datahenge/btu, branch version-15,
btu 0.8.0), for tests only: the parts btu-scheduler meets, written from the app's observable
behaviour (see tests/btu_standin/README.md). Never installed into a bench."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import frappe

__version__ = "0.8.0"  # the release whose behaviour this stand-in follows


class Result:
    """Outcome of a run. Like the app's: `message` must be a str, dict or list when truthy (a task
    returning e.g. an int makes the constructor raise TypeError), and an empty message is None."""

    def __init__(self, success: bool, message: Any, execution_time: float | None = None) -> None:
        if not isinstance(success, bool):
            raise TypeError("Result class argument 'success' must be a boolean.")
        if message and not isinstance(message, (str, dict, list)):
            raise TypeError("Result class argument 'message' must be a Python String, List, or Dictionary. "
                            f" Found value '{message}' instead.")
        self.okay = success
        self.message = message or None
        self.execution_time = round(execution_time, 2) if execution_time else None

    def __bool__(self) -> bool:
        return self.okay


# The app's cron check: numbers only (no names, lists or ranges but a day-of-week a-b), matched
# from the start of the string only (trailing text is not looked at).
_CRON_FIELDS = (
    r"(\*(/[0-5]?\d)?|[0-5]?\d)",          # minute: *, */n, 0-59
    r"(\*|[01]?\d|2[0-3])",                # hour
    r"(\*|0?[1-9]|[12]\d|3[01])",          # day of month
    r"(\*|0?[1-9]|1[012])",                # month
    r"(\*|[0-6](-[0-6])?)",                # day of week
)
_CRON = re.compile(r"\s+".join(_CRON_FIELDS))


def validate_cron_string(cron_string: str, error_on_invalid: bool = False) -> bool:
    if _CRON.match(cron_string) is None:
        if error_on_invalid:
            raise ValueError(f"String '{cron_string}' is not a valid Unix cron string.")
        return False
    return True


def get_system_timezone() -> ZoneInfo:
    zone = frappe.db.get_system_setting("time_zone")
    if not zone:
        raise ValueError("Please configure a Time Zone under 'System Settings'.")
    return ZoneInfo(zone)


def get_system_datetime_now() -> datetime:
    """Now, aware, in the site's time zone."""
    return datetime.now(UTC).astimezone(get_system_timezone())


def make_datetime_naive(any_datetime: datetime) -> datetime:
    return any_datetime.replace(tzinfo=None)


def dprint(msg: Any, check_env: str | None = None, force: bool | None = None) -> None:
    """print() only when forced or when the environment variable `check_env` is 1."""
    if force or (check_env and os.environ.get(check_env, "").strip() == "1"):
        print(msg)
