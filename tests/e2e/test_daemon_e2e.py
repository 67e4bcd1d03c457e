"""End to end: schedule rows in MariaDB (or a schedules file) -> btu-daemon -> jobs in Redis ->
stock `rq worker` processes of every supported release run them. Counts runs to show that
nothing is lost beyond the missed-run rule and nothing runs twice, through outages."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest

from conftest import (QUEUE_PREFIX, REDIS_DB, REDIS_HOST, REDIS_PORT, RQ_RELEASES, Site, add_schedule, add_task,
                      frappe_config, queued_ids, run_burst_worker, wait_until, worker_env, write_sites_dir, rq_bin)
from e2e_tasks import markers

JOB_ID_DUE = re.compile(r"-(\d{8}T\d{6})Z$")


def dues(ids: list[str]) -> list[str]:
    out = []
    for i in ids:
        m = JOB_ID_DUE.search(i)
        assert m, f"job id {i!r} does not end with its due instant"
        out.append(m.group(1))
    return out


def assert_unique(ids: list[str]) -> None:
    dup = {i for i in ids if ids.count(i) > 1}
    assert not dup, f"runs enqueued twice: {sorted(dup)}"


def seconds_between(a: str, b: str) -> int:
    from datetime import datetime
    fmt = "%Y%m%dT%H%M%S"
    return int((datetime.strptime(b, fmt) - datetime.strptime(a, fmt)).total_seconds())


@pytest.mark.parametrize("release", RQ_RELEASES)
def test_frappe_mode_rows_become_jobs_that_stock_workers_run(release, make_site, start_daemon,
                                                             redis_conn, tmp_path):
    site = make_site()
    marker_dir = tmp_path / "markers"
    add_task(site, "BTU-E2E01", "e2e_tasks.record",
             f"{{'marker_dir': {str(marker_dir)!r}, 'n': 1, 'label': 'task', 'nested': {{'k': (1, 2.5, None)}}}}")
    add_schedule(site, "TS-E2E01", "BTU-E2E01", "* * * * * *", overrides="{'n': 2, 'extra': 'ü€'}")
    d = start_daemon(frappe_config(site, tmp_path / "d.sock"))
    queue = QUEUE_PREFIX + "default"
    wait_until(lambda: len(queued_ids(redis_conn, queue)) >= 3, 20, "three runs of TS-E2E01")
    assert d.stop() == 0, d.log()

    ids = queued_ids(redis_conn, queue)
    assert_unique(ids)
    assert all("TS_2dE2E01" in i for i in ids), ids  # nothing else lands on this queue
    # Rows that must never run: disabled, draft task, invalid cron, missing task.
    upcoming = {m.decode() for m in redis_conn.zrange(f"btu:{site.name}:upcoming", 0, -1)}
    assert upcoming == {"TS-000001", "TS-000002", "TS-E2E01"}, upcoming
    log = d.log()
    for bad in ("TS-000004", "TS-000005", "TS-000006"):
        assert bad in log, f"no log line names skipped schedule {bad}:\n{log}"

    sites_dir = write_sites_dir(tmp_path / "sites", site)
    run_burst_worker(release, [queue], cwd=sites_dir)
    runs = markers(str(marker_dir))
    assert len(runs) == len(ids)
    expected = repr({"n": 2, "label": "task", "nested": {"k": (1, 2.5, None)}, "extra": "ü€"})
    assert all(m["kwargs_repr"] == expected for m in runs), runs[0]
    logs = site.sql("SELECT success_fail, schedule, stdout FROM `tabBTU Task Log` WHERE task=%s",
                    ("BTU-E2E01",))
    assert len(logs) == len(ids)
    assert all(row[0] == "Success" and row[1] == "TS-E2E01" and "recorded" in row[2] for row in logs)
    for i in ids:
        assert redis_conn.hget(f"rq:job:{i}", "status") == b"finished"


def test_plain_mode_file_source_round_trips_arguments(start_daemon, redis_conn, tmp_path):
    marker_dir = tmp_path / "markers"
    schedules = tmp_path / "schedules.toml"
    schedules.write_text(f"""
[[schedule]]
id = "file-every-second"
function = "e2e_tasks.record"
cron = "* * * * * *"
zone = "Europe/Dublin"
queue = "plain"
timeout = 30
kwargs = {{ marker_dir = "{marker_dir}", big = 9007199254740993, f = 0.1, s = "naïve ☃", l = [1, "two", 3.0], t = {{ a = true, b = false }} }}

[[schedule]]
id = "file-disabled"
function = "e2e_tasks.record"
cron = "* * * * * *"
queue = "plain"
enabled = false
kwargs = {{ marker_dir = "{marker_dir}", disabled = true }}

[[schedule]]
id = "file-bad-cron"
function = "e2e_tasks.record"
cron = "61 * * * *"
queue = "plain"
""")
    d = start_daemon(f"""
