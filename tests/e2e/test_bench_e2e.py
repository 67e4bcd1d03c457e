"""Zero configuration on a Frappe bench (issue 12): the daemon is given only `[frappe] bench_path`
and finds the sites, their databases (user = db_name, as Frappe v15 connects), the queue Redis and
the bench id itself. The bench is a directory of the test's own with real MariaDB databases and
users per site: one site with BTU, one without, one on postgres, one whose database cannot be
reached. Sites are added, dropped and get BTU installed while the daemon runs (picked up on
SIGHUP), and a stock rq worker listening on `<bench_id>:default` runs the jobs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import pymysql
import pytest

from conftest import (BTU_BIN, MYSQL, REDIS_DB, REDIS_HOST, REDIS_PORT, add_schedule, add_task, free_port,
                      queued_ids, run_burst_worker, set_installed_apps, wait_until)
from e2e_tasks import markers


class Bench:
    """A bench directory: sites/ with common_site_config.json, apps.txt and one folder per site."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sites = root / "sites"
        self.sites.mkdir(parents=True)
        (self.sites / "assets").mkdir()  # not a site: no site_config.json
        (self.sites / "apps.txt").write_text("frappe\nbtu\nbtu_hooks\n")
        (self.sites / "common_site_config.json").write_text(json.dumps({
            "redis_cache": f"redis://{REDIS_HOST}:{REDIS_PORT}/12",
            "redis_queue": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
            "db_host": "127.0.0.1"}))
        # Frappe's get_bench_id(): the real path, slashes at the ends stripped, the others -> '-'.
        self.bench_id = str(root.resolve()).strip("/").replace("/", "-")
        self.users: list[str] = []

    def add(self, site_name: str, conf: dict) -> None:
        d = self.sites / site_name
        d.mkdir()
        (d / "site_config.json").write_text(json.dumps(conf))

    def add_db_site(self, site) -> str:
        """site_config.json for a make_site database, with a MariaDB user named like the database
        (Frappe's convention) and its own password. Returns the password."""
        password = uuid.uuid4().hex
        conn = pymysql.connect(**MYSQL)
        with conn.cursor() as cur:  # names made by the fixture, never from input
            cur.execute(f"CREATE USER IF NOT EXISTS `{site.db_name}`@'%%' IDENTIFIED BY %s", (password,))
            cur.execute(f"GRANT ALL PRIVILEGES ON `{site.db_name}`.* TO `{site.db_name}`@'%'")
        conn.close()
        self.users.append(site.db_name)
        self.add(site.name, {"db_name": site.db_name, "db_password": password})
        return password

    def drop_users(self) -> None:
        conn = pymysql.connect(**MYSQL)
        with conn.cursor() as cur:
            for u in self.users:
                cur.execute(f"DROP USER IF EXISTS `{u}`@'%'")
        conn.close()


@pytest.fixture()
def bench(tmp_path: Path):
    b = Bench(tmp_path / "frappe-bench")
    yield b
    b.drop_users()


def upcoming(redis_conn, site: str) -> set[str]:
    return {m.decode() for m in redis_conn.zrange(f"btu:{site}:upcoming", 0, -1)}


