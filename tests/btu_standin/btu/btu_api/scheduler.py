"""The app's client of the original scheduler daemon: one JSON request per Unix-socket connection
({"request_type": ..., "request_content": <schedule name or None>}), then 0.5 s of sleep, then
one recv of at most 2048 bytes, decoded as UTF-8. The socket path is BTU Configuration's
path_to_btu_scheduler_uds. A missing socket file raises FileNotFoundError; a socket nobody listens
on returns the text "Exception while connecting to BTU Scheduler socket: ..." instead."""

from __future__ import annotations

import json
import pathlib
import socket
import time
from enum import Enum

import frappe


class RequestType(Enum):
    create_task_schedule = 0
    ping = 1
    cancel_task_schedule = 2


class SchedulerAPI:
    @staticmethod
    def send_ping() -> str | None:
        return SchedulerAPI().send_message(RequestType.ping, content=None)

    @staticmethod
    def reload_task_schedule(task_schedule_id: str) -> str | None:
        return SchedulerAPI().send_message(RequestType.create_task_schedule, content=task_schedule_id)

    @staticmethod
    def cancel_task_schedule(task_schedule_id: str) -> str | None:
        return SchedulerAPI().send_message(RequestType.cancel_task_schedule, content=task_schedule_id)

    def send_message(self, request_type: RequestType, content: str | None) -> str | None:
        if not isinstance(request_type, RequestType):
            raise TypeError("Argument 'request_type' must be an enum of RequestType.")
        return self._send(json.dumps({"request_type": request_type.name, "request_content": content}))

    def _send(self, message: str) -> str | None:
        path_text = frappe.db.get_single_value("BTU Configuration", "path_to_btu_scheduler_uds")
        if not path_text:
            raise ValueError("BTU Configuration is missing a path to the Unix Domain Socket for the scheduler daemon.")
        path = pathlib.Path(path_text)
        if not path.exists():
            raise FileNotFoundError(f"Path to socket file does not exists: '{path.absolute()}'")
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(5)
            sock.connect(str(path.absolute()))
        except Exception as ex:  # noqa: BLE001  # the app answers with a text, it does not raise
            return f"Exception while connecting to BTU Scheduler socket: {ex}"
        reply = None
        try:
            sock.send(message.encode("utf-8"))
            time.sleep(0.5)  # the app's wait for the answer
            reply = sock.recv(2048)
        except Exception as ex:  # noqa: BLE001  # printed, as the app does
            print(f"Exception while communicating with the BTU Scheduler daemon's Unix Domain Socket: {ex}")
        finally:
            sock.close()
        return reply.decode("utf-8") if reply else None
