"""Functions that stock `rq worker` processes run in daemon/tests/rq_workers.rs.

Each call appends one line, ``repr((args, kwargs))``, to ``$BTU_RQ_PROBE_DIR/<job id>``, so
the test can check both that the job ran exactly once and that every argument arrived as the
exact Python value (type, order, digits) the Rust side pickled.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from rq import get_current_job


class ProbeSetupError(RuntimeError):
    """The worker was started without BTU_RQ_PROBE_DIR or outside an rq job."""


def _marker() -> Path:
    directory = os.environ.get("BTU_RQ_PROBE_DIR")
    if not directory:
        raise ProbeSetupError("BTU_RQ_PROBE_DIR is not set for the worker")
    job = get_current_job()
    if job is None:
        raise ProbeSetupError("record() called outside an rq job")
    return Path(directory) / job.id


def record(*args: Any, **kwargs: Any) -> str:
    line = repr((args, kwargs))
    with _marker().open("a", encoding="utf-8") as f:
        f.write(line + "\n")
    return "recorded"


def sleep_then_record(seconds: float, *args: Any, **kwargs: Any) -> str:
    """Outlives a short job timeout: the worker must mark the job failed and go on."""
    time.sleep(seconds)
    return record(*args, **kwargs)
