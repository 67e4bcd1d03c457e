"""A minimal stand-in for the Frappe framework, for tests only.

It mirrors the signatures and the observable behaviour of the Frappe v15 functions that
btu_hooks, the stand-in BTU app (tests/btu_standin) and the end-to-end tests of the daemon's
Frappe mode use, backed by the real MariaDB tables through PyMySQL and a real Redis for the
cache. It is NOT Frappe: a small DocType metadata table, role permissions only. See
tests/frappe_stub/README.md for what is faithful and what is not.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import traceback as _traceback
from typing import Any

__version__ = "15.0.0-stub"

_log = logging.getLogger("frappe")


class _dict(dict[str, Any]):
    """dict with attribute access, like frappe._dict."""

    def __getattr__(self, key: str) -> Any:
        return self.get(key)

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        self.pop(key, None)


# --- exceptions (the subset used; real ones live in frappe.exceptions) -------------------------
class ValidationError(Exception):
    http_status_code = 417


class DoesNotExistError(ValidationError):
    http_status_code = 404


class DuplicateEntryError(ValidationError):
    pass


class AppNotInstalledError(ValidationError):
    pass


class MandatoryError(ValidationError):
    pass


class AuthenticationError(Exception):
    http_status_code = 401


class RetryBackgroundJobError(Exception):
    pass


class PermissionError(Exception):  # noqa: A001  # frappe.PermissionError shadows the builtin, as in Frappe
    http_status_code = 403


# --- thread-local state and proxies (real Frappe: werkzeug Local + LocalProxy) -----------------
local = threading.local()


class _LocalProxy:
    """Forwards attribute access to an attribute of `local`, like werkzeug's LocalProxy."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def _target(self) -> Any:
        try:
            return getattr(local, self._name)
        except AttributeError:
            raise RuntimeError(f"frappe.{self._name} is not bound: call frappe.init() first") from None

    def __getattr__(self, key: str) -> Any:
        return getattr(self._target(), key)

    def __setattr__(self, key: str, value: Any) -> None:
        setattr(self._target(), key, value)

    def __bool__(self) -> bool:
        return bool(getattr(local, self._name, None))

    def __repr__(self) -> str:
        return f"<frappe.{self._name} -> {getattr(local, self._name, None)!r}>"


db: Any = _LocalProxy("db")
session: Any = _LocalProxy("session")
flags: Any = _LocalProxy("flags")
conf: Any = _LocalProxy("conf")
request: Any = _LocalProxy("request")
form_dict: Any = _LocalProxy("form_dict")

cache: Any = None
"""The site cache (frappe.utils.redis_wrapper.RedisWrapper on `redis_cache`), set by init()."""
_cache_url: str | None = None


# --- site life cycle ---------------------------------------------------------------------------
def get_site_config(sites_path: str | None = None, site_path: str | None = None) -> _dict:
    """common_site_config.json merged with <site>/site_config.json (the site's keys win)."""
    sites_path = str(sites_path or getattr(local, "sites_path", "."))
    site_path = site_path or getattr(local, "site_path", None)
    config = _dict()
    common = os.path.join(sites_path, "common_site_config.json")
    if os.path.exists(common):
        with open(common, encoding="utf-8") as f:
            config.update(json.load(f))
    if site_path:
        path = os.path.join(site_path, "site_config.json")
        if not os.path.exists(path):
            raise IncorrectSitePath(f"{path} does not exist")
        with open(path, encoding="utf-8") as f:
            config.update(json.load(f))
    return config


class IncorrectSitePath(DoesNotExistError):
    pass


