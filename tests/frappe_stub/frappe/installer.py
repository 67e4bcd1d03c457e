"""`bench --site SITE install-app APP` / `uninstall-app` as far as the stand-in goes
(frappe/installer.py, v15): the app must be on the bench (sites/apps.txt); its hooks.py is
loaded; before_install / after_install hooks run; the app is appended to the global default
`installed_apps`; the cache is cleared before and after. `remove_app` runs the app's
before_uninstall hooks, removes it from `installed_apps` and runs after_uninstall. DocTypes,
Module Defs (and the records linked to them), patches and fixtures are not synced or deleted
(the tables come from tests/sql/schema.sql)."""

from __future__ import annotations

import json

import frappe


def install_app(name: str, verbose: bool = False, set_as_patched: bool = True, force: bool = False) -> None:
    frappe.flags.in_install = name
    frappe.clear_cache()
    try:
        app_hooks = frappe.get_hooks(app_name=name)
        if name not in frappe.get_all_apps():
            raise Exception(f"App {name} not in apps.txt")
        if not force and name in frappe.get_installed_apps():
            return
        for before_install in app_hooks.before_install or []:
            if frappe.get_attr(before_install)() is False:
                return
        add_to_installed_apps(name)
        for after_install in app_hooks.after_install or []:
            frappe.get_attr(after_install)()
    finally:
        frappe.flags.in_install = False
    frappe.clear_cache()


def remove_app(app_name: str, dry_run: bool = False, yes: bool = False, no_backup: bool = False,
               force: bool = False) -> None:
    app_hooks = frappe.get_hooks(app_name=app_name)
    if not force and app_name not in frappe.get_installed_apps():
        return
    frappe.flags.in_uninstall = True
    try:
        for before_uninstall in app_hooks.before_uninstall or []:
            frappe.get_attr(before_uninstall)()
        if not dry_run:
            remove_from_installed_apps(app_name)
            frappe.db.commit()
        for after_uninstall in app_hooks.after_uninstall or []:
            frappe.get_attr(after_uninstall)()
    finally:
        frappe.flags.in_uninstall = False
    frappe.clear_cache()


def add_to_installed_apps(app_name: str) -> None:
    installed = frappe.get_installed_apps()
    if app_name not in installed:
        installed.append(app_name)
        frappe.db.set_global("installed_apps", json.dumps(installed))
        frappe.db.commit()
        frappe.local.installed_apps = None


def remove_from_installed_apps(app_name: str) -> None:
    installed = frappe.get_installed_apps()
    if app_name in installed:
        installed.remove(app_name)
        frappe.db.set_global("installed_apps", json.dumps(installed))
        frappe.db.commit()
        frappe.local.installed_apps = None
