"""Document for the stand-in: load / insert / save / submit / cancel / delete one row of a table
(with its child rows), running the controller's methods and then the doc_events hooks at the
same points and in the same order as frappe/model/document.py (v15):

    insert: before_insert, before_validate, validate, before_save|before_submit, INSERT (+ children),
            after_insert, on_update (+ on_submit), on_change
    save:   before_validate, validate, before_save|before_submit, UPDATE (+ children),
            on_update (+ on_submit), on_change          (_doc_before_save loaded FOR UPDATE first)
    cancel: before_cancel, UPDATE, on_cancel, on_change
    update after submit: before_update_after_submit, UPDATE, on_update_after_submit, on_change
    delete (frappe.delete_doc): on_trash, DELETE (+ children), after_delete

Each doc_events handler is resolved with frappe.get_attr (so an app that is not installed on the
site fails the save, as in Frappe) and called as handler(doc, method).
"""

from __future__ import annotations

import secrets
from typing import Any

import frappe
from frappe import _dict
from frappe.model.base_document import get_controller
from frappe.model.meta import cast_single_value, get_meta
from frappe.model.naming import make_autoname
from frappe.utils import cint, now_datetime

_INTERNAL = {"doctype", "flags", "_action", "_is_new", "_doc_before_save", "parent_doc"}


def get_doc(*args: Any, **kwargs: Any) -> Document:
    """get_doc(doctype[, name]) loads a document; get_doc({...}) or get_doc(doctype=..., ...) builds a new one."""
    if args and isinstance(args[0], Document):
        return args[0]
    if args and isinstance(args[0], str):
        doctype = args[0]
    elif args and isinstance(args[0], dict):
        doctype = args[0]["doctype"]
    elif "doctype" in kwargs:
        doctype = kwargs["doctype"]
    else:
        raise ValueError('"doctype" is a required key')
    cls: type[Document] = get_controller(doctype)
    return cls(*args, **kwargs)


def delete_doc(doctype: str | None, name: str | None) -> None:
    """frappe.delete_doc: on_trash, delete the row and its child rows, after_delete."""
    doc = get_doc(doctype, name)
    doc.run_method("on_trash")
    for child_doctype in get_meta(doc.doctype).table_fields.values():
        frappe.db.sql(f"DELETE FROM `tab{child_doctype}` WHERE parent = %s AND parenttype = %s", (doc.name, doc.doctype))
    frappe.db.sql(f"DELETE FROM `tab{doc.doctype}` WHERE name = %s", (doc.name,))
    doc.run_method("after_delete")


