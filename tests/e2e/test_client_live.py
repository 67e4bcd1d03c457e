"""The `btu_client` wheel and the `btu` CLI against the REAL daemon, MariaDB and Redis (db 13),
with a stock `rq worker` running what run-now enqueued.

Needs: `cargo build -p btu-daemon` (target/debug/btu-daemon and btu) and the wheel installed in
the test venv:

    tests/.venvs/test/bin/maturin build -m py-client/Cargo.toml --out target/wheels
    tests/.venvs/test/bin/pip install --force-reinstall --no-deps target/wheels/btu_client-*.whl
    tests/.venvs/test/bin/pytest -q tests/e2e/test_client_live.py
"""

from __future__ import annotations

import json
import socket
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from conftest import (BTU_BIN, MYSQL, RQ_RELEASES, REDIS_DB, REDIS_HOST, REDIS_PORT, Site, run_burst_worker, wait_until,
                      write_sites_dir)

try:
    import btu_client
except ImportError as e:  # fail, never skip: the wheel is part of what is under test
    pytest.fail(f"btu_client is not installed in this venv ({e}); see this file's docstring", pytrace=False)

from e2e_tasks import markers

QUEUE_PREFIX = "e2e-client:"


def config(site: Site, sock: Path) -> str:
    return f"""
[daemon]
socket_path = "{sock}"

[redis]
url = "redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"

[frappe]
runner = "btu_hooks.runner.run_task"
queue_prefix = "{QUEUE_PREFIX}"

[[sites]]
name = "{site.name}"
host = "{MYSQL['host']}"
port = {MYSQL['port']}
user = "{MYSQL['user']}"
password = "{MYSQL['password']}"
database = "{site.db_name}"
"""


def start(make_site, start_daemon, tmp_path: Path) -> tuple[Site, Any, str]:
    site = make_site()
    sock = tmp_path / "client.sock"
    d = start_daemon(config(site, sock), name="client", socket_path=sock, wait_for="socket server listening")

    def loaded() -> bool:
        try:
            st = btu_client.status(socket_path=str(sock))
        except btu_client.DaemonUnavailable:
            return False
        return all(s["source_ok"] and s["redis_ok"] and s["schedules"] > 0 for s in st["sites"])

    wait_until(loaded, 30, "the daemon to load the site's schedules")
    return site, d, str(sock)


def btu(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BTU_BIN), *args], capture_output=True, text=True, timeout=30)