def init(site: str, sites_path: str = ".", new_site: bool = False, force: bool = False) -> None:
    """Initialise the thread-local state for `site` (reads its site_config.json, connects the
    cache, builds the module map from the bench's apps)."""
    global cache, _cache_url
    if getattr(local, "initialised", None) and not force:
        return
    local.site = site
    local.sites_path = sites_path
    local.site_path = os.path.join(sites_path, site)
    local.conf = get_site_config()
    local.flags = _dict(currently_saving=[], in_install_db=False, in_install_app=False, in_install=False,
                        in_uninstall=False, in_test=False, ignore_links=False, new_site=new_site)
    local.session = _dict(user="Guest")
    local.message_log = []
    local.form_dict = _dict()
    local.realtime_log = []
    local.error_log = []  # stand-in for the Error Log DocType (see log_error)
    local.request = None
    local.job = None
    local.db = None
    local.system_settings = None
    local.cache = {}
    local.installed_apps = None
    local.controllers = {}
    local.doc_events_hooks = None
    from frappe.utils.redis_wrapper import setup_cache

    if cache is None or _cache_url != local.conf.get("redis_cache"):
        _cache_url = local.conf.get("redis_cache")
        cache = setup_cache(_cache_url)
    local.initialised = True
    setup_module_map()


def connect(site: str | None = None, db_name: str | None = None, set_admin_as_user: bool = True) -> None:
    """Open the site's database connection as frappe.db."""
    from frappe.database import Database

    if site:
        init(site)
    c = local.conf
    local.db = Database(
        host=c.get("db_host") or "127.0.0.1",
        port=int(c.get("db_port") or 3306),
        user=c.get("db_user") or db_name or c.get("db_name"),  # Frappe: the DB user is named like the DB
        password=c.get("db_password") or "",
        cur_db_name=db_name or c.get("db_name"),
    )
    if set_admin_as_user:
        set_user("Administrator")


def destroy() -> None:
    """Close the connection and drop every thread-local attribute."""
    if getattr(local, "db", None):
        local.db.close()
    local.__dict__.clear()


def set_user(username: str) -> None:
    local.session.user = username
    local.session.sid = username


# --- messages, errors, realtime ----------------------------------------------------------------
def msgprint(
    msg: str,
    title: str | None = None,
    raise_exception: bool | type[Exception] = False,
    as_table: bool = False,
    as_list: bool = False,
    indicator: str | None = None,
    alert: bool = False,
    primary_action: str | None = None,
    is_minimizable: bool | None = None,
    wide: bool | None = None,
) -> None:
    """Queue a message for the HTTP response (local.message_log holds dicts, as in v15; real
    Frappe serialises them to JSON only when it builds the response)."""
    out = _dict(message=msg, title=title or "Message")
    if indicator or raise_exception:
        out.indicator = indicator or "red"
    if alert:
        out.alert = 1
    if raise_exception:
        out.raise_exception = 1
    local.message_log.append(out)
    if raise_exception:
        exc = raise_exception if isinstance(raise_exception, type) else ValidationError
        raise exc(msg)


def get_message_log() -> list[dict[str, Any]]:
    return list(local.message_log)


def clear_messages() -> None:
    local.message_log = []


def _(msg: str, lang: str | None = None, context: str | None = None) -> str:
    """Translation: the stand-in has English only."""
    return msg


whitelisted: list[Any] = []
guest_methods: list[Any] = []
allowed_http_methods_for_whitelisted_func: dict[Any, list[str]] = {}


def whitelist(allow_guest: bool = False, xss_safe: bool = False, methods: list[str] | None = None) -> Any:
    """Marks a function callable over HTTP (frappe.handler.execute_cmd checks it), with the HTTP
    methods allowed (default GET, POST, PUT, DELETE), as in Frappe v15."""
    def decorator(fn: Any) -> Any:
        whitelisted.append(fn)
        allowed_http_methods_for_whitelisted_func[fn] = methods or ["GET", "POST", "PUT", "DELETE"]
        if allow_guest:
            guest_methods.append(fn)
        return fn
    return decorator


def is_whitelisted(method: Any) -> None:
    """Raise PermissionError unless `method` is whitelisted (and allows guests, for Guest)."""
    if method not in whitelisted or (session.user == "Guest" and method not in guest_methods):
        throw(f"Function {getattr(method, '__qualname__', method)} is not whitelisted.", PermissionError,
              title="Method Not Allowed")


def has_permission(doctype: str | None = None, ptype: str = "read", doc: Any = None, user: str | None = None,
                   verbose: bool = False, throw: bool = False, **kwargs: Any) -> bool:
    from frappe.permissions import has_permission as _has_permission

    return _has_permission(doctype, ptype, doc, user, verbose, throw, **kwargs)


