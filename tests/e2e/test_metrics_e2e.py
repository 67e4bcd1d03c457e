"""End to end: the metrics and health listener, systemd notify and JSON logs of a real daemon
(MariaDB rows, Redis, stock `rq worker`). docs/operations.md describes what is checked here."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import (BTU_BIN, QUEUE_PREFIX, RQ_RELEASES, add_schedule, add_task, free_port, frappe_config,
                      queued_ids, run_burst_worker, wait_until, write_sites_dir)

SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    """`GET /metrics` as {(name, labels): value}; fails on a non-200 answer."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        text = resp.read().decode()
    assert text.endswith("# EOF\n"), text[-200:]
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no {name}{labels} in {sorted(k for k in samples if k[0] == name)}"
    return samples[key]


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def with_metrics(config: str, port: int, per_schedule: bool = False) -> str:
    return config + f'\n[metrics]\nlisten = "127.0.0.1:{port}"\nper_schedule = {str(per_schedule).lower()}\n'


def test_metrics_during_real_runs_match_the_runs_in_redis(make_site, start_daemon, redis_conn, tmp_path):
    site = make_site()  # sample rows too: planned, disabled and invalid schedules
    add_task(site, "BTU-MET01", "e2e_tasks.record", f"{{'marker_dir': {str(tmp_path / 'markers')!r}}}")
    add_schedule(site, "TS-MET01", "BTU-MET01", "* * * * * *")
    port = free_port()
    sock = tmp_path / "d.sock"
    # log_format as the original format's flat twin (flat keys come before any table).
    config = 'log_format = "json"\n' + with_metrics(frappe_config(site, sock), port, per_schedule=True)
    d = start_daemon(config, wait_for="metrics listening")
    queue = QUEUE_PREFIX + "default"
    wait_until(lambda: get(port, "/readyz")[0] == 200, 20, "/readyz 200")
    assert get(port, "/healthz") == (200, "ok\n")
    wait_until(lambda: len(queued_ids(redis_conn, queue)) >= 3, 20, "three runs")

    def consistent():
        # The counters move after Redis confirms a batch: compare when a scrape, the queue and a
        # second scrape agree (between two runs).
        a = scrape(port)
        n = len(queued_ids(redis_conn, queue))
        b = scrape(port)
        keys = [("btu_runs_total", frozenset({("site", site.name), ("outcome", "enqueued")})),
                ("btu_run_lateness_seconds_count", frozenset({("site", site.name)}))]
        if all(a[k] == b[k] == n for k in keys):
            return b
        return None

    first = wait_until(consistent, 20, "metrics to match the jobs in Redis", interval=0.05)
    n_first = value(first, "btu_runs_total", site=site.name, outcome="enqueued")
    # btu_runs_total moves with the runs.
    wait_until(lambda: value(scrape(port), "btu_runs_total", site=site.name, outcome="enqueued") >= n_first + 2,
               20, "btu_runs_total to move")
    samples = wait_until(consistent, 20, "metrics to match the jobs in Redis again", interval=0.05)
    n = int(value(samples, "btu_runs_total", site=site.name, outcome="enqueued"))
    assert value(samples, "btu_run_lateness_seconds_count", site=site.name) == n
    # Runs on time: every one within 60 s, and the sum is a plausible lateness (< 1 s each on average).
    assert value(samples, "btu_run_lateness_seconds_bucket", site=site.name, le="60.0") == n
    assert value(samples, "btu_run_lateness_seconds_sum", site=site.name) < n
    assert value(samples, "btu_runs_total", site=site.name, outcome="skipped_missed") == 0
    assert value(samples, "btu_runs_total", site=site.name, outcome="duplicate_claim") == 0
    # Sample rows: TS-000001/2 and ours planned, TS-000003 disabled, three rows that cannot run.
    assert value(samples, "btu_schedules", site=site.name, state="planned") == 3
    assert value(samples, "btu_schedules", site=site.name, state="disabled") >= 1
    assert value(samples, "btu_schedules", site=site.name, state="invalid") >= 3
    assert value(samples, "btu_redis_up") == 1
    assert value(samples, "btu_redis_eviction_policy_ok") == 1
    assert value(samples, "btu_source_up", site=site.name) == 1
    assert value(samples, "btu_rebuild_duration_seconds_count", site=site.name) >= 1
    assert abs(value(samples, "btu_rebuild_last_success_timestamp_seconds", site=site.name) - time.time()) < 60
    assert [k for k in samples if k[0] == "btu_build_info"], "no btu_build_info"
    assert value(samples, "btu_schedule_next_run_timestamp_seconds", site=site.name, schedule="TS-MET01") > 0
    assert value(samples, "btu_schedule_last_enqueue_timestamp_seconds", site=site.name, schedule="TS-MET01") > 0

    # Socket requests are counted by kind and result.
    subprocess.run([str(BTU_BIN), "status", "--socket", str(sock)], check=True, capture_output=True, timeout=10)
    subprocess.run([str(BTU_BIN), "cancel", "--socket", str(sock), "--site", site.name, "NO-SUCH"],
                   capture_output=True, timeout=10)
    samples = scrape(port)
    assert value(samples, "btu_requests_total", kind="status", result="ok") >= 1
    assert value(samples, "btu_request_duration_seconds_count", kind="status") >= 1
    assert [k for k in samples if k[0] == "btu_requests_total" and ("kind", "cancel") in k[1]], samples.keys()
    assert d.stop() == 0, d.log()

    # A stock worker runs every job the metrics counted.
    total = len(queued_ids(redis_conn, queue))
    run_burst_worker(RQ_RELEASES[-1], [queue], cwd=write_sites_dir(tmp_path / "sites", site))
    assert len(list((tmp_path / "markers").iterdir())) == total

    # JSON logs: one object per line, with the text format's fields.
    lines = [json.loads(ln) for ln in d.log().splitlines() if ln.strip()]
    enq = [ln for ln in lines if ln.get("message") == "run enqueued"]
    assert enq and all({"timestamp", "level", "site", "schedule", "job_id", "due", "lateness_ms"} <= ln.keys()
                       for ln in enq), enq[:2]


