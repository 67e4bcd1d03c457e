"""The per-schedule policies end to end (issue 9, docs/policies.md) with real MariaDB, Redis,
the daemon binary and stock rq workers: settings read from MariaDB columns and the schedules
file and shown by notify/upcoming/status; catchup = all across a daemon restart; jitter with
two daemons; dst_gap/dst_overlap against real transitions, planned runs checked via upcoming."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import redis
from conftest import (BTU_BIN, QUEUE_PREFIX, REDIS_DB, REDIS_HOST, REDIS_PORT, Site, add_schedule, add_task,
                      frappe_config, queued_ids, run_burst_worker, wait_until, write_sites_dir)
from e2e_tasks import markers

QUEUE = QUEUE_PREFIX + "default"


def with_policy_columns(site: Site) -> None:
    """The optional columns btu_hooks ships as Custom Fields."""
    site.sql("ALTER TABLE `tabBTU Task Schedule` ADD COLUMN overlap_policy varchar(140), "
             "ADD COLUMN catchup_policy varchar(140), ADD COLUMN jitter_secs int(11), "
             "ADD COLUMN dst_gap varchar(140), ADD COLUMN dst_overlap varchar(140)")


def btu_json(sock: Path, *args: str) -> object:
    p = subprocess.run([str(BTU_BIN), *args, "--socket", str(sock), "--json"], capture_output=True, text=True,
                       timeout=15)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def history(r: redis.Redis, site: Site, schedule: str) -> list[dict]:
    return [json.loads(e) for e in reversed(r.lrange(f"btu:{site.name}:history:{schedule}", 0, -1))]


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_settings_from_columns_and_defaults_show_in_answers(make_site, start_daemon, redis_conn, tmp_path):
    site = make_site(sample=False)
    with_policy_columns(site)
    add_task(site, "BTU-P", "e2e_tasks.record", f"{{'marker_dir': {str(tmp_path / 'm')!r}}}")
    add_schedule(site, "TS-COLS", "BTU-P", "0 3 * * *")
    site.sql("UPDATE `tabBTU Task Schedule` SET overlap_policy='skip', catchup_policy='all', jitter_secs=7, "
             "dst_gap='skip', dst_overlap='both' WHERE name='TS-COLS'")
    add_schedule(site, "TS-DEFAULTS", "BTU-P", "0 4 * * *")  # NULL columns: the config's defaults
    add_schedule(site, "TS-BAD", "BTU-P", "0 5 * * *")
    site.sql("UPDATE `tabBTU Task Schedule` SET catchup_policy='sometimes' WHERE name='TS-BAD'")
    sock = tmp_path / "d.sock"
    config = frappe_config(site, sock).replace("[redis]", '[defaults]\noverlap = "replace"\njitter_secs = 3\n\n[redis]')
    d = start_daemon(config, wait_for="schedules rebuilt")
    states = btu_json(sock, "notify", "TS-COLS", "TS-DEFAULTS", "TS-BAD")["results"]
    by = {s["schedule"]: s for s in states}
    assert by["TS-COLS"]["settings"] == {"overlap": "skip", "catchup": "all", "jitter_secs": 7, "dst_gap": "skip",
                                         "dst_overlap": "both"}
    assert by["TS-DEFAULTS"]["settings"] == {"overlap": "replace", "catchup": "latest", "jitter_secs": 3,
                                             "dst_gap": "shift", "dst_overlap": "auto"}
    assert by["TS-BAD"]["runs"] is False and "catchup" in by["TS-BAD"]["reason"], by["TS-BAD"]
    bad_lines = [line for line in d.log().splitlines() if "TS-BAD" in line and "schedule skipped" in line]
    assert len(bad_lines) == 1, d.log()
    status = btu_json(sock, "status")
    assert status["defaults"]["overlap"] == "replace" and status["defaults"]["jitter_secs"] == 3
    runs = btu_json(sock, "upcoming", "--schedule", "TS-COLS", "--count", "2")["runs"]
    assert [r["settings"]["catchup"] for r in runs] == ["all", "all"]


def test_catchup_all_across_a_restart_enqueues_each_missed_run_oldest_first(make_site, start_daemon, redis_conn,
                                                                            tmp_path):
    site = make_site()  # the sample rows: a site a worker can run jobs of
    with_policy_columns(site)
    marker_dir = tmp_path / "m"
    add_task(site, "BTU-C", "e2e_tasks.record", f"{{'marker_dir': {str(marker_dir)!r}}}")
    add_schedule(site, "TS-ALL", "BTU-C", "*/2 * * * * *")
    site.sql("UPDATE `tabBTU Task Schedule` SET catchup_policy='all' WHERE name='TS-ALL'")
    sock = tmp_path / "d.sock"
    config = frappe_config(site, sock, grace_secs=30)
    a = start_daemon(config, name="a", wait_for="schedules rebuilt")
    wait_until(lambda: len(history(redis_conn, site, "TS-ALL")) >= 1, 15, "a first run")
    a.stop()
    stopped_after = history(redis_conn, site, "TS-ALL")[-1]["due"]
    time.sleep(9)  # four or five runs are missed while no daemon runs
    b = start_daemon(config, name="b", socket_path=tmp_path / "b.sock", wait_for="schedules rebuilt")
    wait_until(lambda: "catching up a missed run" in b.log(), 15, "the catch-up")
    b.stop()
    entries = history(redis_conn, site, "TS-ALL")
    dues = [e["due"] for e in entries]
    after = [e for e in entries if ts(e["due"]) > ts(stopped_after)]
    caught = [e for e in after if e.get("outcome", "enqueued") == "enqueued"]
    # Every 2 s run between the stop and the restart is enqueued, oldest first, none twice.
    assert len(dues) == len(set(dues)), dues
    assert len(caught) >= 4, entries
    gaps = {ts(y["due"]) - ts(x["due"]) for x, y in zip(caught, caught[1:])}
    assert gaps == {2.0}, caught
    assert b.log().count("catching up a missed run") >= 3, b.log()
    ids = [i for i in queued_ids(redis_conn, QUEUE) if "TS_2dALL" in i]
    assert len(ids) == len(set(ids)) and {e["job_id"] for e in caught} <= set(ids)
    # Queue order (LPUSH/RPUSH as RQ does): the catch-ups went in oldest first.
    positions = [ids.index(e["job_id"]) for e in caught]
    assert positions == sorted(positions), (positions, ids)
    sites = write_sites_dir(tmp_path / "sites", site)
    log = run_burst_worker("2.6.1", [QUEUE], sites)
    assert len(markers(str(marker_dir))) == len(ids), log


def test_jitter_with_two_daemons_gives_one_job_per_run_within_the_window(make_site, start_daemon, redis_conn,
                                                                          tmp_path):
    site = make_site(sample=False)
    with_policy_columns(site)
    add_task(site, "BTU-J", "e2e_tasks.record", f"{{'marker_dir': {str(tmp_path / 'm')!r}}}")
    add_schedule(site, "TS-JIT", "BTU-J", "*/5 * * * * *")
    site.sql("UPDATE `tabBTU Task Schedule` SET jitter_secs=4 WHERE name='TS-JIT'")
    config = frappe_config(site, tmp_path / "a.sock")
    start_daemon(config, name="a", wait_for="schedules rebuilt")
    start_daemon(config.replace("a.sock", "b.sock"), name="b", socket_path=tmp_path / "b.sock",
                 wait_for="schedules rebuilt")
    wait_until(lambda: len([e for e in history(redis_conn, site, "TS-JIT") if e.get("enqueued_at")]) >= 4, 40,
               "four jittered runs")
    entries = [e for e in history(redis_conn, site, "TS-JIT") if e.get("enqueued_at")]
    dues = [e["due"] for e in entries]
    assert len(dues) == len(set(dues)), entries  # exactly one job per run
    ids = queued_ids(redis_conn, QUEUE)
    assert len(ids) == len(set(ids))
    offsets = [ts(e["enqueued_at"]) - ts(e["due"]) for e in entries]
    # Enqueued in [due, due + 4 s) plus the write itself; spread, not all at the due instant.
    assert all(0 <= o < 4.5 for o in offsets), offsets
    assert max(offsets) - min(offsets) > 0.2, offsets


def upcoming_utc(sock: Path, schedule: str, count: int) -> list[str]:
    return [r["utc"] for r in btu_json(sock, "upcoming", "--schedule", schedule, "--count", str(count))["runs"]]


def btu_next(expr: str, zone: str, start: str, count: int, *policy: str) -> list[str]:
    p = subprocess.run([str(BTU_BIN), "next", expr, "--tz", zone, "--from", start, "--count", str(count), "--json",
                        *policy], capture_output=True, text=True, timeout=15)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_dst_policies_from_the_schedules_file_follow_real_transitions(start_daemon, redis_conn, tmp_path):
    """Los Angeles springs forward 2027-03-14 (02:30 does not exist) and Sydney falls back
    2027-04-04 (02:30 happens twice): the daemon's planned runs (upcoming) under each policy
    are the instants `btu next` gives with the same flags, and differ as the policies say."""
    schedules = tmp_path / "schedules.toml"
    schedules.write_text("""