def test_bench_discovery_dynamic_sites_and_stock_worker(bench, make_site, start_daemon, redis_conn, tmp_path):
    a = make_site(name="a.local")
    marker_dir = tmp_path / "markers"
    add_task(a, "BTU-E2E01", "e2e_tasks.record", f"{{'marker_dir': {str(marker_dir)!r}, 'n': 1}}")
    add_schedule(a, "TS-E2E01", "BTU-E2E01", "* * * * * *")
    a_password = bench.add_db_site(a)
    nobtu = make_site(name="nobtu.local")
    set_installed_apps(nobtu, ["frappe"])
    bench.add_db_site(nobtu)
    bench.add("down.local", {"db_name": "_down", "db_password": "downpw", "db_port": free_port()})
    bench.add("pg.local", {"db_name": "_pg", "db_password": "pgpw", "db_type": "postgres"})

    config = f"""
[daemon]
socket_path = "{tmp_path / 'd.sock'}"
[frappe]
bench_path = "{bench.root}"
"""
    # check-config: what was discovered, what was left out and why; never a password.
    cfg = tmp_path / "check.toml"
    cfg.write_text(config)
    p = subprocess.run([str(BTU_BIN), "check-config", "--config", str(cfg)], capture_output=True, text=True,
                       timeout=120)
    out = p.stdout + p.stderr
    assert p.returncode == 1, out  # the unreachable site fails the check
    assert f"bench id {bench.bench_id} (from the bench path)" in out, out
    assert f"{bench.bench_id}:default, {bench.bench_id}:short, {bench.bench_id}:long" in out, out
    assert f"queue redis: redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB} (from redis_queue" in out, out
    assert f"bench site a.local: database mysql://{a.db_name}@127.0.0.1:3306/{a.db_name}" in out, out
    assert 'bench site pg.local: left out: db_type is "postgres"' in out, out
    assert "site nobtu.local: left out: BTU app not installed (apps: frappe)" in out, out
    assert "site down.local mariadb" in out and "unreachable" in out, out
    assert "assets" not in out, out
    assert a_password not in out and "downpw" not in out, out

    d = start_daemon(config)
    queue = f"{bench.bench_id}:default"
    wait_until(lambda: len(queued_ids(redis_conn, queue)) >= 2, 30, f"runs of TS-E2E01 on {queue}")
    assert upcoming(redis_conn, "a.local") == {"TS-000001", "TS-000002", "TS-E2E01"}
    assert upcoming(redis_conn, "nobtu.local") == set()
    log = d.log()
    assert "bench site left out" in log and "pg.local" in log, log
    assert "app not installed" in log and "nobtu.local" in log, log
    assert "down.local" in log and "unreachable" in log, log

    # A stock rq worker of the bench, listening on <bench_id>:default, runs what was queued. The
    # every-second schedule is cancelled first: on a loaded machine a worker runs fewer than one
    # job a second, and a burst worker fed one a second would never finish.
    cancel = subprocess.run([str(BTU_BIN), "cancel", "--socket", str(tmp_path / "d.sock"), "--site", "a.local",
                             "TS-E2E01"], capture_output=True, text=True, timeout=60)
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    ids = queued_ids(redis_conn, queue)
    run_burst_worker("2.6.1", [queue], cwd=bench.sites)
    assert len(markers(str(marker_dir))) >= len(ids)

    # A site created while the daemon runs, BTU installed on another: both picked up on SIGHUP.
    b = make_site(name="b.local")
    bench.add_db_site(b)
    set_installed_apps(nobtu, ["frappe", "btu"])
    d.send(signal.SIGHUP)
    wait_until(lambda: upcoming(redis_conn, "b.local") == {"TS-000001", "TS-000002"}, 30, "b.local planned")
    wait_until(lambda: upcoming(redis_conn, "nobtu.local") == {"TS-000001", "TS-000002"}, 30,
               "nobtu.local planned once BTU is installed")
    assert "bench site added" in d.log()

    # A site dropped while the daemon runs: its schedules leave the plan; BTU removed: the same.
    shutil.rmtree(bench.sites / "a.local")
    set_installed_apps(b, ["frappe"])
    d.send(signal.SIGHUP)
    wait_until(lambda: upcoming(redis_conn, "a.local") == set(), 30, "a.local's schedules removed")
    wait_until(lambda: upcoming(redis_conn, "b.local") == set(), 30, "b.local's schedules removed")
    redis_conn.delete(f"rq:queue:{queue}")
    assert d.stop() == 0, d.log()
    assert "bench site gone" in d.log()
    assert not os.path.exists(bench.sites / "a.local")
