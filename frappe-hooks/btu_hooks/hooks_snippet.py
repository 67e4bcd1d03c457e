"""The doc_events to paste into the BTU app's hooks.py (merge with any doc_events it already has).

This module is also what the tests load as the app's hooks, so the documented snippet is the
tested one.
"""

from __future__ import annotations

_H = "btu_hooks.doc_events"

doc_events: dict[str, dict[str, str]] = {
    "BTU Task Schedule": {
        "after_insert": f"{_H}.schedule_changed",
        "on_update": f"{_H}.schedule_changed",
        "on_trash": f"{_H}.schedule_deleted",
    },
    "BTU Task": {
        "on_update": f"{_H}.task_changed",
        "on_update_after_submit": f"{_H}.task_changed",
        "on_submit": f"{_H}.task_changed",
        "on_cancel": f"{_H}.task_changed",
        "on_trash": f"{_H}.task_changed",
    },
    "BTU Configuration": {
        "on_update": f"{_H}.configuration_changed",
    },
}
