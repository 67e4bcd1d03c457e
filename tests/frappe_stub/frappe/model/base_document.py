"""get_controller as in frappe/model/base_document.py (v15): the class a DocType's documents are
made of.

1. `override_doctype_class` hooks of the installed apps win (the last one listed).
2. Otherwise the DocType's module (stand-in metadata; real: tabDocType.module) gives the app
   (module_app, from the bench apps' modules.txt) and the controller is the class named like the
   DocType without spaces in `<app>.<module>.doctype.<doctype>.<doctype>`.
Stand-in only: a DocType with no module, or whose module's app is not on the bench, gets the
base Document (real Frappe would not have such a DocType at all).
Controllers are kept per frappe.init (real Frappe keeps them for the life of the process).
"""

from __future__ import annotations

from typing import Any

import frappe
from frappe.model.meta import get_meta


def get_controller(doctype: str) -> type[Any]:
    controllers: dict[str, type[Any]] = frappe.local.controllers
    if doctype not in controllers:
        controllers[doctype] = import_controller(doctype)
    return controllers[doctype]


def import_controller(doctype: str) -> type[Any]:
    from frappe.model.document import Document

    module_path = None
    class_overrides = frappe.get_hooks("override_doctype_class")
    if class_overrides and class_overrides.get(doctype):
        module_path, classname = class_overrides[doctype][-1].rsplit(".", 1)
        module = frappe.get_module(module_path)
    else:
        module_name = get_meta(doctype).module
        app = frappe.local.module_app.get(frappe.scrub(module_name)) if module_name else None
        if app is None:
            return Document
        dt = frappe.scrub(doctype)
        module = frappe.get_module(f"{app}.{frappe.scrub(module_name)}.doctype.{dt}.{dt}")
        classname = doctype.replace(" ", "").replace("-", "")

    class_ = getattr(module, classname, None)
    if class_ is None:
        raise ImportError(doctype if module_path is None else f"{doctype}: {classname} does not exist in module {module_path}")
    if not issubclass(class_, Document):
        raise ImportError(f"{doctype}: {classname} is not a subclass of BaseDocument")
    return class_
