"""The Custom Fields btu_hooks adds to "BTU Task Schedule": the per-schedule policies btu-daemon
reads (optional columns of `tabBTU Task Schedule`, issue 9) and the form's read-only section of
upcoming runs and outcomes.

Created the way Frappe v15 apps ship fields on another app's DocType: `create_custom_fields`
from the `after_install` and `after_migrate` hooks (idempotent: a field that exists is updated
to this definition, none is duplicated). Frappe adds each field's column with ALTER TABLE
(`frappe.db.updatedb`), which is where the daemon finds them.

`before_uninstall` deletes the Custom Field records, so the form no longer shows settings that
only btu-daemon understands. Frappe never drops a column when its Custom Field goes: the columns
and their values stay in the table (a reinstall shows them again); the docs say how to drop them.
"""

from __future__ import annotations

from typing import Any

import frappe

SCHEDULE_DOCTYPE = "BTU Task Schedule"
MODULE = "BTU Hooks"  # btu_hooks/modules.txt: uninstall-app also deletes records linked to it

# (fieldname, allowed values) of the Select policies; "" = the daemon's default (first value).
POLICY_OPTIONS: dict[str, tuple[str, ...]] = {
    "overlap_policy": ("allow", "skip", "replace"),
    "catchup_policy": ("latest", "all", "none"),
    "dst_gap": ("shift", "skip"),
    "dst_overlap": ("auto", "first", "last", "both"),
}
POLICY_FIELDS = ("overlap_policy", "catchup_policy", "jitter_secs", "dst_gap", "dst_overlap")
RUNS_HTML_FIELD = "btu_runs_html"


def _select(fieldname: str, label: str, insert_after: str, description: str) -> dict[str, Any]:
    values = POLICY_OPTIONS[fieldname]
    return {
        "fieldname": fieldname, "label": label, "fieldtype": "Select", "insert_after": insert_after,
        "options": "\n" + "\n".join(values),  # the first, empty option = the daemon's default
        "description": f"{description} Empty: the daemon's default ({values[0]} unless its config says otherwise).",
    }


def schedule_custom_fields() -> list[dict[str, Any]]:
    """The fields, in form order: after the schedule's own fields (`minute` ends them)."""
    fields: list[dict[str, Any]] = [
        {"fieldname": "btu_policies_section", "label": "Scheduler Policies (btu-daemon)",
         "fieldtype": "Section Break", "insert_after": "minute", "collapsible": 1},
        _select("overlap_policy", "Overlap", "btu_policies_section",
                "When a run is due while the previous run's job is still queued or running: allow it, "
                "skip the new run, or replace a still-queued job (a started one finishes)."),
        _select("catchup_policy", "Catch-up", "overlap_policy",
                "Runs missed while the daemon was down (within its grace period): run the latest, all, or none."),
        {"fieldname": "jitter_secs", "label": "Jitter (seconds)", "fieldtype": "Int", "insert_after": "catchup_policy",
         "non_negative": 1,
         "description": "Each run is enqueued up to this many seconds after its due time (the same delay on "
                        "every daemon); 0 = at the due time. Unlike the other settings this one always "
                        "overrides the daemon's default: Frappe stores an empty Int as 0."},
        {"fieldname": "btu_policies_column", "fieldtype": "Column Break", "insert_after": "jitter_secs"},
        _select("dst_gap", "DST gap", "btu_policies_column",
                "A fixed-time run whose wall time does not exist on the spring-forward day: shift it "
                "to the first valid time, or skip it."),
        _select("dst_overlap", "DST overlap", "dst_gap",
                "A wall time that happens twice on the fall-back day: auto (fixed times once, wildcard "
                "fields both times), first, last or both."),
        {"fieldname": "btu_runs_section", "label": "Upcoming Runs and Outcomes (btu-daemon)",
         "fieldtype": "Section Break", "insert_after": "dst_overlap"},
        {"fieldname": RUNS_HTML_FIELD, "label": "Runs", "fieldtype": "HTML", "insert_after": "btu_runs_section",
         "options": '<div class="text-muted">Loaded from btu-daemon when the form opens.</div>'},
    ]
    for field in fields:
        field["module"] = MODULE
    return fields


def ensure_custom_fields() -> None:
    """after_install / after_migrate: create or update the fields (and their columns)."""
    from frappe.custom.doctype.custom_field.custom_field import create_custom_fields

    create_custom_fields({SCHEDULE_DOCTYPE: schedule_custom_fields()}, update=True)


def remove_custom_fields() -> None:
    """before_uninstall: delete the Custom Field records (the columns and values stay)."""
    names = frappe.get_all("Custom Field", filters={"dt": SCHEDULE_DOCTYPE,
                                                    "fieldname": ["in", [f["fieldname"] for f in schedule_custom_fields()]]},
                           pluck="name")
    for name in names:
        frappe.delete_doc("Custom Field", name, ignore_permissions=True, force=True)
    frappe.clear_cache(doctype=SCHEDULE_DOCTYPE)
