"""A fake of the ORIGINAL btu scheduler daemon's Unix socket, for tests of code that speaks its
legacy JSON protocol (the BTU app's btu/btu_api/scheduler.py): each connection carries one
request `{"request_type": "create_task_schedule" | "cancel_task_schedule" | "ping",
"request_content": <schedule name or null>}` and gets one text answer.

    with FakeLegacyDaemon(tmp_path / "legacy.sock") as legacy:
        ...                                   # code that connects to legacy.path
        assert legacy.requests == [{"request_type": "cancel_task_schedule", "request_content": "TS-000001"}, ...]

`answer(request) -> str` picks the reply (default: a short acknowledgement naming the request).
Requests are recorded in arrival order; `received_at` holds time.monotonic() of each.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _default_answer(request: dict[str, Any]) -> str:
    return f"fake legacy daemon: {request.get('request_type')} {request.get('request_content')}"


class FakeLegacyDaemon:
    def __init__(self, path: str | os.PathLike[str], answer: Callable[[dict[str, Any]], str] = _default_answer) -> None:
        self.path = Path(path)
        self.answer = answer
        self.requests: list[dict[str, Any]] = []
        self.received_at: list[float] = []
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def __enter__(self) -> FakeLegacyDaemon:
        self.path.unlink(missing_ok=True)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(self.path))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._serve, name="fake-legacy-daemon", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._sock is not None:
            self._sock.close()
        self.path.unlink(missing_ok=True)

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = conn.recv(65536)
                request = json.loads(data.decode("utf-8"))
                self.requests.append(request)
                self.received_at.append(time.monotonic())
                conn.sendall(self.answer(request).encode("utf-8"))
