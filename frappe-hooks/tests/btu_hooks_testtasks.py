"""Task functions the tests' BTU Task rows point at (function_string)."""

from __future__ import annotations

from typing import Any

import frappe


def say_hello(name: str = "world", **kwargs: Any) -> int:
    print(f"hello {name}")
    return 42


def echo_kwargs(**kwargs: Any) -> dict[str, Any]:
    return kwargs


def fail_after_write(**kwargs: Any) -> None:
    print("about to fail")
    # a write of the task that must be rolled back when it fails
    frappe.db.sql("UPDATE `tabBTU Task` SET desc_short = 'changed by a failed run' WHERE name = 'BTU-00001'")
    raise ValueError("boom: the invoice run failed")


class JobTimeoutException(Exception):
    """Same name as rq.timeouts.JobTimeoutException (what RQ raises in the work horse)."""


def time_out(**kwargs: Any) -> None:
    print("working...")
    raise JobTimeoutException("Task exceeded maximum timeout value (1 seconds)")


def exit_process(**kwargs: Any) -> None:
    raise SystemExit(3)


def own_log_status(**kwargs: Any) -> str:
    """Reads the running log row through ANOTHER connection: sees only committed rows."""
    import pymysql

    conf = frappe.local.conf
    conn = pymysql.connect(host=conf.db_host, port=int(conf.db_port), user=conf.db_user,
                           password=conf.db_password, database=conf.db_name, autocommit=True)
    with conn.cursor() as cur:
        cur.execute("SELECT success_fail FROM `tabBTU Task Log` WHERE task = %s", (kwargs["task_name"],))
        rows = cur.fetchall()
    conn.close()
    return ",".join(r[0] for r in rows)


not_callable = 17


class Greeter:
    """BTU-aware the way btu_hooks' own runner sees it without the BTU app: a class made with the
    task's name, then run(**kwargs)."""

    def __init__(self, btu_task_id: str) -> None:
        self.btu_task_id = btu_task_id

    def run(self, name: str = "world", **kwargs: Any) -> str:
        print(f"{self.btu_task_id} greets {name}")
        return f"greeted {name} as {self.btu_task_id}"


def return_an_int(**kwargs: Any) -> int:
    return 7


def greet(name: str = "world", **kwargs: Any) -> str:
    """Returns a str: a result the BTU app's runner accepts (see btu.Result)."""
    print(f"hello {name}")
    return f"greeted {name}"
