"""TaskRunner: how the app runs a BTU Task and records it (behaviour of btu 0.8.0).

function_wrapper():
- outside the web server (no `frappe.boot`) it calls frappe.init(site) and frappe.connect() itself
  (inside a Frappe job that opens a second connection and makes it frappe.db);
- imports the task's module with importlib (no installed-app check) and takes the function;
- inserts a BTU Task Log row 'In-Progress' (task_component 'Main') through a document and commits;
- runs the function with the task's arguments merged with the schedule's argument_overrides,
  stdout redirected into a buffer; a class derived from BTU_AWARE_FUNCTION is run as
  cls(task name).run(**arguments);
- whatever the function raises (any Exception, RQ's timeout included) is caught: the run is
  recorded 'Failed' with str(exception), and the output captured so far is lost;
- a return value must be a str, dict or list (or falsy) because it goes through btu.Result;
- finally writes the row's outcome through write_log_for_task (a document save: on_update runs).
It returns None and never raises for a failing task.
"""

from __future__ import annotations

import importlib
import io
import time
import uuid
from contextlib import redirect_stdout
from typing import Any

import frappe


class TaskRunner:
    def __init__(self, btu_task: Any, site_name: str | None, schedule_id: str | None = None,
                 enable_debug_mode: bool = True) -> None:
        from btu.btu_core.doctype.btu_task.btu_task import BTUTask

        if isinstance(btu_task, BTUTask):
            self.btu_task = btu_task
        elif isinstance(btu_task, str):
            self.btu_task = frappe.get_doc("BTU Task", btu_task)
        else:
            raise ValueError("Argument 'btu_task' is not a valid BTU Task Document or string name of a Document.")
        if not site_name and not frappe.local.site:
            raise Exception("TaskRunner requires an argument 'site_name'.")
        self.site_name = site_name or frappe.local.site
        self.schedule_id = schedule_id
        self.debug_mode_enabled = enable_debug_mode
        self.redis_job_id = uuid.uuid4().hex
        self.task_log_name: str | None = None
        self.kwarg_dict: dict[str, Any] | None = self.btu_task.built_in_arguments() or {}
        if schedule_id:
            overrides = frappe.get_doc("BTU Task Schedule", schedule_id).built_in_arguments() or {}
            self.kwarg_dict = self.kwarg_dict | overrides

    def dprint(self, value: Any) -> None:
        if self.debug_mode_enabled:
            print(value)

    def module_path(self) -> str:
        return self.btu_task.function_string.rsplit(".", 1)[0]

    def function_name(self) -> str:
        return self.btu_task.function_string.rsplit(".", 1)[-1]

    def add_keyword_arguments(self, **kwargs: Any) -> None:
        self.kwarg_dict = kwargs or None

    def is_this_btu_aware_function(self, callable_function: Any, debug: bool = True) -> bool:
        """A class is BTU-aware when an instance made with btu_task_id= is a BTU_AWARE_FUNCTION
        (the instance is made to find out; an error making it means 'no')."""
        from btu.btu_core.doctype.btu_task.btu_task import BTU_AWARE_FUNCTION

        aware = False
        if isinstance(callable_function, type):
            try:
                aware = isinstance(callable_function(btu_task_id=self.btu_task.name), BTU_AWARE_FUNCTION)
            except Exception as ex:  # noqa: BLE001  # printed, as the app does
                print(ex)
        if debug:
            print(f"Is this a BTU-Aware function = {aware}\n--------")
        return aware

    def function_wrapper(self) -> None:
        from btu import Result, get_system_datetime_now, make_datetime_naive
        from btu.btu_core.doctype.btu_task_log.btu_task_log import write_log_for_task

        self.dprint(f"\n-------- Begin function_wrapper (Redis Job = {self.redis_job_id})--------\n")
        if not hasattr(frappe, "boot"):  # not inside the web server: set the site up here
            frappe.init(site=self.site_name)
            frappe.connect()
        function = getattr(importlib.import_module(self.module_path()), self.function_name())

        started = make_datetime_naive(get_system_datetime_now())
        self.create_new_log(started)
        t0 = time.time()
        stdout = None
        try:
            ret, stdout = self._call_capturing_stdout(function)
            result = Result(True, ret, execution_time=round(time.time() - t0, 3))
        except Exception as ex:  # noqa: BLE001  # the app records every failure in the log row
            self.dprint(f"Error in call to function '{self.function_name()}'\n{ex}")
            result = Result(False, str(ex), execution_time=round(time.time() - t0, 3))
        log = write_log_for_task(task_id=self.btu_task.name, result=result, log_name=self.task_log_name,
                                 stdout=stdout or None, date_time_started=started, schedule_id=self.schedule_id)
        self.dprint(f"Updated the BTU Task Log record: '{log}'\n-------- End function_wrapper --------\n")

    def _call_capturing_stdout(self, function: Any) -> tuple[Any, str]:
        from btu import get_system_datetime_now

        print(f"--------\nBTU Task {self.btu_task.name} starting at: "
              f"{get_system_datetime_now().strftime('%m/%d/%Y, %H:%M:%S %Z')}")
        buffer = io.StringIO()
        with redirect_stdout(buffer):
            kwargs = self.kwarg_dict or {}
            if self.is_this_btu_aware_function(function):
                ret = function(self.btu_task.name).run(**kwargs)
            else:
                ret = function(**kwargs)
        return ret, buffer.getvalue()

    def create_new_log(self, date_time_started: Any) -> None:
        log = frappe.new_doc("BTU Task Log")
        log.task = self.btu_task.name
        log.task_desc_short = self.btu_task.desc_short
        log.schedule = self.schedule_id
        log.task_component = "Main"
        log.date_time_started = date_time_started
        log.success_fail = "In-Progress"
        log.save(ignore_permissions=True)
        frappe.db.commit()
        self.task_log_name = log.name
