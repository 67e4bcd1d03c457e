"""A real SMTP server for tests (aiosmtpd, in a thread): accepts AUTH PLAIN/LOGIN without TLS for
one user and keeps every message it receives.

    with SmtpSink(user="btu@example.com", password="smtp-secret") as smtp:
        ...                                     # code that sends to 127.0.0.1:smtp.port
        smtp.wait_for(2)                        # at least 2 messages within the timeout
        smtp.messages[0].subject, .to, .body
"""

from __future__ import annotations

import email
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Message:
    mail_from: str
    rcpt_tos: list[str]
    subject: str
    body: str
    raw: bytes


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802  # aiosmtpd's name
        parsed = email.message_from_bytes(envelope.content)
        part = parsed.get_payload(0) if parsed.is_multipart() else parsed
        payload = part.get_payload(decode=True) or b""
        with self.sink.lock:
            self.sink.messages.append(Message(envelope.mail_from, list(envelope.rcpt_tos), parsed.get("Subject", ""),
                                              payload.decode("utf-8", errors="replace"), envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpSink:
    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password
        self.port = _free_port()
        self.messages: list[Message] = []
        self.failed_logins: list[str] = []
        self.lock = threading.Lock()
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                      authenticator=self._authenticate, auth_require_tls=False)

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.user
              and auth_data.password.decode() == self.password)
        if not ok:
            self.failed_logins.append(repr(auth_data))
        return AuthResult(success=ok)

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def wait_for(self, count: int, timeout: float = 20) -> list[Message]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} e-mails within {timeout}s, got {len(self.messages)}: "
                             f"{[m.subject for m in self.messages]}")
