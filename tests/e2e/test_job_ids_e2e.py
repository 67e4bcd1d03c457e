"""Job ids in Frappe mode (docs/rq.md, "Job ids"): `<site>||btu-…` while every registered rq
worker runs rq < 2.8, the portable `btu-…` otherwise, decided per Redis at connect and rebuild;
stock workers of every release run what the daemon writes; a form switch never enqueues a run
twice. Also the original CLI's commands against a live daemon's Redis: `btu list-jobs`,
`btu show-job`, `btu print-config`, `btu check-config`."""

from __future__ import annotations

import json
import re
import signal
import subprocess

import pytest

from conftest import (BTU_BIN, QUEUE_PREFIX, REDIS_DB, REDIS_HOST, REDIS_PORT, RQ_RELEASES, add_schedule, add_task,
                      frappe_config, queued_ids, rq_bin, set_installed_apps, wait_until, worker_env,
                      write_sites_dir)

DUE = re.compile(r"-(\d{8}T\d{6}(?:_\d{9})?)Z$")
QUEUE = QUEUE_PREFIX + "default"


def btu(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([str(BTU_BIN), *args], capture_output=True, text=True, timeout=60)
    if ok:
        assert p.returncode == 0, f"btu {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p


def history_ids(r, site: str, schedule: str) -> list[str]:
    return [json.loads(e)["job_id"] for e in r.lrange(f"btu:{site}:history:{schedule}", 0, -1)]


def fake_worker(r, name: str, version: str, queues: list[str]) -> None:
    """A worker hash with the fields stock rq writes (docs/rq.md W6)."""
    key = f"rq:worker:{name}"
    r.sadd("rq:workers", key)
    r.hset(key, mapping={"version": version, "queues": ",".join(queues), "birth": "2027-01-01T00:00:00Z"})


def every_second(site, tmp_path, name: str = "TS-IDS01") -> None:
    add_task(site, "BTU-IDS01", "e2e_tasks.record", f"{{'marker_dir': {str(tmp_path / 'markers')!r}}}")
    add_schedule(site, name, "BTU-IDS01", "* * * * * *")


@pytest.mark.parametrize("release", RQ_RELEASES)
def test_a_stock_worker_of_each_release_decides_the_form_and_runs_the_jobs(release, make_site, start_daemon,
                                                                             redis_conn, tmp_path):
    site = make_site()
    every_second(site, tmp_path)
    sites_dir = write_sites_dir(tmp_path / "sites", site)
    log_path = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [str(rq_bin(release)), "worker", "--url", f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
         "--name", f"e2e-ids-{release.replace('.', '-')}", QUEUE],
        cwd=sites_dir, env=worker_env(), stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: redis_conn.scard("rq:workers") == 1, 30, f"rq {release} worker to register")
        d = start_daemon(frappe_config(site, tmp_path / "d.sock"), wait_for="frappe job id form")
        wait_until(lambda: len(site.sql("SELECT name FROM `tabBTU Task Log` WHERE task='BTU-IDS01'")) >= 3, 60,
                   f"three runs executed by the rq {release} worker")
        assert d.stop() == 0, d.log()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    wlog = log_path.read_text(errors="replace")
    assert "unhandled exception" not in wlog, wlog

    ids = history_ids(redis_conn, site.name, "TS-IDS01")
    assert len(ids) >= 3 and len(set(ids)) == len(ids), ids
    if release == "3.0":  # rq >= 2.8 accepts only [A-Za-z0-9_-]
        assert all(i.startswith("btu-") for i in ids), ids
        assert "portable btu-" in d.log() and "runs rq 3.0" in d.log(), d.log()
    else:  # Desk -> RQ Job lists ids that start with the site name
        assert all(i.startswith(f"{site.name}||btu-TS_2dIDS01-") for i in ids), ids
        assert f"all 1 registered rq workers run rq < 2.8 ({release})" in d.log(), d.log()
    finished = [i for i in ids if redis_conn.hget(f"rq:job:{i}", "status") == b"finished"]
    assert len(finished) >= 3, {i: redis_conn.hget(f"rq:job:{i}", "status") for i in ids}
    rows = site.sql("SELECT success_fail FROM `tabBTU Task Log` WHERE task='BTU-IDS01'")
    assert all(r[0] == "Success" for r in rows), rows


