"""The stand-in frappe enforces what Frappe v15 enforces where btu_hooks meets it: get_attr and
installed apps, hooks cached until clear-cache, override_doctype_class, controllers found through
the DocType's module and app, child tables."""

from __future__ import annotations

import json
from pathlib import Path

import frappe
import pytest
from btu_hooks_testutil import SITE, add_recipient, set_installed_apps
from btu_testdb import TestDatabase
from frappe.utils.background_jobs import execute_job


def connect() -> None:
    frappe.init(SITE)
    frappe.connect()


def restart() -> None:
    """A new process (bench restart): nothing of the previous frappe.init is kept but Redis."""
    frappe.destroy()
    connect()


def bench_clear_cache() -> None:
    """`bench --site SITE clear-cache` (its own process); it re-caches the hooks of the apps
    installed at that moment, as Frappe's clear_cache ends by reading the clear_cache hooks."""
    restart()
    frappe.clear_cache()
    restart()


def test_installed_apps_are_the_global_default(site: str, testdb: TestDatabase) -> None:
    assert frappe.get_installed_apps() == ["frappe", "btu", "btu_hooks"]
    [row] = testdb.query("SELECT parent, parentfield, parenttype, defvalue FROM tabDefaultValue WHERE defkey = 'installed_apps'")
    assert row["parent"] == "__global" and json.loads(row["defvalue"]) == ["frappe", "btu", "btu_hooks"]


def test_get_attr_refuses_a_module_of_an_app_not_installed(site: str) -> None:
    assert callable(frappe.get_attr("btu_hooks.runner.run_task"))
    with pytest.raises(frappe.AppNotInstalledError, match="App btu_hooks_testtasks is not installed"):
        frappe.get_attr("btu_hooks_testtasks.say_hello")


def test_a_job_of_an_app_not_installed_fails_before_it_runs(sites: Path, testdb: TestDatabase) -> None:
    """The issue's first row: btu_hooks on the bench but not installed on the site."""
    set_installed_apps(testdb, ["frappe", "btu"])
    with pytest.raises(frappe.AppNotInstalledError, match="App btu_hooks is not installed"):
        execute_job(site=SITE, method="btu_hooks.runner.run_task", event=None, job_name="x",
                    kwargs={"task": "BTU-00001", "schedule": "TS-000001"}, user="Administrator")
    assert testdb.query("SELECT name FROM `tabBTU Task Log`") == []


def test_hooks_are_cached_in_redis_until_clear_cache(sites: Path, testdb: TestDatabase) -> None:
    set_installed_apps(testdb, ["frappe", "btu"])
    bench_clear_cache()
    assert "BTU Task Schedule" not in frappe.get_hooks("doc_events")
    # btu_hooks added to the site without clearing the cache: restarts change nothing ...
    set_installed_apps(testdb, ["frappe", "btu", "btu_hooks"])
    restart()
    assert frappe.get_installed_apps() == ["frappe", "btu", "btu_hooks"]
    assert "BTU Task Schedule" not in frappe.get_hooks("doc_events")
    assert frappe.cache.get(f"{frappe.conf.db_name}|app_hooks") is not None
    # ... until `bench clear-cache`
    bench_clear_cache()
    assert frappe.get_hooks("doc_events")["BTU Task Schedule"]["on_update"] == ["btu_hooks.doc_events.schedule_changed"]
    assert frappe.get_hooks("override_doctype_class") == {"BTU Task Schedule": ["btu_hooks.task_schedule.BTUTaskSchedule"]}


def test_install_app_adds_the_app_and_clears_the_cache(sites: Path, testdb: TestDatabase) -> None:
    from frappe.installer import install_app

    set_installed_apps(testdb, ["frappe", "btu"])
    (sites / "apps.txt").write_text("frappe\nbtu\n", encoding="utf-8")
    bench_clear_cache()
    assert frappe.get_hooks("app_name") == ["frappe", "btu"]
    with pytest.raises(Exception, match="App btu_hooks not in apps.txt"):  # not on the bench yet
        install_app("btu_hooks")
    (sites / "apps.txt").write_text("frappe\nbtu\nbtu_hooks\n", encoding="utf-8")
    bench_clear_cache()
    install_app("btu_hooks")
    restart()
    assert frappe.get_installed_apps() == ["frappe", "btu", "btu_hooks"]
    assert frappe.get_hooks("app_name") == ["frappe", "btu", "btu_hooks"]


def test_controllers_come_from_the_doctypes_app_or_an_override(sites: Path, testdb: TestDatabase) -> None:
    from btu.btu_core.doctype.btu_task_log.btu_task_log import BTUTaskLog
    from btu.btu_core.doctype.btu_task_schedule.btu_task_schedule import BTUTaskSchedule as AppSchedule
    from btu_hooks.task_schedule import BTUTaskSchedule as HooksSchedule

    connect()
    assert type(frappe.new_doc("BTU Task Log")) is BTUTaskLog  # module BTU_Core -> app btu
    assert type(frappe.get_doc("BTU Task Schedule", "TS-000001")) is HooksSchedule  # btu_hooks' override
    assert issubclass(HooksSchedule, AppSchedule)
    set_installed_apps(testdb, ["frappe", "btu"])
    bench_clear_cache()
    assert type(frappe.get_doc("BTU Task Schedule", "TS-000001")) is AppSchedule


def test_without_the_app_on_the_bench_documents_are_plain(without_btu_app: Path) -> None:
    from frappe.model.document import Document

    connect()
    assert type(frappe.new_doc("BTU Task Log")) is Document


def test_child_tables_are_loaded_saved_and_pruned(site: str, testdb: TestDatabase, fake_client: object) -> None:
    add_recipient(testdb, "TS-000002", "ops@example.com", start=1)
    doc = frappe.get_doc("BTU Task Schedule", "TS-000002")
    assert [(r.email_address, r.email_on_start, r.email_on_error, r.idx) for r in doc.email_recipients] == [
        ("ops@example.com", 1, 1, 1)]
    doc.append("email_recipients", {"email_address": "boss@example.com", "email_on_success": 1})
    doc.save()
    frappe.db.commit()
    rows = testdb.query("SELECT email_address, email_on_success, email_on_error, idx, parent, parentfield, parenttype"
                        " FROM `tabBTU Email Recipient` ORDER BY idx")
    assert rows == [
        {"email_address": "ops@example.com", "email_on_success": 0, "email_on_error": 1, "idx": 1, "parent": "TS-000002",
         "parentfield": "email_recipients", "parenttype": "BTU Task Schedule"},
        {"email_address": "boss@example.com", "email_on_success": 1, "email_on_error": 1, "idx": 2, "parent": "TS-000002",
         "parentfield": "email_recipients", "parenttype": "BTU Task Schedule"},
    ]
    doc = frappe.get_doc("BTU Task Schedule", "TS-000002")
    doc.email_recipients = doc.email_recipients[1:]
    doc.save()
    frappe.delete_doc("BTU Task Schedule", "TS-000001")
    frappe.db.commit()
    assert [r["email_address"] for r in testdb.query("SELECT email_address FROM `tabBTU Email Recipient`")] == ["boss@example.com"]
