"""End to end: the operator actions (issue 9) through the real clients — the `btu` CLI and the
`btu_client` wheel — against TWO daemon binaries on one site, real MariaDB rows, Redis and a
stock `rq worker`: a pause made through daemon A holds on daemon B and across a restart, resume
does not replay, skip_next skips exactly the runs it named (each instant decided once), backfill
enqueues the missing runs once (dry run writes nothing, a second backfill finds them all), and the
audit trail names the real uid/pid of each calling process. docs/daemon.md ("Operator actions").
"""

from __future__ import annotations

import calendar
import json
import os
import subprocess
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis
from conftest import (BTU_BIN, QUEUE_PREFIX, Site, add_schedule, add_task, frappe_config, queued_ids,
                      run_burst_worker, wait_until, write_sites_dir)
from e2e_tasks import markers

try:
    import btu_client
except ImportError as e:  # pragma: no cover - the suite installs the wheel first
    pytest.fail(f"btu_client is not installed in this venv ({e})", pytrace=False)

QUEUE = QUEUE_PREFIX + "default"


def btu(sock: Path, *args: str) -> subprocess.Popen:
    """Starts `btu <args> --socket <sock> --json` (its pid is the caller the audit must name)."""
    return subprocess.Popen([str(BTU_BIN), *args, "--socket", str(sock), "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def answer(p: subprocess.Popen) -> dict:
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    return json.loads(out)


def history(r: redis.Redis, site: Site, schedule: str) -> list[dict]:
    return [json.loads(e) for e in reversed(r.lrange(f"btu:{site.name}:history:{schedule}", 0, -1))]


def planned(sock: Path, schedule: str) -> list | None:
    """The schedule's next runs from the daemon at `sock`; None until its first load is done."""
    try:
        return btu_client.upcoming(schedule, 3, socket_path=str(sock))
    except btu_client.ScheduleError:
        return None


def epoch(rfc: str) -> int:
    return calendar.timegm(time.strptime(rfc, "%Y-%m-%dT%H:%M:%SZ"))


def test_pause_skip_backfill_and_audit_across_two_daemons(make_site, start_daemon, redis_conn, tmp_path):
    site = make_site()
    marker_dir = tmp_path / "markers"
    add_task(site, "BTU-OP", "e2e_tasks.record", f"{{'marker_dir': {str(marker_dir)!r}}}")
    add_schedule(site, "TS-OP", "BTU-OP", "* * * * * *")
    socks = (tmp_path / "a.sock", tmp_path / "b.sock")
    cfg = [frappe_config(site, s) for s in socks]
    a = start_daemon(cfg[0], name="a", socket_path=socks[0], wait_for="socket server listening")
    b = start_daemon(cfg[1], name="b", socket_path=socks[1], wait_for="socket server listening")
    wait_until(lambda: len(history(redis_conn, site, "TS-OP")) >= 2, 20, "runs before the pause")

    # --- pause through daemon A (CLI); B must not enqueue either -------------------------
    p = btu(socks[0], "pause", "TS-OP", "--note", "db upgrade")
    paused = answer(p)
    assert paused["schedule"] == "TS-OP" and paused["pause"]["note"] == "db upgrade"
    assert paused["pause"]["uid"] == os.getuid() and paused["pause"]["pid"] == p.pid
    paused_at = time.time()
    # B shows the pause (status and upcoming read the shared Redis state).
    st = btu_client.status(socket_path=str(socks[1]))
    assert [x["schedule"] for x in st["sites"][0]["paused"]] == ["TS-OP"]
    assert all(r["paused"] for r in btu_client.upcoming("TS-OP", 3, socket_path=str(socks[1])))
    wait_until(lambda: Counter(e["outcome"] for e in history(redis_conn, site, "TS-OP"))["skipped_paused"] >= 2,
               20, "paused instants")

    # A restarts while paused: the pause lives in Redis, so it still holds.
    assert a.stop() == 0, a.log()
    a = start_daemon(cfg[0], name="a2", socket_path=socks[0], wait_for="socket server listening")
    restarted_at = time.time()
    assert all(r["paused"] for r in wait_until(lambda: planned(socks[0], "TS-OP"), 20, "A plans TS-OP again"))
    wait_until(lambda: any(e["outcome"] == "skipped_paused" and epoch(e["due"]) > restarted_at + 1
                           for e in history(redis_conn, site, "TS-OP")), 20, "paused instants after the restart")

    # --- resume through B (the wheel): runs again, the paused ones not replayed ------------
    resumed = btu_client.resume("TS-OP", socket_path=str(socks[1]))
    assert resumed["was_paused"] is True
    resumed_at = time.time()
    wait_until(lambda: any(e["outcome"] == "enqueued" and epoch(e["due"]) > resumed_at + 1
                           for e in history(redis_conn, site, "TS-OP")), 20, "runs after resume")

    # --- skip the next 3 runs through A (the wheel) -------------------------------------
    skipped = btu_client.skip_next("TS-OP", 3, socket_path=str(socks[0]))
    named = [r["utc"].strftime("%Y-%m-%dT%H:%M:%SZ") for r in skipped["added"]]
    assert len(named) == 3 and named == sorted(named)
    skip_key = f"btu:{site.name}:skip:TS-OP"
    wait_until(lambda: redis_conn.zcard(skip_key) == 0, 20, "the skipped instants honoured")
    wait_until(lambda: any(e["due"] > named[-1] and e["outcome"] == "enqueued"
                           for e in history(redis_conn, site, "TS-OP")), 20, "runs after the skipped ones")

    entries = history(redis_conn, site, "TS-OP")
    by_due = {e["due"]: e["outcome"] for e in entries}
    assert all(n == 1 for n in Counter(e["due"] for e in entries).values()), "an instant decided twice"
    assert [by_due.get(d) for d in named] == ["skipped_by_request"] * 3, by_due
    paused_dues = sorted(e["due"] for e in entries if e["outcome"] == "skipped_paused")
    assert paused_dues and all(paused_at - 1 <= epoch(d) <= resumed_at + 1 for d in paused_dues), paused_dues
    # Not replayed: nothing enqueued for a paused or skipped instant.
    enqueued = [e for e in entries if e["outcome"] == "enqueued"]
    assert not any(paused_at + 1 < epoch(e["due"]) < resumed_at - 1 for e in enqueued)
    assert len(queued_ids(redis_conn, QUEUE)) == len(enqueued)

    # --- backfill the paused window through B ------------------------------------------
    start, end = paused_dues[0], paused_dues[-1]
    end_excl = (datetime.strptime(end, "%Y-%m-%dT%H:%M:%SZ") + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    since = datetime.fromtimestamp(epoch(start) - 5, timezone.utc)  # a few runs before the pause too
    before = len(queued_ids(redis_conn, QUEUE))
    dry = answer(btu(socks[1], "backfill", "TS-OP", "--from", since.strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "--until", end_excl, "--dry-run"))
    assert dry["dry_run"] is True
    window = [r["due"] for r in dry["runs"]]
    assert window[-1] == end and len(window) == epoch(end) - epoch(start) + 6
    would = {r["due"] for r in dry["runs"] if r["status"] == "would_enqueue"}
    assert set(paused_dues) <= would, (paused_dues, dry["runs"])
    ran = {e["due"] for e in entries if e["outcome"] == "enqueued"}
    assert {r["due"] for r in dry["runs"] if r["status"] == "exists"} == ran & set(window)
    assert len(queued_ids(redis_conn, QUEUE)) == before, "the dry run wrote a job"
    done = btu_client.backfill("TS-OP", since, end_excl, socket_path=str(socks[1]))
    status = {r["due"].strftime("%Y-%m-%dT%H:%M:%SZ"): r["status"] for r in done}
    assert {d for d, s in status.items() if s == "enqueued"} == would
    assert all(s == "exists" for d, s in status.items() if d not in would), status
    again = btu_client.backfill("TS-OP", since, end_excl, socket_path=str(socks[0]))
    assert {r["status"] for r in again} == {"exists"}
    # --- the audit trail: every action, newest first, with the real callers ------------
    trail = answer(btu(socks[0], "audit", "TS-OP"))
    actions = [e["action"] for e in trail["entries"]]
    assert actions == ["backfill", "backfill", "skip", "resume", "pause"], actions  # the dry run wrote nothing
    me = os.getpid()
    assert trail["entries"][-1]["uid"] == os.getuid() and trail["entries"][-1]["pid"] == p.pid
    assert all(e["uid"] == os.getuid() and e["pid"] == me for e in trail["entries"][:-1]), trail["entries"]
    assert trail["entries"][-1]["note"] == "db upgrade"
    assert json.loads(trail["entries"][2]["args"])["instants"] == named
    text = subprocess.run([str(BTU_BIN), "audit", "--socket", str(socks[1]), "--count", "2"], capture_output=True,
                          text=True, timeout=10)
    assert text.returncode == 0 and "ACTION" in text.stdout and "backfill" in text.stdout, text.stdout + text.stderr

    assert a.stop() == 0 and b.stop() == 0

    # Each due instant has one job (its id is keyed by the instant), and a stock worker runs
    # each once.
    queued = queued_ids(redis_conn, QUEUE)
    assert len(set(queued)) == len(queued)
    assert len(queued) == len({e["due"] for e in history(redis_conn, site, "TS-OP") if e["outcome"] == "enqueued"})
    sites_dir = write_sites_dir(tmp_path / "sites", site)
    run_burst_worker("2.6.1", [QUEUE], sites_dir)
    assert len(markers(str(marker_dir))) == len(queued)



def test_skips_survive_a_restart_of_every_daemon(make_site, start_daemon, redis_conn, tmp_path):
    site = make_site()
    add_task(site, "BTU-SK", "e2e_tasks.record", f"{{'marker_dir': {str(tmp_path / 'm')!r}}}")
    add_schedule(site, "TS-SK", "BTU-SK", "*/10 * * * * *")
    socks = (tmp_path / "a.sock", tmp_path / "b.sock")
    cfg = [frappe_config(site, s) for s in socks]
    daemons = [start_daemon(cfg[i], name=f"d{i}", socket_path=socks[i], wait_for="socket server listening")
               for i in (0, 1)]
    skipped = btu_client.skip_next("TS-SK", 2, socket_path=str(socks[0]))
    named = [r["utc"].strftime("%Y-%m-%dT%H:%M:%SZ") for r in skipped["added"]]
    assert epoch(named[1]) - epoch(named[0]) == 10
    # Every daemon goes away before the second skipped instant; a new one honours it.
    for d in daemons:
        assert d.stop() == 0, d.log()
    assert time.time() < epoch(named[1]) - 2, "the restart must happen before the second skipped instant"
    start_daemon(cfg[0], name="d2", socket_path=socks[0], wait_for="socket server listening")
    marks = wait_until(lambda: planned(socks[0], "TS-SK"), 20, "the restarted daemon plans TS-SK")
    assert [r["skipped"] for r in marks if r["utc"].strftime("%Y-%m-%dT%H:%M:%SZ") == named[1]] == [True]
    wait_until(lambda: any(e["due"] > named[1] and e["outcome"] == "enqueued"
                           for e in history(redis_conn, site, "TS-SK")), 30, "a run after the skipped ones")
    by_due = {e["due"]: e["outcome"] for e in history(redis_conn, site, "TS-SK")}
    assert by_due.get(named[1]) == "skipped_by_request", by_due
    assert by_due.get(named[0]) in ("skipped_by_request", None), by_due  # None: due while no daemon ran
    assert redis_conn.zcard(f"btu:{site.name}:skip:TS-SK") == 0
