"""The policy Custom Fields btu_hooks ships on BTU Task Schedule: created by install-app (and
migrate), idempotent, their columns added with ALTER TABLE as Frappe does (so the daemon reads
them), their records removed on uninstall with the columns and values left in place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import frappe
import pytest
from btu_hooks_testutil import SITE, set_installed_apps
from btu_testdb import TestDatabase

import btu_hooks.custom_fields as cf

POLICY_COLUMNS = {  # what Frappe v15 creates on MariaDB for these field types
    "overlap_policy": ("varchar(140)", "YES", None),
    "catchup_policy": ("varchar(140)", "YES", None),
    "jitter_secs": ("int(11)", "NO", "0"),
    "dst_gap": ("varchar(140)", "YES", None),
    "dst_overlap": ("varchar(140)", "YES", None),
}


def columns(testdb: TestDatabase) -> dict[str, tuple[str, str, Any]]:
    rows = testdb.query("SHOW COLUMNS FROM `tabBTU Task Schedule`")
    return {r["Field"]: (r["Type"], r["Null"], r["Default"]) for r in rows}


def custom_fields(testdb: TestDatabase) -> list[dict[str, Any]]:
    return testdb.query("SELECT name, fieldname, fieldtype, options, insert_after, module, description"
                        " FROM `tabCustom Field` WHERE dt = 'BTU Task Schedule' ORDER BY name")


@pytest.fixture
def without_hooks(sites: Path, testdb: TestDatabase) -> Path:
    """The site before `bench --site SITE install-app btu_hooks`."""
    set_installed_apps(testdb, ["frappe", "btu"])
    frappe.init(SITE)
    frappe.connect()
    frappe.clear_cache()
    frappe.destroy()
    return sites


def install_hooks() -> None:
    from frappe.installer import install_app

    frappe.init(SITE)
    frappe.connect()
    install_app("btu_hooks")
    frappe.db.commit()
    frappe.destroy()


def test_install_app_creates_the_fields_and_their_columns(without_hooks: Path, testdb: TestDatabase) -> None:
    assert not set(POLICY_COLUMNS) & set(columns(testdb))
    install_hooks()

    cols = columns(testdb)
    for name, expected in POLICY_COLUMNS.items():
        assert cols[name] == expected, name
    # Section/column breaks and the HTML field of the runs section have no column, as in Frappe.
    assert not {"btu_policies_section", "btu_policies_column", "btu_runs_section", cf.RUNS_HTML_FIELD} & set(cols)

    fields = {f["fieldname"]: f for f in custom_fields(testdb)}
    assert set(fields) == {f["fieldname"] for f in cf.schedule_custom_fields()}
    assert fields["overlap_policy"]["name"] == "BTU Task Schedule-overlap_policy"
    assert fields["overlap_policy"]["options"] == "\nallow\nskip\nreplace"  # empty first: the daemon's default
    assert fields["catchup_policy"]["options"] == "\nlatest\nall\nnone"
    assert fields["dst_gap"]["options"] == "\nshift\nskip"
    assert fields["dst_overlap"]["options"] == "\nauto\nfirst\nlast\nboth"
    assert fields["jitter_secs"]["fieldtype"] == "Int"
    assert fields[cf.RUNS_HTML_FIELD]["fieldtype"] == "HTML"
    assert {f["module"] for f in fields.values()} == {"BTU Hooks"}


def test_the_fields_are_idempotent_and_migrate_restores_their_definition(without_hooks: Path,
                                                                         testdb: TestDatabase) -> None:
    install_hooks()
    before = custom_fields(testdb)
    testdb.query("UPDATE `tabCustom Field` SET description = 'edited by hand' WHERE fieldname = 'dst_gap'")

    frappe.init(SITE)
    frappe.connect()
    for fn in frappe.get_hooks("after_migrate"):  # what `bench migrate` runs at its end
        frappe.get_attr(fn)()
    cf.ensure_custom_fields()  # and once more: nothing doubles
    frappe.db.commit()
    frappe.destroy()

    assert custom_fields(testdb) == before
    assert list(columns(testdb)).count("dst_gap") == 1


def test_saved_policies_are_in_the_columns_the_daemon_reads(sites: Path, testdb: TestDatabase) -> None:
    frappe.init(SITE)
    frappe.connect()
    cf.ensure_custom_fields()
    doc = frappe.get_doc("BTU Task Schedule", "TS-000002")
    doc.update({"overlap_policy": "skip", "catchup_policy": "all", "jitter_secs": 30, "dst_gap": "skip",
                "dst_overlap": "both"})
    doc.save()
    frappe.db.commit()
    frappe.destroy()

    rows = testdb.query("SELECT name, overlap_policy, catchup_policy, jitter_secs, dst_gap, dst_overlap"
                        " FROM `tabBTU Task Schedule` WHERE name IN ('TS-000001', 'TS-000002') ORDER BY name")
    # Untouched rows read as the daemon's defaults: NULL for the Selects, 0 for the Int.
    assert rows[0] == {"name": "TS-000001", "overlap_policy": None, "catchup_policy": None, "jitter_secs": 0,
                       "dst_gap": None, "dst_overlap": None}
    assert rows[1] == {"name": "TS-000002", "overlap_policy": "skip", "catchup_policy": "all", "jitter_secs": 30,
                       "dst_gap": "skip", "dst_overlap": "both"}


def test_uninstall_removes_the_fields_but_keeps_columns_and_values(sites: Path, testdb: TestDatabase) -> None:
    from frappe.installer import remove_app

    frappe.init(SITE)
    frappe.connect()
    cf.ensure_custom_fields()
    frappe.db.set_value("BTU Task Schedule", "TS-000001", "overlap_policy", "replace")
    frappe.db.commit()
    remove_app("btu_hooks", yes=True)
    frappe.destroy()

    assert custom_fields(testdb) == []
    assert testdb.query("SELECT overlap_policy FROM `tabBTU Task Schedule` WHERE name = 'TS-000001'") == [
        {"overlap_policy": "replace"}]
    assert "btu_hooks" not in testdb.query(
        "SELECT defvalue FROM tabDefaultValue WHERE defkey = 'installed_apps'")[0]["defvalue"]

    install_hooks()  # a reinstall shows them again, with the values kept
    assert len(custom_fields(testdb)) == len(cf.schedule_custom_fields())
    assert testdb.query("SELECT overlap_policy FROM `tabBTU Task Schedule` WHERE name = 'TS-000001'") == [
        {"overlap_policy": "replace"}]


def test_hooks_name_the_form_script_and_the_field_hooks(site: str) -> None:
    hooks = frappe.get_hooks()
    assert hooks["after_install"] == ["btu_hooks.custom_fields.ensure_custom_fields"]
    assert hooks["after_migrate"] == ["btu_hooks.custom_fields.ensure_custom_fields"]
    assert hooks["before_uninstall"] == ["btu_hooks.custom_fields.remove_custom_fields"]
    (script,) = hooks["doctype_js"]["BTU Task Schedule"]
    path = Path(frappe.get_app_path("btu_hooks", script))  # Frappe reads doctype_js from the app's package
    text = path.read_text(encoding="utf-8")
    for method in ("pause", "resume", "skip_next", "run_now", "backfill", "overview"):
        assert f'"{method}"' in text, method
    assert cf.RUNS_HTML_FIELD in text
