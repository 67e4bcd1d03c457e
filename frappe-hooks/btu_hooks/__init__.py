"""btu_hooks: the Frappe side of btu-scheduler.

- ``btu_hooks.doc_events``: doc_events handlers telling the btu-daemon about changed schedules
  (after the transaction commits); paste ``btu_hooks.hooks_snippet.doc_events`` into the BTU
  app's hooks.py.
- ``btu_hooks.runner.run_task``: the function the daemon's Frappe-mode RQ jobs call inside
  ``frappe.utils.background_jobs.execute_job``; runs a BTU Task and writes a BTU Task Log row.

Importing this package does not import Frappe or btu_client; its submodules need Frappe.
"""

from __future__ import annotations

__version__ = "0.1.0"

RUNNER_PATH = "btu_hooks.runner.run_task"
"""The dotted path the daemon's configuration names as the Frappe-mode job method."""
