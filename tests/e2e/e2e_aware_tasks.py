"""A task class derived from the BTU app's BTU_AWARE_FUNCTION (importable only where the stand-in
BTU app is)."""

from __future__ import annotations

from typing import Any

from btu.btu_core.doctype.btu_task.btu_task import BTU_AWARE_FUNCTION
from e2e_tasks import record


class AwareRecorder(BTU_AWARE_FUNCTION):
    def run(self, marker_dir: str, **kwargs: Any) -> str:
        return record(marker_dir, btu_task_id=self.btu_task_id, aware=True, **kwargs)
