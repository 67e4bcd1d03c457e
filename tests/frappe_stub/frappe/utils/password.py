"""Password fields as in frappe/utils/password.py (v15): values live in the `__Auth` table, one
row per (doctype, name, fieldname), and only rows with encrypted = 1 count.

Not faithful: the stand-in stores the text as is (real Frappe encrypts it with Fernet and the
site's `encryption_key`), so that the stock rq workers of the tests need no `cryptography`."""

from __future__ import annotations

import frappe


def get_decrypted_password(doctype: str, name: str, fieldname: str = "password", raise_exception: bool = True) -> str | None:
    rows = frappe.db.sql(
        "SELECT `password` FROM `__Auth` WHERE `doctype` = %s AND `name` = %s AND `fieldname` = %s"
        " AND `encrypted` = 1 LIMIT 1", (doctype, name, fieldname))
    if rows and rows[0][0]:
        return str(rows[0][0])
    if raise_exception:
        frappe.throw(f"Password not found for {doctype} {name} {fieldname}", frappe.AuthenticationError)
    return None


def set_encrypted_password(doctype: str, name: str, pwd: str, fieldname: str = "password") -> None:
    frappe.db.sql(
        "INSERT INTO `__Auth` (`doctype`, `name`, `fieldname`, `password`, `encrypted`) VALUES (%s, %s, %s, %s, 1)"
        " ON DUPLICATE KEY UPDATE `password` = VALUES(`password`)", (doctype, name, fieldname, pwd))
