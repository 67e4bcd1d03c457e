"""The little DocType metadata the stand-in needs (real Frappe: tabDocType + tabDocField, read
through frappe.get_meta). Only the DocTypes of tests/sql/schema.sql are known; any other DocType
is a plain table with no module (so its controller is the base Document)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from frappe.utils.data import cint


@dataclass(frozen=True)
class Meta:
    module: str | None = None          # DocType.module: tells which app holds the controller
    autoname: str | None = None        # naming series, e.g. "TS-.######"
    issingle: bool = False             # values in tabSingles
    istable: bool = False              # a child table (rows carry parent/parentfield/parenttype)
    table_fields: dict[str, str] = field(default_factory=dict)   # fieldname -> child DocType
    int_fields: frozenset[str] = frozenset()  # Int/Check fields of a Single (tabSingles holds text)


_BTU = "BTU_Core"  # the module of every BTU DocType (btu/modules.txt: btu_core)

DOCTYPES: dict[str, Meta] = {
    "BTU Task": Meta(module=_BTU, autoname="BTU-.#####"),
    "BTU Task Schedule": Meta(module=_BTU, autoname="TS-.######",
                              table_fields={"email_recipients": "BTU Email Recipient"}),
    "BTU Task Log": Meta(module=_BTU, autoname="BTLOG-.#######"),
    "BTU Email Recipient": Meta(module=_BTU, istable=True),
    "BTU Configuration": Meta(module=_BTU, issingle=True,
                              int_fields=frozenset({"email_body_is_html", "create_in_progress_logs"})),
    "System Settings": Meta(issingle=True),
    "Custom Field": Meta(module="Custom"),  # named <dt>-<fieldname> by its controller
}


def get_meta(doctype: str) -> Meta:
    return DOCTYPES.get(doctype, Meta())


def cast_single_value(doctype: str, fieldname: str, value: Any) -> Any:
    """tabSingles stores text; Int/Check fields come back as int, as in Frappe."""
    if fieldname in get_meta(doctype).int_fields:
        return cint(value)
    return value