def get_roles(username: str | None = None) -> list[str]:
    from frappe.permissions import get_roles as _get_roles

    return _get_roles(username)


def throw(msg: str, exc: type[Exception] = ValidationError, title: str | None = None, **_kw: Any) -> None:
    msgprint(msg, raise_exception=exc, title=title, indicator="red")


def get_traceback(with_context: bool = False) -> str:
    return _traceback.format_exc()


def log_error(
    title: str | None = None,
    message: str | None = None,
    reference_doctype: str | None = None,
    reference_name: str | None = None,
    *,
    defer_insert: bool = False,
) -> _dict:
    """Record an error. Real Frappe inserts an Error Log document; the stand-in keeps it in
    local.error_log (the shared schema has no tabError Log) and logs it."""
    entry = _dict(
        method=title or "Error",
        error=message or get_traceback(),
        reference_doctype=reference_doctype,
        reference_name=reference_name,
    )
    local.error_log.append(entry)
    _log.error("%s: %s", entry.method, entry.error)
    return entry


def publish_realtime(
    event: str | None = None,
    message: Any = None,
    room: str | None = None,
    user: str | None = None,
    doctype: str | None = None,
    docname: str | None = None,
    task_id: str | None = None,
    after_commit: bool = False,
) -> None:
    """Real Frappe emits through Redis to socket.io; the stand-in records the event."""
    local.realtime_log.append(_dict(event=event, message=message, room=room, user=user))


def logger(module: str | None = None, **_kw: Any) -> logging.Logger:
    return logging.getLogger(module or "frappe")


# --- apps, hooks, code loading (frappe/_apps.py) ------------------------------------------------
from frappe._apps import (  # noqa: E402  # needs the names above
    append_hook,
    call,
    clear_cache,
    get_all_apps,
    get_app_path,
    get_attr,
    get_doc_hooks,
    get_file_items,
    get_hooks,
    get_installed_apps,
    get_module,
    get_module_list,
    get_newargs,
    scrub,
    setup_module_map,
)


# --- documents and queries (delegated to frappe.model / frappe.database) -----------------------
def get_doc(*args: Any, **kwargs: Any) -> Any:
    from frappe.model.document import get_doc as _get_doc

    return _get_doc(*args, **kwargs)


def new_doc(doctype: str, *, parent_doc: Any = None, parentfield: str | None = None, as_dict: bool = False, **kwargs: Any) -> Any:
    doc = get_doc({"doctype": doctype, **kwargs})
    return doc.as_dict() if as_dict else doc


def get_single(doctype: str) -> Any:
    return get_doc(doctype, doctype)


def delete_doc(doctype: str | None = None, name: str | None = None, force: bool = False, ignore_permissions: bool = False, **_kw: Any) -> None:
    from frappe.model.document import delete_doc as _delete_doc

    _delete_doc(doctype, name)


def set_value(doctype: str, docname: str, fieldname: str | dict[str, Any], value: Any = None) -> Any:
    """frappe.client.set_value: load the document, change it, save it (hooks run)."""
    doc = get_doc(doctype, docname)
    doc.update(fieldname if isinstance(fieldname, dict) else {fieldname: value})
    return doc.save()


def get_all(doctype: str, *args: Any, **kwargs: Any) -> list[Any]:
    kwargs["ignore_permissions"] = True
    kwargs.setdefault("limit_page_length", 0)
    return get_list(doctype, *args, **kwargs)


def get_list(doctype: str, *args: Any, **kwargs: Any) -> list[Any]:
    from frappe.database import query_list

    return query_list(doctype, *args, **kwargs)


def get_system_settings(key: str) -> Any:
    """A field of the single DocType System Settings (cached per site initialisation)."""
    if not getattr(local, "system_settings", None):
        rows = local.db.sql("SELECT field, value FROM tabSingles WHERE doctype = 'System Settings'")
        local.system_settings = _dict({field: value for field, value in rows})
    return local.system_settings.get(key)
