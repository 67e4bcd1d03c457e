"""Errors of btu_hooks. The runner records them in the BTU Task Log row, then raises them so
RQ marks the job failed."""

from __future__ import annotations


class BtuHooksError(Exception):
    """Base class of every btu_hooks error."""


class ClientNotInstalled(BtuHooksError):
    """The btu_client wheel is not importable in this Python environment."""


class TaskNotFound(BtuHooksError):
    def __init__(self, task: str) -> None:
        super().__init__(f"BTU Task {task} not found")
        self.task = task


class TaskCancelled(BtuHooksError):
    def __init__(self, task: str) -> None:
        super().__init__(f"BTU Task {task} is cancelled (docstatus 2): not run")
        self.task = task


class TaskFunctionNotFound(BtuHooksError):
    def __init__(self, task: str, function_string: str | None, reason: str) -> None:
        super().__init__(f"BTU Task {task}: function_string {function_string!r} cannot be resolved: {reason}")
        self.task = task
        self.function_string = function_string


class InvalidArguments(BtuHooksError):
    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where


class TaskRunFailed(BtuHooksError):
    """The BTU app's TaskRunner recorded the run as Failed or Timeout (it never raises itself);
    raised so that RQ marks the job failed too."""

    def __init__(self, task: str, log: str | None, status: str, message: str | None) -> None:
        super().__init__(f"BTU Task {task}: run {status} (BTU Task Log {log}): {message}")
        self.task = task
        self.log = log
        self.status = status
        self.message = message
