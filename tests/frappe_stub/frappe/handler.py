"""frappe.handler.execute_cmd as in Frappe v15: what `/api/method/<cmd>` (and Desk's
frappe.call) runs. The method is resolved with frappe.get_attr (its app must be installed), must
be whitelisted and allow the request's HTTP method, and is called with the request's form
arguments that its signature accepts (values as the browser sent them: strings).

Stand-in: the request is `frappe.local.request` (anything with `.method`) and the arguments
`frappe.local.form_dict`; tests set both (see `call_as_request` below). No server scripts, no
`override_whitelisted_methods`, no run_doc_method.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import frappe


def execute_cmd(cmd: str, from_async: bool = False) -> Any:
    try:
        method = frappe.get_attr(cmd)
    except Exception as e:  # noqa: BLE001  # as in Frappe: any failure to resolve is one message
        frappe.throw(f"Failed to get method for command {cmd} with {e}")
    frappe.is_whitelisted(method)
    is_valid_http_method(method)
    return frappe.call(method, **frappe.local.form_dict)


def is_valid_http_method(method: Any) -> None:
    http_method = frappe.local.request.method
    if http_method not in frappe.allowed_http_methods_for_whitelisted_func[method]:
        frappe.throw(f"Not permitted: {http_method} for {getattr(method, '__qualname__', method)}",
                     frappe.PermissionError)


def call_as_request(cmd: str, http_method: str = "POST", **form: Any) -> Any:
    """Stand-in only: run `cmd` as a request from Desk would (form values as strings, like the
    browser sends them), then put the request back."""
    saved = (getattr(frappe.local, "request", None), getattr(frappe.local, "form_dict", None))
    frappe.local.request = SimpleNamespace(method=http_method)
    frappe.local.form_dict = frappe._dict({k: v if v is None or isinstance(v, str) else str(v) for k, v in form.items()})
    try:
        return execute_cmd(cmd)
    finally:
        frappe.local.request, frappe.local.form_dict = saved
