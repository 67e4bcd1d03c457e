"""Date/time helpers as in frappe/utils/data.py (v15): naive datetimes in the site's zone."""

from __future__ import annotations

import datetime
from typing import Any
from zoneinfo import ZoneInfo

import frappe


def get_system_timezone() -> str:
    """The site's time zone: System Settings.time_zone (Frappe's own fallback is Asia/Kolkata)."""
    return frappe.get_system_settings("time_zone") or "Asia/Kolkata"


def convert_utc_to_system_timezone(utc_timestamp: datetime.datetime) -> datetime.datetime:
    if utc_timestamp.tzinfo is None:
        utc_timestamp = utc_timestamp.replace(tzinfo=datetime.UTC)
    return utc_timestamp.astimezone(ZoneInfo(get_system_timezone()))


def now_datetime() -> datetime.datetime:
    """Now, in the site's time zone, without tzinfo (what Frappe stores in Datetime fields)."""
    dt = convert_utc_to_system_timezone(datetime.datetime.now(datetime.UTC))
    return dt.replace(tzinfo=None)


def now() -> str:
    return now_datetime().strftime("%Y-%m-%d %H:%M:%S.%f")


def get_datetime_str(datetime_obj: datetime.datetime) -> str:
    """`YYYY-MM-DD HH:MM:SS.ffffff` (an aware datetime's offset is dropped, as in Frappe)."""
    return datetime_obj.strftime("%Y-%m-%d %H:%M:%S.%f")


def cstr(s: Any, encoding: str = "utf-8") -> str:
    if isinstance(s, str):
        return s
    if s is None:
        return ""
    if isinstance(s, bytes):
        return s.decode(encoding)
    return str(s)


def cint(s: Any, default: int = 0) -> int:
    try:
        return int(float(s))
    except (TypeError, ValueError):
        return default
