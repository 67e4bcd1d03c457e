"""Task classes derived from the BTU app's BTU_AWARE_FUNCTION (import only with the app present)."""

from __future__ import annotations

from typing import Any

from btu.btu_core.doctype.btu_task.btu_task import BTU_AWARE_FUNCTION


class AwareGreeter(BTU_AWARE_FUNCTION):
    made: list[str] = []  # every btu_task_id an instance was made with (the app makes two per run)

    def __init__(self, btu_task_id: str) -> None:
        super().__init__(btu_task_id)
        AwareGreeter.made.append(btu_task_id)

    def run(self, name: str = "world", **kwargs: Any) -> str:
        print(f"{self.btu_task_id} greets {name} with {sorted(kwargs)}")
        return f"greeted {name} as {self.btu_task_id}"
