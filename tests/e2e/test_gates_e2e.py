"""End to end: what happens at the due instant (issue 9's gates) with real MariaDB rows, Redis, the
daemon binary and stock `rq worker`s: the overlap policy `skip` with a deliberately slow task,
`replace` with no free worker, pause and skip-by-request (`btu pause`, `btu resume`, `btu skip`
through either daemon) with TWO daemons on one site, the outcomes in `btu history` (text and --json)
and in /metrics. docs/rq.md ("Gates") and docs/daemon.md ("Outcomes") describe what is checked."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path

import redis
from conftest import (BTU_BIN, QUEUE_PREFIX, REDIS_DB, REDIS_HOST, REDIS_PORT, Site, add_schedule, add_task,
                      free_port, frappe_config, queued_ids, rq_bin, wait_until, worker_env, write_sites_dir)
from e2e_tasks import markers
from test_metrics_e2e import scrape, value

QUEUE = QUEUE_PREFIX + "default"


def with_overlap_column(site: Site) -> None:
    """The optional column btu_hooks ships as a Custom Field (docs/policies.md)."""
    site.sql("ALTER TABLE `tabBTU Task Schedule` ADD COLUMN overlap_policy varchar(140)")


def history(r: redis.Redis, site: Site, schedule: str) -> list[dict]:
    """The schedule's history entries as stored, oldest first."""
    return [json.loads(e) for e in reversed(r.lrange(f"btu:{site.name}:history:{schedule}", 0, -1))]


