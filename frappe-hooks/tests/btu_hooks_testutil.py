"""Test helpers: a fake btu_client, and rows for the BTU tables."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from btu_testdb import TestDatabase

_UTC_RUN = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
_LA = ZoneInfo("America/Los_Angeles")
_NY = ZoneInfo("America/New_York")

DB_NAME = "btu_test_hooks"
SITE = "hooks.test"
RUNNER = "btu_hooks.runner.run_task"
JOB_ID = "btu-hooks-test-job"


def run_job(task: str, schedule: str | None, arguments: dict[str, Any] | None = None) -> Any:
    """Exactly the call the daemon's Frappe-mode RQ job makes (in this thread)."""
    from frappe.utils.background_jobs import execute_job

    return execute_job(
        site=SITE, method=RUNNER, event=None, job_name=RUNNER,
        kwargs={"task": task, "schedule": schedule, "arguments": arguments, "due": "2026-12-01T03:00:00Z",
                "job_id": JOB_ID},
        user="Administrator", is_async=True,
    )


class FakeClient:
    """Stands in for the btu_client module: same call signatures and exception classes;
    records calls instead of talking to a daemon."""

    class BtuError(Exception):
        pass

    class DaemonUnavailable(BtuError):
        pass

    class ProtocolError(BtuError):
        pass

    class ScheduleError(BtuError):
        pass

    class DaemonError(BtuError):
        pass

    class ArgumentError(BtuError, ValueError):
        pass

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail: BaseException | None = None  # raised by every call
        self.reject: dict[str, str] = {}  # schedule -> reason for ScheduleError
        self.on_call: Callable[[], None] | None = None

    def _enter(self, *call: Any) -> None:
        self.calls.append(call)
        if self.on_call is not None:
            self.on_call()
        if self.fail is not None:
            raise self.fail

    def notify(self, schedules: Any, *, site: str | None = None, socket_path: str | None = None,
               timeout: float = 2.0) -> list[dict[str, Any]]:
        items: Sequence[Any] = schedules if isinstance(schedules, (list, tuple)) else [schedules]
        names = [getattr(s, "name", s) for s in items]
        self._enter("notify", names, site, socket_path)
        for n in names:
            if n in self.reject:
                raise self.ScheduleError(f"schedule {n}: {self.reject[n]}")
        return [{"site": site, "schedule": n, "runs": True, "reason": None, "time_zone": "America/Los_Angeles",
                 "next_runs": [{"utc": _UTC_RUN, "local": _UTC_RUN.astimezone(_LA)}]} for n in names]

    def cancel(self, schedule: str, *, site: str | None = None, socket_path: str | None = None,
               timeout: float = 2.0) -> dict[str, Any]:
        self._enter("cancel", schedule, site, socket_path)
        if schedule in self.reject:
            raise self.ScheduleError(f"schedule {schedule}: {self.reject[schedule]}")
        return {"site": site, "schedule": schedule, "removed": True}

    def rebuild(self, *, site: str | None = None, socket_path: str | None = None, timeout: float = 2.0) -> dict[str, Any]:
        self._enter("rebuild", site, socket_path)
        return {"sites": [site], "schedules": 4, "skipped": 2, "duration_ms": 3}


