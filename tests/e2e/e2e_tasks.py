"""Task functions the end-to-end tests schedule. Each run leaves a marker file, so a test can
count runs and read back exactly what the function received."""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any


def record(marker_dir: str, **kwargs: Any) -> str:
    """Write one marker file per call: the kwargs repr (for exact round-trip checks) and when."""
    os.makedirs(marker_dir, exist_ok=True)
    path = os.path.join(marker_dir, f"{time.time():.6f}-{uuid.uuid4().hex}.json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"kwargs_repr": repr(kwargs), "pid": os.getpid(), "at": time.time()}, f)
    os.replace(path + ".tmp", path)  # atomic: a reader never sees half a marker
    print(f"recorded {sorted(kwargs)}")
    return "ok"


def slow(marker_dir: str, seconds: float, **kwargs: Any) -> str:
    """A deliberately slow run (the overlap tests): a marker with when it started and ended."""
    started = time.time()
    time.sleep(seconds)
    return record(marker_dir, started=started, ended=time.time(), **kwargs)


def fail(marker_dir: str, message: str = "boom") -> None:
    record(marker_dir, failed=True)
    raise RuntimeError(message)


def markers(marker_dir: str) -> list[dict[str, Any]]:
    if not os.path.isdir(marker_dir):
        return []
    out = []
    for name in sorted(os.listdir(marker_dir)):
        if name.endswith(".json"):
            with open(os.path.join(marker_dir, name), encoding="utf-8") as f:
                out.append(json.load(f))
    return out


class Recorder:
    """A BTU-aware task class without the BTU app: made with the task's name, then run(**kwargs)."""

    def __init__(self, btu_task_id: str) -> None:
        self.btu_task_id = btu_task_id

    def run(self, marker_dir: str, **kwargs: Any) -> str:
        return record(marker_dir, btu_task_id=self.btu_task_id, **kwargs)