def test_readyz_follows_redis_and_the_eviction_policy_is_reported(make_site, start_daemon, private_redis, tmp_path):
    site = make_site(sample=False)
    add_task(site, "BTU-MET02", "e2e_tasks.record", f"{{'marker_dir': {str(tmp_path)!r}}}")
    add_schedule(site, "TS-MET02", "BTU-MET02", "* * * * * *")
    private_redis.client().config_set("maxmemory-policy", "allkeys-lru")
    port = free_port()
    d = start_daemon(with_metrics(frappe_config(site, tmp_path / "d.sock", redis_url=private_redis.url), port),
                     wait_for="metrics listening")
    wait_until(lambda: get(port, "/readyz")[0] == 200, 20, "/readyz 200")
    wait_until(lambda: value(scrape(port), "btu_runs_total", site=site.name, outcome="enqueued") >= 1, 20, "a run")
    assert value(scrape(port), "btu_redis_eviction_policy_ok") == 0

    private_redis.stop()
    status, body = wait_until(lambda: (r := get(port, "/readyz"))[0] == 503 and r, 10, "/readyz 503")
    answer = json.loads(body)
    assert answer["ready"] is False and answer["redis"] is False and answer["not_ready"] == ["redis"], answer
    assert answer["sources"] == {site.name: True} and answer["socket"] is True
    assert get(port, "/healthz")[0] == 200  # the process still serves
    assert value(scrape(port), "btu_redis_up") == 0

    private_redis.start()  # a fresh process: the default policy, noeviction
    wait_until(lambda: get(port, "/readyz")[0] == 200, 20, "/readyz 200 after Redis returned")
    wait_until(lambda: value(scrape(port), "btu_redis_eviction_policy_ok") == 1, 10, "the policy re-read")
    assert value(scrape(port), "btu_redis_up") == 1
    assert d.stop() == 0
    warnings = [ln for ln in d.log().splitlines() if "maxmemory-policy" in ln]
    assert len(warnings) == 1 and "allkeys-lru" in warnings[0], warnings


def test_systemd_notify_ready_status_watchdog_stopping(make_site, start_daemon, redis_conn, tmp_path):
    site = make_site()
    notify_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    listener.settimeout(0.2)
    got: list[str] = []

    def receive_until(pred, timeout: float, what: str):
        def step():
            try:
                got.extend(listener.recv(4096).decode().splitlines())
            except socket.timeout:
                pass
            return pred()
        return wait_until(step, timeout, what, interval=0)

    env = {"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "2000000"}
    d = start_daemon(frappe_config(site, tmp_path / "d.sock"), env=env)
    receive_until(lambda: "READY=1" in got, 20, "READY=1")
    statuses = [m for m in got if m.startswith("STATUS=")]
    assert statuses and "1 site, 2 schedules planned" in statuses[-1] and "redis up" in statuses[-1], got
    n = got.count("WATCHDOG=1")
    receive_until(lambda: got.count("WATCHDOG=1") >= n + 2, 5, "watchdog pings (every second)")
    assert d.stop() == 0, d.log()
    receive_until(lambda: "STOPPING=1" in got, 5, "STOPPING=1")
    listener.close()
    assert "ready (systemd notified)" in d.log()


def test_without_metrics_config_nothing_listens_and_a_bad_address_stops_start_up(start_daemon, tmp_path):
    schedules = tmp_path / "s.toml"
    schedules.write_text('[[schedule]]\nid = "x"\nfunction = "e2e_tasks.record"\ncron = "0 0 1 1 *"\n')
    cfg = f'[daemon]\nsocket_path = "{tmp_path / "d.sock"}"\n[file]\npath = "{schedules}"\n'
    bad = cfg + '[metrics]\nlisten = "localhost"\n'
    d = start_daemon(bad, name="bad")
    d.proc.wait(10)
    assert d.proc.returncode != 0 and "metrics.listen" in d.log(), d.log()
    assert os.path.exists(schedules)