def test_ping_status_upcoming_history(make_site, start_daemon, redis_conn, tmp_path):
    site, _d, sock = start(make_site, start_daemon, tmp_path)
    pong = btu_client.ping(socket_path=sock)
    assert pong["protocol_version"] == btu_client.PROTOCOL_VERSION
    st = btu_client.status(socket_path=sock)
    assert [s["site"] for s in st["sites"]] == [site.name]
    assert st["sites"][0]["schedules"] == 2  # TS-000001, TS-000002 of the sample data
    assert st["started_at"].tzinfo is not None

    runs = btu_client.upcoming(count=10, socket_path=sock)
    assert runs and {r["schedule"] for r in runs} <= {"TS-000001", "TS-000002"}
    assert [r["utc"] for r in runs] == sorted(r["utc"] for r in runs)
    for r in runs:
        # Sample schedules are in America/Los_Angeles (BTU Configuration): -08:00 or -07:00.
        assert r["local"].utcoffset().total_seconds() in (-8 * 3600, -7 * 3600), r
        assert r["local"] == r["utc"]
        assert r["utc"].tzinfo == timezone.utc
    one = btu_client.upcoming(schedule="TS-000001", count=3, socket_path=sock)
    assert len(one) == 3 and all(r["schedule"] == "TS-000001" and r["task"] == "BTU-00001" for r in one)
    assert btu_client.history("TS-000001", 5, socket_path=sock) == []

    # The CLI over the same socket.
    out = btu("upcoming", "--socket", sock, "--count", "3")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split() == ["SCHEDULE", "TASK", "LOCAL", "UTC"]
    assert len(out.stdout.splitlines()) == 4
    out = btu("status", "--socket", sock, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["sites"][0]["site"] == site.name


def test_notify_after_an_edit_changes_the_next_run_at_once(make_site, start_daemon, redis_conn, tmp_path):
    site, _d, sock = start(make_site, start_daemon, tmp_path)
    # TS-000001 is Daily in the sample data (its cron comes from minute/hour): make it Cron Style.
    site.sql("UPDATE `tabBTU Task Schedule` SET run_frequency='Cron Style', cron_string=%s WHERE name=%s",
             ("17 3 * * *", "TS-000001"))
    [state] = btu_client.notify("TS-000001", socket_path=sock)
    assert state["runs"] and state["time_zone"] == "America/Los_Angeles"
    first = state["next_runs"][0]
    assert (first["local"].hour, first["local"].minute) == (3, 17)
    assert first["local"] == first["utc"]
    assert first["utc"] > datetime.now(timezone.utc)
    # The plan itself changed (what fires), not just the reply.
    [up] = btu_client.upcoming(schedule="TS-000001", count=1, socket_path=sock)
    assert up["utc"] == first["utc"]
    members = {m.decode() for m in redis_conn.zrange(f"btu:{site.name}:upcoming", 0, -1)}
    assert "TS-000001" in members

    # Disabled in the database -> notified as not running, with why.
    site.sql("UPDATE `tabBTU Task Schedule` SET enabled=0 WHERE name=%s", ("TS-000001",))
    [state] = btu_client.notify("TS-000001", socket_path=sock)
    assert (state["runs"], state["reason"], state["next_runs"]) == (False, "disabled", [])
    assert all(r["schedule"] != "TS-000001" for r in btu_client.upcoming(count=50, socket_path=sock))
    # Several at once, in request order; an unknown id says so.
    states = btu_client.notify(["TS-000002", "TS-NOPE"], socket_path=sock)
    assert [s["schedule"] for s in states] == ["TS-000002", "TS-NOPE"]
    assert states[0]["runs"] and (states[1]["runs"], states[1]["reason"]) == (False, "unknown schedule")


def test_cancel(make_site, start_daemon, redis_conn, tmp_path):
    _site, _d, sock = start(make_site, start_daemon, tmp_path)
    assert btu_client.cancel("TS-000002", socket_path=sock)["removed"] is True
    assert all(r["schedule"] != "TS-000002" for r in btu_client.upcoming(count=50, socket_path=sock))
    assert btu_client.cancel("TS-000002", socket_path=sock)["removed"] is False
    with pytest.raises(btu_client.ScheduleError) as e:
        btu_client.run_now("TS-000002", socket_path=sock)
    assert e.value.code == "unknown_schedule"
    # A notify plans it again.
    [state] = btu_client.notify("TS-000002", socket_path=sock)
    assert state["runs"]
    out = btu("cancel", "TS-000002", "--socket", sock)
    assert out.returncode == 0 and "cancelled TS-000002" in out.stdout, out


def test_run_now_is_executed_by_a_real_rq_worker(make_site, start_daemon, redis_conn, tmp_path):
    site = make_site()
    marker_dir = tmp_path / "markers"
    site.sql("INSERT INTO `tabBTU Task` (name, creation, modified, owner, docstatus, desc_short, function_string, "
             "arguments, max_task_duration, queue_name) VALUES (%s, NOW(6), NOW(6), 'Administrator', 1, %s, %s, %s, "
             "600, 'default')", ("BTU-LIVE1", "run-now test", "e2e_tasks.record", f"{{'marker_dir': {str(marker_dir)!r}}}"))
    # New Year at midnight: it will not fire by itself during the test.
    site.sql("INSERT INTO `tabBTU Task Schedule` (name, creation, modified, owner, task, enabled, queue_name, "
             "run_frequency, cron_string, argument_overrides) VALUES (%s, NOW(6), NOW(6), 'Administrator', %s, 1, "
             "'default', 'Cron Style', '0 0 1 1 *', %s)", ("TS-LIVE1", "BTU-LIVE1", "{'who': 'run-now'}"))
    sock = tmp_path / "client.sock"
    start_daemon(config(site, sock), name="client", socket_path=sock, wait_for="socket server listening")
    wait_until(lambda: _planned(str(sock), "TS-LIVE1"), 30, "TS-LIVE1 to be planned")

    ran = btu_client.run_now("TS-LIVE1", socket_path=str(sock))
    assert ran["queue"] == QUEUE_PREFIX + "default"
    assert [h["job_id"] for h in btu_client.history("TS-LIVE1", 5, socket_path=str(sock))] == [ran["job_id"]]

    sites_dir = write_sites_dir(tmp_path / "sites", site)
    run_burst_worker(RQ_RELEASES[-1], [ran["queue"]], cwd=sites_dir)

    runs = markers(str(marker_dir))
    assert len(runs) == 1 and "'who': 'run-now'" in runs[0]["kwargs_repr"], runs
    assert redis_conn.hget(f"rq:job:{ran['job_id']}", "status") == b"finished"
    logs = site.sql("SELECT success_fail, schedule FROM `tabBTU Task Log` WHERE task=%s", ("BTU-LIVE1",))
    assert logs == [("Success", "TS-LIVE1")]


def _planned(sock: str, schedule: str) -> bool:
    try:
        return any(r["schedule"] == schedule for r in btu_client.upcoming(count=100, socket_path=sock))
    except btu_client.BtuError:
        return False


def _legacy(sock: str, request: dict[str, Any]) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(sock)
        s.sendall(json.dumps(request).encode())
        return s.recv(2048).decode()


def test_the_original_btu_apps_json_requests(make_site, start_daemon, redis_conn, tmp_path):
    _site, _d, sock = start(make_site, start_daemon, tmp_path)
    assert _legacy(sock, {"request_type": "ping", "request_content": None}) == "pong"
    # The app sends these before its transaction commits: the daemon follows the row meanwhile.
    assert _legacy(sock, {"request_type": "create_task_schedule", "request_content": "TS-000001"}) == \
        "BTU Scheduler now re-processing Task Schedule TS-000001 in Python RQ. It will follow the change once saved."
    assert _legacy(sock, {"request_type": "cancel_task_schedule", "request_content": "TS-000001"}) == \
        "Successfully cancelled BTU Task Schedule TS-000001 in Python RQ. It will follow the change once saved."


def test_daemon_unavailable_once_stopped(make_site, start_daemon, redis_conn, tmp_path):
    _site, d, sock = start(make_site, start_daemon, tmp_path)
    assert d.stop() == 0, d.log()
    assert not Path(sock).exists(), "the daemon removes its socket file"
    with pytest.raises(btu_client.DaemonUnavailable) as e:
        btu_client.ping(socket_path=sock, timeout=1.0)
    assert sock in str(e.value)
    out = btu("ping", "--socket", sock)
    assert out.returncode != 0 and out.stdout == ""
    assert f"cannot connect to btu-daemon at {sock}" in out.stderr and "is btu-daemon running?" in out.stderr
