"""BTU Task controller (the parts a run needs) and the base class of BTU-aware task classes.

Not reproduced: validate() (the app imports the task's module there, so saving a task whose module
is not importable fails), run_task_on_webserver and push_task_into_queue."""

from __future__ import annotations

import ast
from typing import Any

from frappe.model.document import Document


class BTU_AWARE_FUNCTION:  # noqa: N801  # the app's name
    """Base of task classes the runner makes with the task's name and then calls run(**kwargs) on."""

    def __init__(self, btu_task_id: str) -> None:
        self.btu_task_id = btu_task_id
        self.btu_task_schedule_id: str | None = None


class BTUTask(Document):
    def before_save(self) -> None:
        if self.arguments:  # curly double quotes typed in the form become plain ones
            self.arguments = self.arguments.replace("\u201c", '"').replace("\u201d", '"')

    def built_in_arguments(self) -> dict[str, Any] | None:
        return ast.literal_eval(self.arguments) if self.arguments else None
