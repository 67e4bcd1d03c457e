"""Functions the demo schedules call (examples/demo-schedules.toml).

Each run appends one line to $BTU_DEMO_LOG (default /tmp/btu-demo.log) and prints it, so
you can watch runs arrive: ``tail -f /tmp/btu-demo.log``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from typing import Any


def _record(name: str, **fields: Any) -> str:
    line = json.dumps(
        {"task": name, "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"), **fields},
        sort_keys=True,
    )
    with open(os.environ.get("BTU_DEMO_LOG", "/tmp/btu-demo.log"), "a", encoding="utf-8") as f:
        f.write(line + "\n")
    print(line)
    return line


def heartbeat(greeting: str = "hello") -> str:
    return _record("heartbeat", greeting=greeting)


def build_report(days: int, formats: list[str], options: dict[str, Any]) -> str:
    return _record("build_report", days=days, formats=formats, options=options)