class Document:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.flags = _dict()
        self._action = "save"
        self._doc_before_save: Document | None = None
        if args and isinstance(args[0], str):
            self.doctype = args[0]
            self.name = args[0] if len(args) == 1 else args[1]
            self._is_new = False
            self.load_from_db(for_update=bool(kwargs.get("for_update")))
            return
        values = dict(args[0]) if args and isinstance(args[0], dict) else dict(kwargs)
        self.doctype = values.pop("doctype")
        self._is_new = True
        meta = get_meta(self.doctype)
        if not meta.issingle:
            for column in frappe.db.get_table_columns(self.doctype):
                self.__dict__.setdefault(column, None)
        for fieldname in meta.table_fields:
            self.__dict__[fieldname] = []
        for key, value in values.items():
            if key in meta.table_fields:
                for row in value or []:
                    self.append(key, row)
            else:
                self.__dict__[key] = value

    def __getattr__(self, key: str) -> Any:
        # Stand-in: a field not loaded reads as None (real Documents carry every field).
        if key.startswith("_"):
            raise AttributeError(key)
        return None

    def __repr__(self) -> str:
        return f"<{self.doctype}: {self.__dict__.get('name')}>"

    # --- loading -------------------------------------------------------------------------------
    def load_from_db(self, for_update: bool = False) -> None:
        meta = get_meta(self.doctype)
        if meta.issingle:
            rows = frappe.db.sql("SELECT field, value FROM tabSingles WHERE doctype = %s", (self.doctype,))
            self.__dict__.update({f: cast_single_value(self.doctype, f, v) for f, v in rows})
            self.name = self.doctype
            return
        lock = " FOR UPDATE" if for_update else ""
        rows = frappe.db.sql(f"SELECT * FROM `tab{self.doctype}` WHERE name = %s{lock}", (self.name,), as_dict=True)
        if not rows:
            raise frappe.DoesNotExistError(f"{self.doctype} {self.name} not found")
        self.__dict__.update(rows[0])
        for fieldname, child_doctype in meta.table_fields.items():
            children = frappe.db.sql(
                f"SELECT * FROM `tab{child_doctype}` WHERE parent = %s AND parenttype = %s AND parentfield = %s"
                " ORDER BY idx", (self.name, self.doctype, fieldname), as_dict=True)
            self.__dict__[fieldname] = []
            for child in children:
                doc = get_controller(child_doctype)({"doctype": child_doctype, **child})
                doc._is_new = False
                self.__dict__[fieldname].append(doc)

    def reload(self) -> Document:
        self.load_from_db()
        return self

    # --- fields --------------------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        return self.__dict__.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.__dict__[key] = value

    def update(self, values: dict[str, Any]) -> Document:
        self.__dict__.update(values)
        return self

    def append(self, fieldname: str, value: dict[str, Any] | Document) -> Document:
        child_doctype = get_meta(self.doctype).table_fields[fieldname]
        doc = value if isinstance(value, Document) else get_controller(child_doctype)({"doctype": child_doctype, **value})
        rows = self.__dict__.setdefault(fieldname, [])
        doc.update({"parent": self.get("name"), "parentfield": fieldname, "parenttype": self.doctype,
                    "idx": len(rows) + 1})
        rows.append(doc)
        return doc

    def as_dict(self) -> _dict:
        return _dict({k: v for k, v in self.__dict__.items() if k not in _INTERNAL})

    def is_new(self) -> bool:
        return self._is_new

    def get_doc_before_save(self) -> Document | None:
        return self._doc_before_save

    def _fields(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in _INTERNAL}

    # --- controller methods, then doc_events handlers (doc, method) ---------------------------
    def run_method(self, method: str, *args: Any, **kwargs: Any) -> Any:
        own = getattr(self, method, None)
        out = own(*args, **kwargs) if callable(own) else None
        doc_events = frappe.get_doc_hooks()
        handlers = doc_events.get(self.doctype, {}).get(method, []) + doc_events.get("*", {}).get(method, [])
        for handler in handlers:
            frappe.get_attr(handler)(self, method, *args, **kwargs)
        return out

    def _run_before_save_methods(self) -> None:
        if self._action in ("save", "submit"):
            self.run_method("before_validate")
        if self.flags.ignore_validate:
            return
        if self._action in ("save", "submit"):
            self.run_method("validate")
        self.run_method({"save": "before_save", "submit": "before_submit", "cancel": "before_cancel",
                         "update_after_submit": "before_update_after_submit"}[self._action])

    def _run_post_save_methods(self) -> None:
        if self._action in ("save", "submit"):
            self.run_method("on_update")
        self.run_method({"save": None, "submit": "on_submit", "cancel": "on_cancel",
                         "update_after_submit": "on_update_after_submit"}[self._action] or "_no_method")
        self.run_method("on_change")

    # --- persistence -------------------------------------------------------------------------
    def insert(self, ignore_permissions: bool | None = None, ignore_links: bool | None = None,
               ignore_if_duplicate: bool = False, ignore_mandatory: bool | None = None,
               set_name: str | None = None, set_child_names: bool = True) -> Document:
        now, user = now_datetime(), frappe.session.user
        self.__dict__["docstatus"] = cint(self.get("docstatus"))
        self.creation = self.modified = now
        self.owner = self.modified_by = user
        self._action = "submit" if self.docstatus == 1 else "save"
        self.run_method("before_insert")
        if set_name:
            self.name = set_name
        elif get_meta(self.doctype).issingle:
            self.name = self.doctype
        elif not self.get("name") and get_meta(self.doctype).autoname:
            self.name = make_autoname(get_meta(self.doctype).autoname, self.doctype)
        elif not self.get("name"):
            self.name = secrets.token_hex(5)
        self._run_before_save_methods()
        if get_meta(self.doctype).issingle:
            self._write_single()
        else:
            self._db_insert()
            self._write_children()
        self._is_new = False
        self.run_method("after_insert")
        self._run_post_save_methods()
        self._action = "save"
        return self

    def save(self, ignore_permissions: bool | None = None, ignore_version: bool | None = None) -> Document:
        if self._is_new or not self.get("name"):
            return self.insert()
        before = get_doc(self.doctype, self.name, for_update=True)
        self._doc_before_save = before
        self._action = {(0, 0): "save", (0, 1): "submit", (1, 1): "update_after_submit",
                        (1, 2): "cancel"}.get((cint(before.get("docstatus")), cint(self.get("docstatus"))), "save")
        self.modified, self.modified_by = now_datetime(), frappe.session.user
        self._run_before_save_methods()
        if get_meta(self.doctype).issingle:
            self._write_single()
        else:
            self._db_update()
            self._write_children()
        self._run_post_save_methods()
        self._action = "save"
        return self

    def submit(self) -> Document:
        self.docstatus = 1
        return self.save()

    def cancel(self) -> Document:
        self.docstatus = 2
        return self.save()

    def delete(self, ignore_permissions: bool = False, force: bool = False, *, delete_permanently: bool = False) -> None:
        delete_doc(self.doctype, self.name)

    def db_set(self, fieldname: str | dict[str, Any], value: Any = None, update_modified: bool = True,
               notify: bool = False, commit: bool = False) -> None:
        values = fieldname if isinstance(fieldname, dict) else {fieldname: value}
        self.__dict__.update(values)
        frappe.db.set_value(self.doctype, self.name, values, update_modified=update_modified)
        if commit:
            frappe.db.commit()

    # --- SQL -----------------------------------------------------------------------------------
    def _row_values(self) -> dict[str, Any]:
        defaults = frappe.db.get_not_null_defaults(self.doctype)
        return {c: (defaults[c] if v is None else v) for c, v in self._fields().items() if c in defaults}

    def _db_insert(self) -> None:
        values = self._row_values()
        cols = ", ".join(f"`{c}`" for c in values)
        frappe.db.sql(f"INSERT INTO `tab{self.doctype}` ({cols}) VALUES ({', '.join(['%s'] * len(values))})",
                      list(values.values()))

    def _db_update(self) -> None:
        values = {k: v for k, v in self._row_values().items() if k != "name"}
        assignments = ", ".join(f"`{c}` = %s" for c in values)
        frappe.db.sql(f"UPDATE `tab{self.doctype}` SET {assignments} WHERE name = %s", [*values.values(), self.name])

    def _write_single(self) -> None:
        frappe.db.sql("DELETE FROM `tabSingles` WHERE `doctype` = %s", (self.doctype,))
        for field, value in self._fields().items():
            if field in get_meta(self.doctype).table_fields or value is None:
                continue
            frappe.db.sql("INSERT INTO `tabSingles` (`doctype`, `field`, `value`) VALUES (%s, %s, %s)",
                          (self.doctype, field, value))

    def _write_children(self) -> None:
        """Child rows: the ones no longer in the document are deleted, the others written."""
        for fieldname, child_doctype in get_meta(self.doctype).table_fields.items():
            rows: list[Document] = self.get(fieldname) or []
            keep = [r.name for r in rows if r.get("name") and not r.is_new()]
            where = f" AND name NOT IN ({', '.join(['%s'] * len(keep))})" if keep else ""
            frappe.db.sql(f"DELETE FROM `tab{child_doctype}` WHERE parent = %s AND parenttype = %s AND parentfield = %s{where}",
                          [self.name, self.doctype, fieldname, *keep])
            now = now_datetime()
            for idx, row in enumerate(rows, start=1):
                row.update({"parent": self.name, "parentfield": fieldname, "parenttype": self.doctype, "idx": idx,
                            "modified": now, "modified_by": frappe.session.user})
                if row.is_new() or not row.get("name"):
                    row.update({"name": row.get("name") or secrets.token_hex(5), "creation": now,
                                "owner": frappe.session.user, "docstatus": self.docstatus})
                    row._db_insert()
                    row._is_new = False
                else:
                    row._db_update()
