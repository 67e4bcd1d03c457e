"""Custom Field as in frappe/custom/doctype/custom_field/custom_field.py (v15), as far as an app
shipping fields on another app's DocType needs it: `create_custom_field`, `create_custom_fields`
(idempotent: an existing field is updated, none duplicated) and the controller, whose name is
`<dt>-<fieldname>`, whose on_update adds the column (a column left by a deleted Custom Field
is reused, as Frappe does: its check is against the DocType's fields, not the table) (`frappe.db.updatedb`) and whose on_trash
leaves the column and its values in place, as Frappe does.
"""

from __future__ import annotations

from typing import Any

import frappe
from frappe.model.document import Document


class CustomField(Document):
    def before_insert(self) -> None:  # real Frappe: autoname() + set_fieldname()
        if not self.get("fieldname"):
            self.fieldname = "custom_" + frappe.scrub(self.label or "")
        self.fieldname = self.fieldname.lower()
        self.name = f"{self.dt}-{self.fieldname}"

    def on_update(self) -> None:
        if not frappe.flags.in_create_custom_fields:
            frappe.clear_cache(doctype=self.dt)
            frappe.db.updatedb(self.dt)

    def on_trash(self) -> None:
        if self.owner == "Administrator" and frappe.session.user != "Administrator":
            frappe.throw(f"Custom Field {self.label} is created by the Administrator and can only be deleted "
                         "through the Administrator account.")
        frappe.clear_cache(doctype=self.dt)


def create_custom_field(doctype: str, df: dict[str, Any], ignore_validate: bool = False,
                        is_system_generated: bool = True) -> Any:
    df = frappe._dict(df)
    if not df.fieldname and df.label:
        df.fieldname = frappe.scrub(df.label)
    if not frappe.db.get_value("Custom Field", {"dt": doctype, "fieldname": df.fieldname}):
        custom_field = frappe.get_doc({"doctype": "Custom Field", "dt": doctype, "permlevel": 0, "fieldtype": "Data",
                                      "hidden": 0, "is_system_generated": int(is_system_generated)})
        custom_field.update(df)
        custom_field.flags.ignore_validate = ignore_validate
        custom_field.insert()
        return custom_field
    return None


def create_custom_fields(custom_fields: dict[Any, Any], ignore_validate: bool = False, update: bool = True) -> None:
    """Add / update multiple custom fields: `{'Sales Invoice': [dict(fieldname='test')]}`."""
    try:
        frappe.flags.in_create_custom_fields = True
        doctypes_to_update: set[str] = set()
        for doctypes, fields in custom_fields.items():
            if isinstance(fields, dict):
                fields = [fields]
            if isinstance(doctypes, str):
                doctypes = (doctypes,)
            for doctype in doctypes:
                doctypes_to_update.add(doctype)
                for df in fields:
                    field = frappe.db.get_value("Custom Field", {"dt": doctype, "fieldname": df["fieldname"]})
                    if not field:
                        try:
                            df = {**df, "owner": "Administrator"}
                            create_custom_field(doctype, df, ignore_validate=ignore_validate)
                        except frappe.DuplicateEntryError:
                            pass
                    elif update:
                        custom_field = frappe.get_doc("Custom Field", field)
                        custom_field.flags.ignore_validate = ignore_validate
                        custom_field.update(df)
                        custom_field.save()
        for doctype in doctypes_to_update:
            frappe.clear_cache(doctype=doctype)
            frappe.db.updatedb(doctype)
    finally:
        frappe.flags.in_create_custom_fields = False