[[schedule]]
id = "gap-shift"
function = "e2e_tasks.record"
cron = "30 2 * * *"
zone = "America/Los_Angeles"
[[schedule]]
id = "gap-skip"
function = "e2e_tasks.record"
cron = "30 2 * * *"
zone = "America/Los_Angeles"
dst_gap = "skip"
[[schedule]]
id = "overlap-both"
function = "e2e_tasks.record"
cron = "30 2 * * *"
zone = "Australia/Sydney"
dst_overlap = "both"
[[schedule]]
id = "overlap-last"
function = "e2e_tasks.record"
cron = "30 2 * * *"
zone = "Australia/Sydney"
dst_overlap = "last"
""")
    sock = tmp_path / "f.sock"
    config = f"""
[daemon]
socket_path = "{sock}"
[redis]
url = "redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
[file]
path = "{schedules}"
site = "policies-e2e"
"""
    start_daemon(config, wait_for="schedules rebuilt")
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    count = 1000
    flags = {"gap-shift": [], "gap-skip": ["--dst-gap", "skip"], "overlap-both": ["--dst-overlap", "both"],
             "overlap-last": ["--dst-overlap", "last"]}
    zones = {"gap-shift": "America/Los_Angeles", "gap-skip": "America/Los_Angeles",
             "overlap-both": "Australia/Sydney", "overlap-last": "Australia/Sydney"}
    planned = {}
    for sched, extra in flags.items():
        planned[sched] = upcoming_utc(sock, sched, count)
        # The first run may be due between `now` and the request: compare from the daemon's first.
        start = datetime.fromtimestamp(ts(planned[sched][0]) - 1, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert planned[sched] == btu_next("30 2 * * *", zones[sched], start, count, *extra), sched
    assert now < "2027-03-14"  # the transitions below are still ahead
    assert "2027-03-14T10:00:00Z" in planned["gap-shift"]  # 02:30 moved to 03:00 PDT
    assert not any(t.startswith("2027-03-14") for t in planned["gap-skip"])
    assert {"2027-04-03T15:30:00Z", "2027-04-03T16:30:00Z"} <= set(planned["overlap-both"])
    assert "2027-04-03T16:30:00Z" in planned["overlap-last"] and "2027-04-03T15:30:00Z" not in planned["overlap-last"]
