"""End to end on a test bench with the BTU app (the stand-in of tests/btu_standin) and btu_hooks
installed: btu-daemon -> Redis -> stock `rq worker` -> execute_job -> btu_hooks.runner.run_task ->
the app's TaskRunner -> BTU Task Log rows, run e-mails to a real SMTP server, redis_job_id.
Also the site without the BTU app (btu_hooks' own runner) and the site without btu_hooks."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from conftest import (QUEUE_PREFIX, RQ_RELEASES, Site, add_schedule, add_task, clear_site_cache, frappe_config,
                      queued_ids, run_burst_worker, set_installed_apps, wait_until, write_sites_dir)
from e2e_tasks import markers
from smtp_sink import SmtpSink

QUEUE = QUEUE_PREFIX + "default"


def enqueue_runs(start_daemon, redis_conn: redis.Redis, site: Site, tmp_path: Path, count: int = 2) -> list[str]:
    """Run the daemon until `count` runs are queued, then stop it; the queued job ids."""
    d = start_daemon(frappe_config(site, tmp_path / "d.sock"))
    wait_until(lambda: len(queued_ids(redis_conn, QUEUE)) >= count, 30, f"{count} queued runs")
    assert d.stop() == 0, d.log()
    return queued_ids(redis_conn, QUEUE)


def job_status(r: redis.Redis, job_id: str) -> str:
    return (r.hget(f"rq:job:{job_id}", "status") or b"").decode()


@pytest.mark.parametrize("release", RQ_RELEASES)
def test_runs_go_through_the_btu_apps_task_runner(release, make_site, start_daemon, redis_conn, tmp_path):
    site = make_site()  # sample data: frappe, btu, btu_hooks installed
    marker_dir = tmp_path / "markers"
    add_task(site, "BTU-APP01", "e2e_tasks.record", f"{{'marker_dir': {str(marker_dir)!r}, 'n': 1}}")
    add_schedule(site, "TS-APP01", "BTU-APP01", "* * * * * *", overrides="{'n': 2}")
    [(modified_before,)] = site.sql("SELECT modified FROM `tabBTU Task Schedule` WHERE name = 'TS-APP01'")
    ids = enqueue_runs(start_daemon, redis_conn, site, tmp_path)

    sites_dir = write_sites_dir(tmp_path / "sites", site)
    run_burst_worker(release, [QUEUE], cwd=sites_dir)

    assert [m["kwargs_repr"] for m in markers(str(marker_dir))] == [repr({"n": 2})] * len(ids)
    logs = site.sql("SELECT success_fail, task_component, schedule, stdout FROM `tabBTU Task Log` WHERE task = 'BTU-APP01'")
    assert len(logs) == len(ids)
    for status, component, schedule, stdout in logs:
        assert (status, component, schedule) == ("Success", "Main", "TS-APP01")
        assert stdout.startswith("Is this a BTU-Aware function = False")  # printed by the app's runner
    # the last run's job id, for the app's "last job results" button; `modified` untouched
    [(job_id, modified_after)] = site.sql("SELECT redis_job_id, modified FROM `tabBTU Task Schedule` WHERE name = 'TS-APP01'")
    assert job_id == ids[-1] and modified_after == modified_before
    assert all(job_status(redis_conn, i) == "finished" for i in ids)


def test_a_failing_run_fails_the_rq_job_and_emails_its_recipients(make_site, start_daemon, redis_conn, tmp_path):
    site = make_site()
    marker_dir = tmp_path / "markers"
    add_task(site, "BTU-APP02", "e2e_tasks.fail", f"{{'marker_dir': {str(marker_dir)!r}, 'message': 'ledger locked'}}")
    add_schedule(site, "TS-APP02", "BTU-APP02", "* * * * * *")
    site.sql("INSERT INTO `tabBTU Email Recipient` (name, idx, email_address, email_on_start, email_on_error, parent,"
             " parentfield, parenttype) VALUES ('rcpt1', 1, 'ops@example.com', 1, 1, 'TS-APP02', 'email_recipients',"
             " 'BTU Task Schedule')")
    ids = enqueue_runs(start_daemon, redis_conn, site, tmp_path, count=1)

    with SmtpSink("btu@example.com", "smtp-secret") as smtp:
        site.sql("UPDATE tabSingles SET value = %s WHERE doctype = 'BTU Configuration' AND field = 'email_server_port'",
                 (str(smtp.port),))
        log = run_burst_worker("1.15.1", [QUEUE], cwd=write_sites_dir(tmp_path / "sites", site))
        mails = smtp.wait_for(2 * len(ids))

    assert "TaskRunFailed" in log and "ledger locked" in log
    assert all(job_status(redis_conn, i) == "failed" for i in ids)
    assert {m.subject for m in mails} == {"(TEST) Started: BTU Task e2e task BTU-APP02",
                                          "(TEST) Failed: BTU Task e2e task BTU-APP02"}
    assert all(m.rcpt_tos == ["ops@example.com"] for m in mails)
    assert sum("ledger locked" in m.body for m in mails) == len(ids)
    rows = site.sql("SELECT success_fail, result_message FROM `tabBTU Task Log` WHERE task = 'BTU-APP02'")
    assert rows == [("Failed", "ledger locked")] * len(ids)


def test_a_btu_aware_class_runs_in_the_worker(make_site, start_daemon, redis_conn, tmp_path):
    site = make_site()
    marker_dir = tmp_path / "markers"
    add_task(site, "BTU-APP03", "e2e_aware_tasks.AwareRecorder", f"{{'marker_dir': {str(marker_dir)!r}}}")
    add_schedule(site, "TS-APP03", "BTU-APP03", "* * * * * *")
    ids = enqueue_runs(start_daemon, redis_conn, site, tmp_path, count=1)
    run_burst_worker("1.15.1", [QUEUE], cwd=write_sites_dir(tmp_path / "sites", site))
    assert [m["kwargs_repr"] for m in markers(str(marker_dir))] == [repr({"btu_task_id": "BTU-APP03", "aware": True})] * len(ids)
    assert site.sql("SELECT DISTINCT success_fail FROM `tabBTU Task Log` WHERE task = 'BTU-APP03'") == [("Success",)]


def test_without_the_btu_app_btu_hooks_own_runner_runs_it(make_site, start_daemon, redis_conn, tmp_path):
    site = make_site()
    set_installed_apps(site, ["frappe", "btu_hooks"])
    marker_dir = tmp_path / "markers"
    add_task(site, "BTU-APP04", "e2e_tasks.Recorder", f"{{'marker_dir': {str(marker_dir)!r}, 'k': 'v'}}")
    add_schedule(site, "TS-APP04", "BTU-APP04", "* * * * * *")
    ids = enqueue_runs(start_daemon, redis_conn, site, tmp_path, count=1)
    sites_dir = write_sites_dir(tmp_path / "sites", site, apps=("frappe", "btu_hooks"))
    clear_site_cache(site)
    run_burst_worker("1.15.1", [QUEUE], cwd=sites_dir, btu_app=False)
    assert [m["kwargs_repr"] for m in markers(str(marker_dir))] == [repr({"btu_task_id": "BTU-APP04", "k": "v"})] * len(ids)
    rows = site.sql("SELECT success_fail, task_component, result_message FROM `tabBTU Task Log` WHERE task = 'BTU-APP04'")
    assert rows == [("Success", "Main", "ok")] * len(ids)
    [(job_id,)] = site.sql("SELECT redis_job_id FROM `tabBTU Task Schedule` WHERE name = 'TS-APP04'")
    assert job_id == ids[-1]


def test_without_btu_hooks_installed_every_run_fails(make_site, start_daemon, redis_conn, tmp_path):
    """What the issue saw on a real bench: btu_hooks importable but not an installed app of the
    site, so Frappe's execute_job refuses the runner's path."""
    site = make_site()
    set_installed_apps(site, ["frappe", "btu"])
    marker_dir = tmp_path / "markers"
    add_task(site, "BTU-APP05", "e2e_tasks.record", f"{{'marker_dir': {str(marker_dir)!r}}}")
    add_schedule(site, "TS-APP05", "BTU-APP05", "* * * * * *")
    ids = enqueue_runs(start_daemon, redis_conn, site, tmp_path, count=1)
    clear_site_cache(site)
    log = run_burst_worker("1.15.1", [QUEUE], cwd=write_sites_dir(tmp_path / "sites", site))
    assert "App btu_hooks is not installed" in log
    assert all(job_status(redis_conn, i) == "failed" for i in ids)
    assert markers(str(marker_dir)) == []
    assert site.sql("SELECT COUNT(*) FROM `tabBTU Task Log`") == [(0,)]