class FakeActionsClient(FakeClient):
    """FakeClient plus the calls behind the form (btu_client: upcoming, history, status, run_now
    and issue 9's pause, resume, skip_next, backfill), with the same signatures and answer
    shapes; keeps the pauses and skips it was given, as the daemon keeps them in Redis."""

    def __init__(self) -> None:
        super().__init__()
        self.paused: dict[str, dict[str, Any]] = {}
        self.skipped: dict[str, int] = {}
        self.history_entries: list[dict[str, Any]] = []

    def _runs(self, count: int) -> list[datetime]:
        return [_UTC_RUN + timedelta(hours=i) for i in range(count)]

    def upcoming(self, schedule: Any = None, count: int = 10, *, site: str | None = None,
                 socket_path: str | None = None, timeout: float = 2.0) -> list[dict[str, Any]]:
        self._enter("upcoming", schedule, count, site, socket_path)
        skipped = self.skipped.get(schedule, 0)
        return [{"site": site, "schedule": schedule, "task": "BTU-00001", "utc": t, "local": t.astimezone(_NY),
                 "paused": schedule in self.paused, "skipped": i < skipped} for i, t in enumerate(self._runs(count))]

    def history(self, schedule: Any, count: int = 20, *, site: str | None = None, socket_path: str | None = None,
                timeout: float = 2.0) -> list[dict[str, Any]]:
        self._enter("history", schedule, count, site, socket_path)
        return self.history_entries[:count]

    def status(self, *, socket_path: str | None = None, timeout: float = 2.0) -> dict[str, Any]:
        self._enter("status", socket_path)
        return {"daemon_version": "0.1.0", "protocol_version": 2, "sites": [
            {"site": SITE, "schedules": 4, "redis_ok": True, "source_ok": True, "last_rebuild": None,
             "paused": list(self.paused.values()), "skipped": []}]}

    def run_now(self, schedule: Any, *, site: str | None = None, socket_path: str | None = None,
                timeout: float = 2.0) -> dict[str, Any]:
        self._enter("run_now", schedule, site, socket_path)
        return {"site": site, "schedule": schedule, "job_id": f"{site}||btu-{schedule}-now", "queue": "default"}

    def pause(self, schedule: Any, until: datetime | None = None, note: str | None = None, *, site: str | None = None,
              socket_path: str | None = None, timeout: float = 2.0) -> dict[str, Any]:
        self._enter("pause", schedule, until, note, site, socket_path)
        pause = {"schedule": schedule, "until": until, "note": note, "at": _UTC_RUN - timedelta(hours=1),
                 "uid": 1000, "pid": 42}
        self.paused[schedule] = pause
        return {"site": site, **pause}

    def resume(self, schedule: Any, *, site: str | None = None, socket_path: str | None = None,
               timeout: float = 2.0) -> dict[str, Any]:
        self._enter("resume", schedule, site, socket_path)
        return {"site": site, "schedule": schedule, "was_paused": self.paused.pop(schedule, None) is not None}

    def skip_next(self, schedule: Any, count: int = 1, *, site: str | None = None, socket_path: str | None = None,
                  timeout: float = 2.0) -> dict[str, Any]:
        self._enter("skip_next", schedule, count, site, socket_path)
        before = self.skipped.get(schedule, 0)
        self.skipped[schedule] = before + count
        runs = [{"utc": t, "local": t.astimezone(_NY)} for t in self._runs(before + count)]
        return {"site": site, "schedule": schedule, "added": runs[before:], "pending": runs}

    def backfill(self, schedule: Any, start: datetime, end: datetime, max: int = 1000,  # noqa: A002
                 dry_run: bool = False, *, site: str | None = None, socket_path: str | None = None,
                 timeout: float = 30.0) -> list[dict[str, Any]]:
        self._enter("backfill", schedule, start, end, max, dry_run, site, socket_path)
        runs, t = [], start
        while t < end and len(runs) < max:
            runs.append({"due": t, "local": t.astimezone(_NY), "job_id": f"{site}||btu-{schedule}-{int(t.timestamp())}",
                         "status": "would_enqueue" if dry_run else "enqueued"})
            t += timedelta(hours=1)
        return runs


def add_task(db: TestDatabase, name: str, function_string: str, *, arguments: str | None = None,
             docstatus: int = 1, repeat_log_in_stdout: int = 0, desc: str | None = None) -> None:
    conn = db.connect()
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO `tabBTU Task` (name, creation, modified, owner, docstatus, desc_short, function_string,"
            " arguments, repeat_log_in_stdout) VALUES (%s, NOW(6), NOW(6), 'Administrator', %s, %s, %s, %s, %s)",
            (name, docstatus, desc or f"test task {name}", function_string, arguments, repeat_log_in_stdout),
        )
    conn.close()


def add_schedule(db: TestDatabase, name: str, task: str, *, overrides: str | None = None, enabled: int = 1) -> None:
    conn = db.connect()
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO `tabBTU Task Schedule` (name, creation, modified, owner, task, enabled, cron_string,"
            " argument_overrides) VALUES (%s, NOW(6), NOW(6), 'Administrator', %s, %s, '0 * * * *', %s)",
            (name, task, enabled, overrides),
        )
    conn.close()


def add_recipient(db: TestDatabase, schedule: str, email: str, *, start: int = 0, success: int = 0, error: int = 1,
                  timeout: int = 0) -> None:
    """A row of the schedule's email_recipients child table."""
    db.query(
        "INSERT INTO `tabBTU Email Recipient` (name, creation, modified, owner, idx, email_address, email_on_start,"
        " email_on_success, email_on_error, email_on_timeout, parent, parentfield, parenttype)"
        " VALUES (%s, NOW(6), NOW(6), 'Administrator', 1, %s, %s, %s, %s, %s, %s, 'email_recipients', 'BTU Task Schedule')",
        (f"r-{schedule}-{email}"[:140], email, start, success, error, timeout, schedule))


def set_installed_apps(db: TestDatabase, apps: list[str]) -> None:
    """The site's installed apps (the global default frappe.get_installed_apps() reads)."""
    import json

    db.query("UPDATE tabDefaultValue SET defvalue = %s WHERE parent = '__global' AND defkey = 'installed_apps'",
             (json.dumps(apps),))


def log_rows(db: TestDatabase) -> list[dict[str, Any]]:
    return db.query("SELECT * FROM `tabBTU Task Log` ORDER BY name")
