"""A Document stand-in: load/insert/save/submit/cancel/delete one row of a BTU table, running
the doc_events hooks at the same points as frappe/model/document.py (v15).

What real Frappe reads from DocType metadata (autoname, single, submittable, field types) is a
small table here, limited to the BTU DocTypes of the shared schema.
"""

from __future__ import annotations

from typing import Any

import frappe
from frappe import _dict
from frappe.model.naming import make_autoname
from frappe.utils import now_datetime

AUTONAME = {"BTU Task": "BTU-.#####", "BTU Task Schedule": "TS-.######", "BTU Task Log": "BTLOG-.#######"}
SINGLES = {"BTU Configuration", "System Settings"}
_NOT_FIELDS = {"doctype", "flags", "_action"}


def get_doc(*args: Any, **kwargs: Any) -> Document:
    """get_doc(doctype, name) loads a document; get_doc({...}) or get_doc(doctype=..., ...) builds a new one."""
    if args and isinstance(args[0], dict):
        return Document({**args[0], **kwargs})
    if not args and "doctype" in kwargs:
        return Document(dict(kwargs))
    return Document(*args, **kwargs)


class Document:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.flags = _dict()
        self._action = "save"
        if args and isinstance(args[0], dict):
            self.__dict__.update(args[0])
            return
        doctype = args[0]
        name = args[1] if len(args) > 1 else kwargs.get("name", doctype)
        self.doctype = doctype
        if doctype in SINGLES:
            rows = frappe.db.sql("SELECT field, value FROM tabSingles WHERE doctype = %s", (doctype,))
            self.__dict__.update({f: v for f, v in rows})
            self.name = doctype
            return
        rows = frappe.db.sql(f"SELECT * FROM `tab{doctype}` WHERE name = %s", (name,), as_dict=True)
        if not rows:
            raise frappe.DoesNotExistError(f"{doctype} {name} not found")
        self.__dict__.update(rows[0])

    def __repr__(self) -> str:
        return f"<{self.doctype}: {getattr(self, 'name', None)}>"

    def get(self, key: str, default: Any = None) -> Any:
        return self.__dict__.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.__dict__[key] = value

    def as_dict(self) -> _dict:
        return _dict({k: v for k, v in self.__dict__.items() if k not in ("flags", "_action")})

    def _fields(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in _NOT_FIELDS}

    # --- hooks: controller method (none here) then doc_events handlers (doc, method) ---------
    def run_method(self, method: str, *args: Any, **kwargs: Any) -> None:
        doc_events = frappe.get_doc_hooks()
        handlers = doc_events.get(self.doctype, {}).get(method, []) + doc_events.get("*", {}).get(method, [])
        for handler in handlers:
            frappe.get_attr(handler)(self, method, *args, **kwargs)

    # --- persistence -------------------------------------------------------------------------
    def insert(self, ignore_permissions: bool | None = None, ignore_links: bool | None = None,
               ignore_if_duplicate: bool = False, ignore_mandatory: bool | None = None,
               set_name: str | None = None, set_child_names: bool = True) -> Document:
        self.run_method("before_insert")
        if set_name:
            self.name = set_name
        elif not self.get("name") and self.doctype in AUTONAME:
            self.name = make_autoname(AUTONAME[self.doctype], self.doctype)
        now, user = now_datetime(), frappe.session.user
        self.__dict__.setdefault("docstatus", 0)
        self.creation = self.modified = now
        self.owner = self.modified_by = user
        self.run_method("validate")
        self.run_method("before_submit" if self.docstatus == 1 else "before_save")
        columns = set(frappe.db.get_table_columns(self.doctype))
        values = {k: v for k, v in self._fields().items() if k in columns}
        cols = ", ".join(f"`{c}`" for c in values)
        frappe.db.sql(
            f"INSERT INTO `tab{self.doctype}` ({cols}) VALUES ({', '.join(['%s'] * len(values))})",
            list(values.values()),
        )
        self.run_method("after_insert")
        self._action = "submit" if self.docstatus == 1 else "save"
        self._run_post_save_methods()
        return self

    def save(self, ignore_permissions: bool | None = None, ignore_version: bool | None = None) -> Document:
        if self.doctype not in SINGLES and not frappe.db.exists(self.doctype, self.get("name")):
            return self.insert()
        self.modified, self.modified_by = now_datetime(), frappe.session.user
        self.run_method("validate")
        self.run_method({"submit": "before_submit", "cancel": "before_cancel"}.get(self._action, "before_save"))
        fields = {k: v for k, v in self._fields().items() if k != "name"}
        if self.doctype in SINGLES:
            frappe.db.set_value(self.doctype, self.doctype, fields, update_modified=False)
        else:
            columns = set(frappe.db.get_table_columns(self.doctype))
            frappe.db.set_value(self.doctype, self.name, {k: v for k, v in fields.items() if k in columns},
                                update_modified=False)
        self._run_post_save_methods()
        return self

    def _run_post_save_methods(self) -> None:
        method = {"submit": "on_submit", "cancel": "on_cancel"}.get(self._action)
        if method is None:
            method = "on_update" if self.get("docstatus", 0) == 0 else "on_update_after_submit"
        self.run_method(method)
        self.run_method("on_change")
        self._action = "save"

    def submit(self) -> Document:
        self.docstatus, self._action = 1, "submit"
        return self.save()

    def cancel(self) -> Document:
        self.docstatus, self._action = 2, "cancel"
        return self.save()

    def delete(self, ignore_permissions: bool = False, force: bool = False, *, delete_permanently: bool = False) -> None:
        self.run_method("on_trash")
        frappe.db.sql(f"DELETE FROM `tab{self.doctype}` WHERE name = %s", (self.name,))
        self.run_method("after_delete")

    def db_set(self, fieldname: str | dict[str, Any], value: Any = None, update_modified: bool = True,
               notify: bool = False, commit: bool = False) -> None:
        values = fieldname if isinstance(fieldname, dict) else {fieldname: value}
        self.__dict__.update(values)
        frappe.db.set_value(self.doctype, self.name, values, update_modified=update_modified)
        if commit:
            frappe.db.commit()

    def reload(self) -> Document:
        self.__dict__.update(Document(self.doctype, self.name).__dict__)
        return self
