"""Role permissions as in frappe/permissions.py (v15), for the DocPerm rows of a DocType only.

A user's roles are `Guest`, plus `All` for anyone but Guest, plus the rows of `tabHas Role`
(parent = the user); Administrator has every permission. A DocType grants `ptype` to a role
through a `tabDocPerm` row (parent = the DocType, permlevel 0) with that column set.
Not modelled: Custom DocPerm, user permissions, sharing, `if_owner`, permission query hooks.
"""

from __future__ import annotations

from typing import Any

import frappe

PTYPES = ("read", "write", "create", "delete", "submit", "cancel", "select", "report", "export", "print",
          "email", "share")


def get_roles(user: str | None = None) -> list[str]:
    user = user or frappe.session.user
    if user == "Administrator":
        return ["Administrator", "Guest", "All", *_db_roles(user)]
    roles = ["Guest"]
    if user != "Guest":
        roles += ["All", *_db_roles(user)]
    return roles


def _db_roles(user: str) -> list[str]:
    return [r for r in frappe.db.sql("SELECT `role` FROM `tabHas Role` WHERE `parent` = %s AND `parenttype` = 'User'",
                                     (user,), pluck=True)]


def has_permission(doctype: str | None = None, ptype: str = "read", doc: Any = None, user: str | None = None,
                   verbose: bool = False, throw: bool = False, *, parent_doctype: str | None = None,
                   debug: bool = False, ignore_share_permissions: bool = False) -> bool:
    if ptype not in PTYPES:
        raise ValueError(f"unknown permission type {ptype!r}")
    if doctype is None and doc is not None and not isinstance(doc, str):
        doctype = doc.doctype
    user = user or frappe.session.user
    if user == "Administrator":
        return True
    roles = get_roles(user)
    marks = ", ".join(["%s"] * len(roles))
    allowed = bool(frappe.db.sql(
        f"SELECT 1 FROM `tabDocPerm` WHERE `parent` = %s AND `permlevel` = 0 AND `{ptype}` = 1 AND `role` IN ({marks})"
        " LIMIT 1", [doctype, *roles]))
    if not allowed and throw:
        name = doc if isinstance(doc, str) else getattr(doc, "name", None)
        what = f"{doctype} {name}" if name else doctype
        frappe.msgprint(f"No permission for {what}", title="Not Permitted", indicator="red")
        raise frappe.PermissionError(f"No permission for {what}")
    return allowed
