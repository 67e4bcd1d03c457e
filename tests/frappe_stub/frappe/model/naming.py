"""Naming series as in frappe/model/naming.py: `PREFIX-.#####` takes the next counter of
`PREFIX-` from tabSeries (row locked with FOR UPDATE, created at 1 when missing)."""

from __future__ import annotations

import frappe
from frappe.utils import cint, now_datetime


def make_autoname(key: str = "", doctype: str = "", doc: object | None = None) -> str:
    if "#" not in key:
        key = key + ".#####"
    return parse_naming_series(key.split("."), doctype=doctype)


def parse_naming_series(parts: list[str], doctype: str = "") -> str:
    name, series_set, today = "", False, now_datetime()
    for part in parts:
        if part.startswith("#"):
            if not series_set:
                name += getseries(name, len(part))
                series_set = True
        elif part in ("YY", "MM", "DD", "YYYY"):
            name += today.strftime({"YY": "%y", "MM": "%m", "DD": "%d", "YYYY": "%Y"}[part])
        else:
            name += part
    return name


def getseries(key: str, digits: int) -> str:
    current = frappe.db.sql("SELECT `current` FROM `tabSeries` WHERE `name` = %s FOR UPDATE", (key,))
    if current and current[0][0] is not None:
        frappe.db.sql("UPDATE `tabSeries` SET `current` = `current` + 1 WHERE `name` = %s", (key,))
        value = cint(current[0][0]) + 1
    else:
        frappe.db.sql("INSERT INTO `tabSeries` (`name`, `current`) VALUES (%s, 1)", (key,))
        value = 1
    return ("%0" + str(digits) + "d") % value
