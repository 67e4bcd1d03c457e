"""What a run prints, and texts cut to fit their columns."""

from __future__ import annotations

import io
import traceback
from typing import TextIO


class OutputCapture(io.TextIOBase):
    """Text sink for redirect_stdout keeping the last `limit` characters; optionally echoes
    everything to another stream (the task's repeat_log_in_stdout)."""

    encoding = "utf-8"

    def __init__(self, limit: int, echo: TextIO | None = None) -> None:
        super().__init__()
        self._limit = limit
        self._echo = echo
        self._parts: list[str] = []
        self._size = 0
        self._dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        if self._echo is not None:
            self._echo.write(s)
        self._parts.append(s)
        self._size += len(s)
        if self._size > 2 * self._limit:
            self._compact()
        return len(s)

    def flush(self) -> None:
        if self._echo is not None:
            self._echo.flush()

    def _compact(self) -> None:
        text = "".join(self._parts)
        keep = text[-self._limit:]
        self._dropped += len(text) - len(keep)
        self._parts, self._size = [keep], len(keep)

    def getvalue(self) -> str:
        if self._size > self._limit:
            self._compact()
        text = "".join(self._parts)
        if self._dropped:
            return f"[... {self._dropped} earlier characters dropped ...]\n{text}"
        return text


def error_text(error: BaseException, limit: int) -> str:
    """`Type: message`, a blank line and the traceback, cut to `limit` bytes."""
    head = f"{type(error).__name__}: {error}"
    tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return truncate_bytes(f"{head}\n\n{tb}", limit)


def truncate_bytes(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    marker = "\n[... truncated]"
    return data[: limit - len(marker)].decode("utf-8", errors="ignore") + marker