[daemon]
socket_path = "{tmp_path / 'p.sock'}"
[redis]
url = "redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
[file]
path = "{schedules}"
site = "plain.local"
mode = "plain"
""")
    wait_until(lambda: len(queued_ids(redis_conn, "plain")) >= 2, 20, "two runs")
    assert d.stop() == 0
    assert "file-bad-cron" in d.log() and "minute" in d.log()
    run_burst_worker("3.0", ["plain"], cwd=tmp_path)
    runs = markers(str(marker_dir))
    assert len(runs) == len(queued_ids(redis_conn, "plain")) or len(runs) >= 2
    # marker_dir is the function's own parameter; the rest arrive as **kwargs, in file order.
    assert {m["kwargs_repr"] for m in runs} == {repr({
        "big": 9007199254740993, "f": 0.1, "s": "naïve ☃",
        "l": [1, "two", 3.0], "t": {"a": True, "b": False}})}


def test_rebuild_picks_up_live_edits(make_site, start_daemon, redis_conn, tmp_path):
    site = make_site(sample=False)
    add_task(site, "BTU-E2E02", "e2e_tasks.record", f"{{'marker_dir': {str(tmp_path)!r}}}")
    add_schedule(site, "TS-E2E02", "BTU-E2E02", "* * * * * *", enabled=0)
    d = start_daemon(frappe_config(site, tmp_path / "d.sock", rebuild_secs=1))
    queue = QUEUE_PREFIX + "default"
    time.sleep(2.5)
    assert queued_ids(redis_conn, queue) == [], "a disabled schedule ran"

    site.sql("UPDATE `tabBTU Task Schedule` SET enabled=1, modified=NOW(6) WHERE name=%s", ("TS-E2E02",))
    wait_until(lambda: len(queued_ids(redis_conn, queue)) >= 2, 15, "runs after enabling")

    site.sql("UPDATE `tabBTU Task` SET docstatus=2 WHERE name=%s", ("BTU-E2E02",))  # task cancelled
    time.sleep(2.5)  # at least one rebuild
    before = len(queued_ids(redis_conn, queue))
    time.sleep(2.5)
    after = len(queued_ids(redis_conn, queue))
    assert after == before, "runs continued after the task was cancelled"
    assert redis_conn.zscore(f"btu:{site.name}:upcoming", "TS-E2E02") is None
    assert_unique(queued_ids(redis_conn, queue))
    assert d.stop() == 0


def assert_one_outage_at_most(ids: list[str]) -> None:
    """Every-second runs around one outage: no run twice, and at most one gap longer than a
    second (the missed runs; the single catch-up lands inside it)."""
    assert_unique(ids)
    ds = sorted(dues(ids))
    gaps = [seconds_between(x, y) for x, y in zip(ds, ds[1:])]
    assert sum(1 for g in gaps if g > 1) <= 1, gaps


def _count_window(ids: list[str]) -> tuple[int, int]:
    ds = sorted(dues(ids))
    return len(ds), seconds_between(ds[0], ds[-1]) + 1


def test_two_daemons_on_one_redis_enqueue_each_run_once(make_site, start_daemon, redis_conn, tmp_path):
    site = make_site(sample=False)
    add_task(site, "BTU-E2E03", "e2e_tasks.record", f"{{'marker_dir': {str(tmp_path)!r}}}")
    add_schedule(site, "TS-E2E03", "BTU-E2E03", "* * * * * *")
    a = start_daemon(frappe_config(site, tmp_path / "a.sock", rebuild_secs=1), name="a")
    b = start_daemon(frappe_config(site, tmp_path / "b.sock", rebuild_secs=1), name="b")
    time.sleep(6)
    assert a.stop() == 0 and b.stop() == 0
    ids = queued_ids(redis_conn, QUEUE_PREFIX + "default")
    assert_unique(ids)
    n, span = _count_window(ids)
    assert n == span, f"{span - n} runs lost between the first and the last enqueued run"
    assert n >= 4


def test_sigkill_and_restart_catches_up_once(make_site, start_daemon, redis_conn, tmp_path):
    site = make_site(sample=False)
    add_task(site, "BTU-E2E04", "e2e_tasks.record", f"{{'marker_dir': {str(tmp_path)!r}}}")
    add_schedule(site, "TS-E2E04", "BTU-E2E04", "* * * * * *")
    cfg = frappe_config(site, tmp_path / "d.sock")
    queue = QUEUE_PREFIX + "default"
    d1 = start_daemon(cfg, name="first")
    wait_until(lambda: len(queued_ids(redis_conn, queue)) >= 2, 20, "runs")
    d1.stop(signal.SIGKILL)
    time.sleep(3)  # several runs are missed; only one catch-up is allowed
    n_before = len(queued_ids(redis_conn, queue))
    d2 = start_daemon(cfg, name="second")
    wait_until(lambda: len(queued_ids(redis_conn, queue)) >= n_before + 3, 20, "runs after restart")
    assert d2.stop() == 0
    assert_one_outage_at_most(queued_ids(redis_conn, queue))
    assert "catch" in d2.log().lower() or "missed" in d2.log().lower(), d2.log()


def test_redis_outage_keeps_running_and_catches_up_once(make_site, start_daemon, private_redis, tmp_path):
    site = make_site(sample=False)
    add_task(site, "BTU-E2E05", "e2e_tasks.record", f"{{'marker_dir': {str(tmp_path)!r}}}")
    add_schedule(site, "TS-E2E05", "BTU-E2E05", "* * * * * *")
    d = start_daemon(frappe_config(site, tmp_path / "d.sock", redis_url=private_redis.url))
    r = private_redis.client()
    queue = QUEUE_PREFIX + "default"
    wait_until(lambda: len(queued_ids(r, queue)) >= 2, 20, "runs")
    private_redis.stop()
    time.sleep(3)
    assert d.proc.poll() is None, "daemon died when Redis went away:\n" + d.log()
    private_redis.start()
    r = private_redis.client()
    n0 = len(queued_ids(r, queue))
    wait_until(lambda: len(queued_ids(r, queue)) >= n0 + 3, 30, "runs after Redis came back")
    assert d.stop() == 0
    assert_one_outage_at_most(queued_ids(r, queue))
    down_lines = [ln for ln in d.log().splitlines() if "redis" in ln.lower() and ("unreachable" in ln.lower() or "reachable again" in ln.lower())]
    assert 1 <= len(down_lines) <= 3, "expected one log line per Redis state change:\n" + d.log()


def test_mariadb_outage_keeps_firing_and_rebuilds_when_back(start_daemon, private_mariadb, redis_conn,
                                                           btu_sql, tmp_path):
    import pymysql

    conn = private_mariadb.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE btu_e2e_outage")
    conn.select_db("btu_e2e_outage")
    from conftest import _run_sql
    _run_sql(conn, btu_sql[0])
    site = Site(name="outage.local", db_name="btu_e2e_outage", conn=conn)
    add_task(site, "BTU-E2E06", "e2e_tasks.record", f"{{'marker_dir': {str(tmp_path)!r}}}")
    add_schedule(site, "TS-E2E06", "BTU-E2E06", "* * * * * *")
    d = start_daemon(frappe_config(site, tmp_path / "d.sock", rebuild_secs=1, mysql_port=private_mariadb.port))
    queue = QUEUE_PREFIX + "default"
    wait_until(lambda: len(queued_ids(redis_conn, queue)) >= 2, 20, "runs")
    conn.close()
    private_mariadb.stop()
    n0 = len(queued_ids(redis_conn, queue))
    time.sleep(3)
    assert len(queued_ids(redis_conn, queue)) >= n0 + 2, "firing stopped while MariaDB was down"
    assert d.proc.poll() is None, d.log()
    private_mariadb.start()
    conn = pymysql.connect(host="127.0.0.1", port=private_mariadb.port, user="root", password="",
                           database="btu_e2e_outage")
    site = Site(name="outage.local", db_name="btu_e2e_outage", conn=conn)
    site.sql("UPDATE `tabBTU Task Schedule` SET enabled=0 WHERE name=%s", ("TS-E2E06",))
    wait_until(lambda: redis_conn.zscore("btu:outage.local:upcoming", "TS-E2E06") is None, 30,
               "the rebuild after MariaDB came back to drop the disabled schedule")
    assert d.stop() == 0
    assert_unique(queued_ids(redis_conn, queue))
    conn.close()


def test_sigterm_exits_zero_and_bad_config_is_a_clear_error(start_daemon, tmp_path, binaries):
    from conftest import DAEMON_BIN
    bad = tmp_path / "bad.toml"
    bad.write_text("[daemon]\nrebuild_interval_secs = 'often'\n")
    p = subprocess.run([str(DAEMON_BIN), "--config", str(bad)], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "rebuild_interval_secs" in p.stderr, p.stderr
    missing = subprocess.run([str(DAEMON_BIN), "--config", str(tmp_path / "nope.toml")],
                             capture_output=True, text=True, timeout=30)
    assert missing.returncode != 0 and "nope.toml" in missing.stderr


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_redis_with_password_over_tcp_and_unix_socket(transport, make_site, start_daemon, private_redis, tmp_path):
    """The daemon reaches a Redis that needs AUTH, over TCP or its unix socket, and never logs
    the password."""
    secret = "s3cret-Pa55"
    private_redis.stop()
    private_redis.password = secret
    private_redis.start()
    url = (f"redis://:{secret}@127.0.0.1:{private_redis.port}/3" if transport == "tcp"
           else f"redis+unix://{private_redis.unix_socket}?db=3&pass={secret}")
    site = make_site(sample=False)
    add_task(site, "BTU-E2E07", "e2e_tasks.record", f"{{'marker_dir': {str(tmp_path)!r}}}")
    add_schedule(site, "TS-E2E07", "BTU-E2E07", "* * * * * *")
    d = start_daemon(frappe_config(site, tmp_path / "d.sock", redis_url=url))
    r = private_redis.client(db=3)
    wait_until(lambda: len(queued_ids(r, QUEUE_PREFIX + "default")) >= 2, 20, "runs in db 3")
    assert d.stop() == 0
    assert secret not in d.log(), "the Redis password reached the log"
    assert "***" in d.log()
