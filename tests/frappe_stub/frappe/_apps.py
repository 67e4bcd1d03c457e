"""Apps, modules, hooks and code loading, as frappe/__init__.py (v15) does them.

- The bench's apps are `sites/apps.txt` (plus `<site>/apps.txt`), frappe first (get_all_apps).
- The site's *installed* apps are the global default `installed_apps` (tabDefaultValue, parent
  `__global`, a JSON list), read once per frappe.init (real Frappe: per request).
- Hooks are the public, non-module/function/class variables of each installed app's `hooks.py`
  (apps also on the bench), merged with append_hook, and CACHED in Redis under
  `<db_name>|app_hooks` until frappe.clear_cache() (`bench clear-cache`) deletes the site's keys.
- get_attr refuses a dotted path whose top-level package is not an installed app.
- module_app: each app's modules.txt, scrubbed, maps a DocType module to its app.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import types
from collections.abc import Callable
from typing import Any

import frappe
from frappe import _dict, local


def scrub(txt: str) -> str:
    """`Sales Order` -> `sales_order`."""
    return str(txt or "").replace(" ", "_").replace("-", "_").lower()


def get_module(modulename: str) -> Any:
    return importlib.import_module(modulename)


def get_app_path(app_name: str, *joins: str) -> str:
    return os.path.abspath(os.path.join(os.path.dirname(get_module(scrub(app_name)).__file__ or ""), *joins))


def get_file_items(path: str, raise_not_found: bool = False) -> list[str]:
    """Non-empty, non-comment lines of a text file."""
    if not os.path.exists(path):
        if raise_not_found:
            raise OSError(f"{path} Not Found")
        return []
    with open(path, encoding="utf-8") as f:
        return [p.strip() for p in f.read().strip().splitlines() if p.strip() and not p.startswith("#")]


def get_module_list(app_name: str) -> list[str]:
    return get_file_items(get_app_path(app_name, "modules.txt"))


def get_all_apps(with_internal_apps: bool = True, sites_path: str | None = None) -> list[str]:
    """The apps of the bench: sites/apps.txt (must exist), frappe first."""
    apps = get_file_items(os.path.join(sites_path or local.sites_path, "apps.txt"), raise_not_found=True)
    if with_internal_apps:
        for app in get_file_items(os.path.join(local.site_path, "apps.txt")):
            if app not in apps:
                apps.append(app)
    if "frappe" in apps:
        apps.remove("frappe")
    apps.insert(0, "frappe")
    return apps


def get_installed_apps(*, _ensure_on_bench: bool = False) -> list[str]:
    """The apps installed on the current site (global default `installed_apps`)."""
    if getattr(local.flags, "in_install_db", True):
        return []
    if not getattr(local, "db", None):
        frappe.connect()
    if local.installed_apps is None:
        local.installed_apps = json.loads(local.db.get_global("installed_apps") or "[]")
    installed = list(local.installed_apps)
    if _ensure_on_bench:
        all_apps = frappe.cache.get_value("all_apps", get_all_apps)
        installed = [app for app in installed if app in all_apps]
    return installed


def setup_module_map() -> None:
    """local.module_app: scrubbed module name -> app, from every bench app's modules.txt."""
    local.module_app = {}
    for app in get_all_apps(with_internal_apps=True):
        for module in get_module_list(app):
            local.module_app[scrub(module)] = app


# --- hooks ---------------------------------------------------------------------------------------
def append_hook(target: dict[str, Any], key: str, value: Any) -> None:
    """Dict hooks merge key by key into lists; other hooks become lists."""
    if isinstance(value, dict):
        target.setdefault(key, {})
        for inkey in value:
            append_hook(target[key], inkey, value[inkey])
    else:
        target.setdefault(key, [])
        target[key].extend(value if isinstance(value, list) else [value])


def _load_app_hooks(app_name: str | None = None) -> dict[str, Any]:
    hooks: dict[str, Any] = {}
    apps = [app_name] if app_name else get_installed_apps(_ensure_on_bench=True)
    for app in apps:
        app_hooks = get_module(f"{app}.hooks")
        for key, value in inspect.getmembers(
            app_hooks, predicate=lambda o: not isinstance(o, types.ModuleType | types.FunctionType | type)
        ):
            if not key.startswith("_"):
                append_hook(hooks, key, value)
    return hooks


def get_hooks(hook: str | None = None, default: Any = "_KEEP_DEFAULT_LIST", app_name: str | None = None) -> Any:
    """All hooks (or one) of the installed apps; cached in Redis until clear_cache()."""
    if app_name:
        hooks = _dict(_load_app_hooks(app_name))
    elif local.conf.developer_mode:
        hooks = _dict(_load_app_hooks())
    else:
        hooks = _dict(frappe.cache.get_value("app_hooks", _load_app_hooks))
    if hook:
        return hooks.get(hook, [] if default == "_KEEP_DEFAULT_LIST" else default)
    return hooks


def get_doc_hooks() -> dict[str, Any]:
    """doc_events of the installed apps, kept for the rest of this frappe.init."""
    if getattr(local, "doc_events_hooks", None) is None:
        out: dict[str, Any] = {}
        for key, value in get_hooks("doc_events", {}).items():
            for doctype in key if isinstance(key, tuple) else (key,):
                append_hook(out, doctype, value)
        local.doc_events_hooks = out
    return local.doc_events_hooks


# --- code loading --------------------------------------------------------------------------------
def get_attr(method_string: str) -> Any:
    """Python object from its dotted path; its top-level package must be an installed app."""
    app_name = method_string.split(".", 1)[0]
    if not local.flags.in_uninstall and not local.flags.in_install and app_name not in get_installed_apps():
        frappe.throw(f"App {app_name} is not installed", frappe.AppNotInstalledError)
    modulename = ".".join(method_string.split(".")[:-1])
    methodname = method_string.split(".")[-1]
    return getattr(get_module(modulename), methodname)


def get_newargs(fn: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments `fn` accepts (all of them if it takes **kwargs)."""
    params = inspect.signature(fn).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return dict(kwargs)
    return {k: v for k, v in kwargs.items() if k in params}


def call(fn: str | Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    if isinstance(fn, str):
        fn = get_attr(fn)
    return fn(*args, **get_newargs(fn, kwargs))


# --- cache ---------------------------------------------------------------------------------------
def clear_cache(user: str | None = None, doctype: str | None = None) -> None:
    """Everything: delete the site's Redis keys (hooks, apps...), reset the per-init caches and
    run the `clear_cache` hooks (what `bench --site S clear-cache` does). As in Frappe, the
    doc_events and controllers already loaded stay (until the next frappe.init here; until the
    process restarts in real Frappe)."""
    if doctype or user:
        return  # the stand-in caches nothing per DocType or user
    frappe.cache.delete_value(frappe.cache.get_keys(""), make_keys=False)
    local.cache = {}
    local.installed_apps = None
    local.system_settings = None
    for fn in get_hooks("clear_cache"):
        get_attr(fn)()