def test_a_newer_worker_keeps_the_portable_form_and_a_switch_never_enqueues_twice(make_site, start_daemon,
                                                                                    redis_conn, tmp_path):
    site = make_site()
    every_second(site, tmp_path)
    # Workers that take nothing from our queue, so runs stay queued for the CLI to list.
    fake_worker(redis_conn, "old", "1.15.1", [QUEUE_PREFIX + "short"])
    fake_worker(redis_conn, "new", "2.8.0", [QUEUE_PREFIX + "short"])
    sock = tmp_path / "d.sock"
    cfg_text = frappe_config(site, sock)
    d = start_daemon(cfg_text, wait_for="frappe job id form")
    wait_until(lambda: len(queued_ids(redis_conn, QUEUE)) >= 2, 20, "two portable runs")
    cfg = str(d.config)

    check = btu("check-config", "--config", cfg).stdout
    assert ("warn  job ids (frappe mode): portable btu-<site>-<schedule>-<due>: worker new runs rq 2.8.0 "
            "(>= 2.8 accepts only [A-Za-z0-9_-] in ids); Desk -> RQ Job will not list these jobs") in check, check
    assert "ok    rq workers: 2 registered (rq 1.15.1, 2.8.0)" in check, check
    assert f"ok    site {site.name} runner app: btu_hooks is installed (runner btu_hooks.runner.run_task)" in check
    assert (f"warn  queue {QUEUE}: no registered rq worker listens on it (used by 2 schedule(s) of site "
            f"{site.name}); workers listen on: {QUEUE_PREFIX}short") in check, check  # TS-IDS01 and a sample row
    assert (f"warn  queue {QUEUE_PREFIX}long: no registered rq worker listens on it (used by 1 schedule(s) of site "
            f"{site.name}); workers listen on: {QUEUE_PREFIX}short") in check, check

    # The newer worker goes away. A second daemon started now sees only the old worker and
    # writes the Frappe form, while the first keeps the portable form until its next rebuild:
    # both fire every run, and the claim (keyed on the portable id) lets each run in once.
    redis_conn.srem("rq:workers", "rq:worker:new")
    redis_conn.delete("rq:worker:new")
    before = len(queued_ids(redis_conn, QUEUE))
    d2 = start_daemon(frappe_config(site, tmp_path / "d2.sock"), name="daemon2", wait_for="frappe job id form")
    assert "all 1 registered rq workers run rq < 2.8 (1.15.1)" in d2.log(), d2.log()
    wait_until(lambda: len(queued_ids(redis_conn, QUEUE)) >= before + 4, 20, "four runs with both daemons up")
    assert d2.stop() == 0, d2.log()
    # The first daemon's next rebuild switches it too, logged once.
    btu("rebuild", "--socket", str(sock))
    n = len(queued_ids(redis_conn, QUEUE))
    wait_until(lambda: len(queued_ids(redis_conn, QUEUE)) >= n + 2, 20, "two more runs")
    assert d.log().count("frappe job id form") == 2, d.log()
    assert queued_ids(redis_conn, QUEUE)[-1].startswith(f"{site.name}||btu-TS_2dIDS01-")
    check = btu("check-config", "--config", cfg).stdout
    assert "ok    job ids (frappe mode): <site>||btu-<schedule>-<due>: all 1 registered rq workers run rq < 2.8" in check

    ids = [i for i in queued_ids(redis_conn, QUEUE) if "TS_2dIDS01" in i]
    dues = [DUE.search(i).group(1) for i in ids]
    assert len(dues) == len(set(dues)), f"a run was enqueued twice: {ids}"
    assert any("||" in i for i in ids) and any(i.startswith("btu-") for i in ids), ids
    assert [i for i in ids if not i.startswith("btu-")] == [i for i in ids if i.startswith(f"{site.name}||btu-")]

    # btu list-jobs / show-job / print-config against this Redis.
    listed = json.loads(btu("list-jobs", "--config", cfg, "--json").stdout)
    [q] = listed["queues"]
    mine = [j for j in q["jobs"] if "TS_2dIDS01" in j["job_id"]]
    assert q["queue"] == QUEUE and [j["job_id"] for j in mine][:len(ids)] == ids[:len(mine)]
    assert all(j["status"] == "queued" and "TS-IDS01" in j["description"] for j in mine)
    text = btu("list-jobs", "--config", cfg).stdout
    assert text.startswith(f"queue {QUEUE}: ") and f"  {ids[0]}  queued  enqueued " in text, text

    job = next(i for i in ids if "||" in i)
    shown = json.loads(btu("show-job", job, "--config", cfg, "--json").stdout)
    assert shown["exists"] and shown["fields"]["status"] == "queued" and shown["fields"]["origin"] == QUEUE
    assert shown["call"]["func"] == "frappe.utils.background_jobs.execute_job"
    kw = {k["name"]: k["value"] for k in shown["call"]["kwargs"]}
    assert kw["site"] == repr(site.name) and kw["method"] == "'btu_hooks.runner.run_task'"
    assert f"'job_id': {job!r}" in kw["kwargs"] and "'schedule': 'TS-IDS01'" in kw["kwargs"]
    text = btu("show-job", job, "--config", cfg).stdout
    assert text.startswith(f"job {job}\n  status         queued\n  origin         {QUEUE}\n"), text
    assert "  call           frappe.utils.background_jobs.execute_job(site=" in text, text
    missing = btu("show-job", "nope", "--config", cfg, ok=False)
    assert missing.returncode == 1 and missing.stdout == ""
    assert 'btu: no job "nope" in this Redis' in missing.stderr

    printed = btu("print-config", "--config", cfg).stdout
    assert f'[[sites]]\nname = "{site.name}"\nmode = "frappe"\n' in printed, printed
    assert f'queue_prefix = "{QUEUE_PREFIX}"' in printed
    as_json = json.loads(btu("print-config", "--config", cfg, "--json").stdout)
    assert as_json["redis"]["url"] == f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
    assert as_json["sites"][0]["password_set"] is False

    # Without btu_hooks installed on the site, check-config fails naming the fix.
    set_installed_apps(site, ["frappe", "btu"])
    failed = btu("check-config", "--config", cfg, ok=False)
    assert failed.returncode == 1
    assert (f"FAIL  site {site.name} runner app: btu_hooks is not installed on the site (installed: btu, frappe); "
            f"every run would fail with AppNotInstalledError: bench --site {site.name} install-app btu_hooks") \
        in failed.stderr, failed.stderr
    assert d.stop() == 0, d.log()
