"""A task's keyword arguments: the BTU Task's `arguments` and the schedule's `argument_overrides`
are Python dict literals (read with ast.literal_eval, as the BTU app does); the schedule's keys win."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

import frappe

from btu_hooks.errors import InvalidArguments

TASK_DOCTYPE = "BTU Task"
SCHEDULE_DOCTYPE = "BTU Task Schedule"


def parse_arguments(text: str | None, where: str) -> dict[str, Any]:
    """A Python dict literal; empty or NULL is {}."""
    if text is None or not str(text).strip():
        return {}
    try:
        value = ast.literal_eval(str(text).strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        raise InvalidArguments(where, f"not a Python literal: {e}") from e
    if not isinstance(value, dict):
        raise InvalidArguments(where, f"expected a dict literal, got {type(value).__name__}")
    check_kwargs(value, where)
    return value


def merged_arguments(task_doc: Any, schedule: str | None) -> dict[str, Any]:
    """The task's arguments, overridden key by key by the schedule's argument_overrides."""
    merged = parse_arguments(task_doc.get("arguments"), f"{TASK_DOCTYPE} {task_doc.name} arguments")
    if schedule:
        overrides = frappe.db.get_value(SCHEDULE_DOCTYPE, schedule, "argument_overrides")
        merged.update(parse_arguments(overrides, f"{SCHEDULE_DOCTYPE} {schedule} argument_overrides"))
    return merged


def check_kwargs(value: Mapping[Any, Any], where: str) -> None:
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        raise InvalidArguments(where, f"keys must be strings (keyword arguments), got {bad!r}")
