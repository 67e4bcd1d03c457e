"""Shared fixtures: golden vectors (repo-root tests/vectors) and a tiny fake btu-daemon.

The fake daemon answers with golden response frames. It never encodes msgpack itself: request
ids are read, and golden frames re-stamped with them, through btu_client._core (btu-protocol).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from btu_client import _core

VECTORS = pathlib.Path(__file__).resolve().parents[2] / "tests" / "vectors"


def vector(name: str) -> bytes:
    """The bytes of golden vector ``name`` (hex file, whitespace ignored)."""
    text = (VECTORS / f"{name}.hex").read_text(encoding="ascii")
    return bytes.fromhex("".join(text.split()))


@pytest.fixture
def sock_dir() -> Iterator[pathlib.Path]:
    """A short directory for socket files (AF_UNIX paths are limited to 108 bytes)."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="btu-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


# A handler gets the request frame and returns the bytes to send back (None: send nothing).
Handler = Callable[[bytes], "bytes | None"]


def golden_reply(name: str) -> Handler:
    """Answer with golden response ``name``, re-stamped with the request's id."""

    def handler(request: bytes) -> bytes:
        request_id = _core._peek_request_id(request)
        assert request_id is not None
        return _core._with_response_id(vector(name), request_id)

    return handler


def raw_reply(name: str) -> Handler:
    """Answer with golden response ``name`` exactly as stored (id and version untouched)."""
    return lambda _request: vector(name)


@dataclass
class FakeDaemon:
    path: pathlib.Path
    handler: Handler
    requests: list[bytes] = field(default_factory=list)
    _server: socket.socket | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> FakeDaemon:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(self.path))
        server.listen(8)
        server.settimeout(0.1)
        self._server = server
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                header = _recv_exact(conn, 4)
                if header is None:
                    continue
                body = _recv_exact(conn, int.from_bytes(header, "big"))
                if body is None:
                    continue
                self.requests.append(header + body)
                reply = self.handler(header + body)
                if reply is not None:
                    conn.sendall(reply)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._server is not None:
            self._server.close()


@pytest.fixture
def fake_daemon(sock_dir: pathlib.Path) -> Iterator[Callable[[Handler], FakeDaemon]]:
    """Factory: ``fake_daemon(handler)`` starts a fake daemon on a fresh socket path."""
    started: list[FakeDaemon] = []

    def start(handler: Handler) -> FakeDaemon:
        daemon = FakeDaemon(sock_dir / f"d{len(started)}.sock", handler).start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


@pytest.fixture(autouse=True)
def _no_socket_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests pass socket_path explicitly unless they test the environment variable."""
    monkeypatch.delenv("BTU_SOCKET_PATH", raising=False)
    assert "BTU_SOCKET_PATH" not in os.environ