def btu_history(sock: Path, schedule: str, *extra: str) -> str:
    p = subprocess.run([str(BTU_BIN), "history", "--socket", str(sock), schedule, "--count", "100", *extra],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    return p.stdout


def start_worker(release: str, sites_dir: Path, log: Path) -> subprocess.Popen:
    """A long-running stock worker (one at a time: one job runs at a time)."""
    cmd = [str(rq_bin(release)), "worker", "--url", f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}", QUEUE]
    return subprocess.Popen(cmd, cwd=sites_dir, env=worker_env(), stdout=open(log, "w"), stderr=subprocess.STDOUT)


def stop_worker(p: subprocess.Popen, log: Path) -> str:
    p.terminate()  # warm shutdown: the running job finishes first
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    text = log.read_text(errors="replace")
    assert "unhandled exception" not in text, text
    return text


def with_metrics(config: str, port: int) -> str:
    return config + f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n'


def test_overlap_skip_with_a_slow_task_never_runs_two_at_once(make_site, start_daemon, redis_conn, tmp_path):
    site = make_site()  # the sample rows: a site a worker can run jobs of
    with_overlap_column(site)
    marker_dir = tmp_path / "markers"
    add_task(site, "BTU-SLOW", "e2e_tasks.slow", f"{{'marker_dir': {str(marker_dir)!r}, 'seconds': 3}}")
    add_schedule(site, "TS-SLOW", "BTU-SLOW", "* * * * * *")
    site.sql("UPDATE `tabBTU Task Schedule` SET overlap_policy = 'skip' WHERE name = 'TS-SLOW'")
    sock, port = tmp_path / "d.sock", free_port()
    d = start_daemon(with_metrics(frappe_config(site, sock), port), wait_for="metrics listening")
    sites = write_sites_dir(tmp_path / "sites", site)
    worker = start_worker("2.6.1", sites, tmp_path / "worker.log")
    try:
        # Three slow runs one after the other, the due instants in between skipped.
        wait_until(lambda: len(markers(str(marker_dir))) >= 3, 60, "three slow runs")
        text = btu_history(sock, "TS-SLOW")
        js = json.loads(btu_history(sock, "TS-SLOW", "--json"))
        skipped_counted = value(scrape(port), "btu_runs_total", site=site.name, outcome="skipped_overlap")
    finally:
        assert d.stop() == 0, d.log()
        stop_worker(worker, tmp_path / "worker.log")

    runs = sorted((m["kwargs_repr"], m["at"]) for m in markers(str(marker_dir)))
    spans = sorted((float(_kw(k, "started")), float(_kw(k, "ended"))) for k, _ in runs)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end - 0.05, f"two runs overlapped: {spans}"
    entries = history(redis_conn, site, "TS-SLOW")
    outcomes = Counter(e["outcome"] for e in entries)
    assert set(outcomes) <= {"enqueued", "skipped_overlap"}, entries
    assert outcomes["skipped_overlap"] >= 4, outcomes  # ~2 per 3-second run
    assert len({e["due"] for e in entries}) == len(entries), "one entry per due instant"
    for e in entries:
        if e["outcome"] == "enqueued":
            assert e["lateness_ms"] >= 0 and e["enqueued_at"], e
        else:
            assert e["lateness_ms"] is None and e["enqueued_at"] is None, e
            assert not redis_conn.exists(f"rq:job:{e['job_id']}"), e  # never written
    # Every enqueued job ran or is the one left queued/running at the stop: never two at once.
    enqueued = [e["job_id"] for e in entries if e["outcome"] == "enqueued"]
    statuses = [(redis_conn.hget(f"rq:job:{j}", "status") or b"").decode() for j in enqueued]
    assert statuses.count("finished") >= 3 and len([s for s in statuses if s != "finished"]) <= 1, statuses
    # The log names the busy job; /metrics counted the skips (scraped a moment before the
    # last entries were written).
    assert "run not enqueued" in d.log() and "skipped_overlap" in d.log()
    assert 1 <= skipped_counted <= outcomes["skipped_overlap"], (skipped_counted, outcomes)

    # btu history shows the outcomes, text and --json.
    assert text.splitlines()[0].split() == ["DUE", "(UTC)", "OUTCOME", "LATENESS", "MS", "ENQUEUED", "(UTC)",
                                            "JOB", "ID"], text
    assert "skipped_overlap" in text and "enqueued" in text, text
    assert all(set(r) == {"job_id", "due", "enqueued_at", "outcome", "lateness_ms"} for r in js["runs"]), js
    assert {r["outcome"] for r in js["runs"]} == {"skipped_overlap", "enqueued"}, js


def _kw(kwargs_repr: str, key: str) -> str:
    import ast
    return str(ast.literal_eval(kwargs_repr)[key])


def test_overlap_replace_cancels_the_queued_job_without_a_free_worker(make_site, start_daemon, redis_conn,
                                                                       tmp_path):
    site = make_site()  # the sample rows: a site a worker can run jobs of
    with_overlap_column(site)
    marker_dir = tmp_path / "markers"
    add_task(site, "BTU-REPL", "e2e_tasks.record", f"{{'marker_dir': {str(marker_dir)!r}}}")
    add_schedule(site, "TS-REPL", "BTU-REPL", "* * * * * *")
    site.sql("UPDATE `tabBTU Task Schedule` SET overlap_policy = 'replace' WHERE name = 'TS-REPL'")
    port = free_port()
    d = start_daemon(with_metrics(frappe_config(site, tmp_path / "d.sock"), port), wait_for="metrics listening")
    # No worker: each run cancels the one before it, so one job waits in the queue at a time.
    wait_until(lambda: value(scrape(port), "btu_runs_total", site=site.name, outcome="replaced") >= 3, 20,
               "three replaced runs counted")
    assert len(queued_ids(redis_conn, QUEUE)) == 1
    assert d.stop() == 0, d.log()

    entries = history(redis_conn, site, "TS-REPL")
    assert entries[0]["outcome"] == "enqueued" and all(e["outcome"] == "replaced" for e in entries[1:]), entries
    assert all(e["lateness_ms"] is not None for e in entries), entries
    ids = [e["job_id"] for e in entries]
    assert queued_ids(redis_conn, QUEUE) == [ids[-1]]
    canceled = [x.decode() for x in redis_conn.zrange(f"rq:canceled:{QUEUE}", 0, -1)]
    assert sorted(canceled) == sorted(ids[:-1]), (canceled, ids)
    # Stock rq of every release reads them as canceled, in the canceled registry, not queued.
    probe = ("import sys\nfrom redis import Redis\nfrom rq import Queue\nfrom rq.job import Job\n"
             "from rq.registry import CanceledJobRegistry\n"
             f"c = Redis(host={REDIS_HOST!r}, port={REDIS_PORT}, db={REDIS_DB})\n"
             "q = sys.argv[1]\n"
             "print(sorted(str(Job.fetch(i, connection=c).get_status()).split('.')[-1].lower() for i in sys.argv[2:]),"
             " sorted(CanceledJobRegistry(q, connection=c).get_job_ids()), Queue(q, connection=c).get_job_ids())")
    for release in ("1.15.1", "2.6.1", "3.0"):
        python = rq_bin(release).parent / "python"
        out = subprocess.run([str(python), "-c", probe, QUEUE, *ids[:-1]], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == f"{['canceled'] * len(ids[:-1])} {sorted(ids[:-1])} {[ids[-1]]}", (release, out)
    # A worker runs only the last one.
    sites = write_sites_dir(tmp_path / "sites", site)
    subprocess.run([str(rq_bin("3.0")), "worker", "--burst", "--url", f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
                    QUEUE], cwd=sites, env=worker_env(), capture_output=True, timeout=120, check=True)
    assert len(markers(str(marker_dir))) == 1
    assert "replacing its still-queued previous job" in d.log()


def test_pause_and_skip_with_two_daemons_decide_each_instant_once(make_site, start_daemon, redis_conn, tmp_path):
    site = make_site()  # the sample rows: a site a worker can run jobs of
    marker_dir = tmp_path / "markers"
    add_task(site, "BTU-PS", "e2e_tasks.record", f"{{'marker_dir': {str(marker_dir)!r}}}")
    add_schedule(site, "TS-PS", "BTU-PS", "* * * * * *")
    ports = (free_port(), free_port())
    daemons = [start_daemon(with_metrics(frappe_config(site, tmp_path / f"d{i}.sock"), ports[i]), name=f"d{i}",
                            wait_for="metrics listening") for i in (0, 1)]
    pause_key, skip_key = f"btu:{site.name}:pause:TS-PS", f"btu:{site.name}:skip:TS-PS"
    wait_until(lambda: len(history(redis_conn, site, "TS-PS")) >= 2, 20, "runs before the pause")

    # Pause through daemon 0 (`btu pause`), for three seconds or more; daemon 1 honours it too.
    paused = btu_json(tmp_path / "d0.sock", "pause", "TS-PS", "--note", "e2e")
    assert paused["schedule"] == "TS-PS" and redis_conn.exists(pause_key), paused
    paused_at = time.time()
    wait_until(lambda: Counter(e["outcome"] for e in history(redis_conn, site, "TS-PS"))["skipped_paused"] >= 3,
               20, "three paused instants")
    time.sleep(1.0)
    btu_json(tmp_path / "d1.sock", "resume", "TS-PS")  # through the other daemon
    assert not redis_conn.exists(pause_key)
    resumed_at = time.time()
    # Skip the next two runs through daemon 1 (`btu skip`).
    added = btu_json(tmp_path / "d1.sock", "skip", "TS-PS", "--count", "2")["added"]
    named = [_rfc(_epoch_utc(r["utc"])) for r in added]
    assert len(named) == 2, named
    wait_until(lambda: redis_conn.zcard(skip_key) == 0, 20, "the skipped instants honoured")
    wait_until(lambda: any(e["due"] > named[-1] and e["outcome"] == "enqueued"
                           for e in history(redis_conn, site, "TS-PS")), 20, "runs after the skipped instants")
    samples = [scrape(p) for p in ports]
    for d in daemons:
        assert d.stop() == 0, d.log()

    entries = history(redis_conn, site, "TS-PS")
    dues = Counter(e["due"] for e in entries)
    assert all(n == 1 for n in dues.values()), f"an instant decided twice: {dues}"
    by_due = {e["due"]: e["outcome"] for e in entries}
    assert [by_due.get(d) for d in named] == ["skipped_by_request"] * 2, (named, by_due)
    paused = [e for e in entries if e["outcome"] == "skipped_paused"]
    assert len(paused) >= 3 and all(_epoch(e["due"]) >= int(paused_at) - 1 for e in paused), paused
    assert all(_epoch(e["due"]) <= resumed_at + 1 for e in paused), (paused, resumed_at)
    # Nothing paused or skipped reached a queue; the paused instants were not replayed after resume.
    assert len(queued_ids(redis_conn, QUEUE)) == len([e for e in entries if e["outcome"] == "enqueued"])
    for e in entries:
        if e["outcome"].startswith("skipped"):
            assert not redis_conn.exists(f"rq:job:{e['job_id']}"), e
    # /metrics of the two daemons together count each decided instant once.
    for outcome in ("skipped_paused", "skipped_by_request"):
        seen = sum(value(s, "btu_runs_total", site=site.name, outcome=outcome) for s in samples)
        assert seen == len([e for e in entries if e["outcome"] == outcome]), (outcome, seen)
    assert sum(value(s, "btu_runs_total", site=site.name, outcome="duplicate_claim") for s in samples) > 0


def btu_json(sock: Path, *args: str) -> dict:
    p = subprocess.run([str(BTU_BIN), *args, "--socket", str(sock), "--json"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def _epoch_utc(rfc: str) -> int:
    """An RFC 3339 UTC instant (`…Z`, maybe with a fraction) as unix seconds."""
    return _epoch(rfc[:19] + "Z")


def _rfc(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _epoch(rfc: str) -> int:
    import calendar
    return calendar.timegm(time.strptime(rfc, "%Y-%m-%dT%H:%M:%SZ"))
