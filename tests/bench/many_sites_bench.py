"""Many sites on one daemon (issue 12, numbers go to docs/operations.md "Many sites").

Builds a Frappe bench of its own: N sites (default 300), each a real MariaDB database with the
BTU tables (tests/sql/schema.sql), BTU installed, one task and M schedules (default 100), and its
own MariaDB user named like the database (Frappe's convention); `sites/<site>/site_config.json`
and `common_site_config.json` as a real bench has them. Then, for each connection cap and run, it
starts a RELEASE btu-daemon configured only with `[frappe] bench_path` (plus `[mariadb]
max_connections` and a metrics listener) on a flushed Redis database, and measures:

- cold start: process start until /readyz says every site loaded and btu_schedules reports all
  N x M schedules planned (target <= 3 s);
- steady RSS: VmRSS of /proc/<pid>/status a few seconds after planning (target <= 100 MB);
- `btu rebuild` (every site re-read over the socket) duration, R times;
- MariaDB connections: the daemon's own (information_schema.PROCESSLIST rows of the sites' users,
  sampled every 10 ms from start to the end of the rebuilds), and SHOW GLOBAL STATUS
  Threads_connected (whole server: other clients count too) before and at most during the run.

Medians over the runs are printed as a markdown table.

    cargo build --release -p btu-daemon
    BTU_TEST_REDIS_PORT=6379 tests/.venvs/test/bin/python tests/bench/many_sites_bench.py \\
        [--sites 300] [--schedules 100] [--caps 16,4] [--runs 3] [--rebuilds 3] [--keep]

MariaDB: 127.0.0.1:3306 as root (BTU_TEST_DB_* like the test suites); database and user names
end in `$BTU_TEST_DB_TAG`. Redis: 127.0.0.1:$BTU_TEST_REDIS_PORT, database 12 (flushed). The
databases and users are dropped at the end unless `--keep` (a later run with `--keep` reuses
them when they are complete).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

import pymysql  # noqa: E402
import redis  # noqa: E402
from btu_testdb import TestDatabase, db_tag, server_params  # noqa: E402

REDIS_PORT = int(os.environ.get("BTU_TEST_REDIS_PORT", "6379"))
REDIS_DB = 12
DAEMON = Path(os.environ.get("BTU_DAEMON_BIN", REPO / "target" / "release" / "btu-daemon"))
BTU = Path(os.environ.get("BTU_BIN", REPO / "target" / "release" / "btu"))
PREFIX = "btu_ms_"
TABLES = ("tabBTU Task", "tabBTU Task Schedule", "tabBTU Email Recipient", "tabBTU Task Log", "tabSingles",
          "tabSeries", "tabDefaultValue", "tabInstalled Application", "__Auth")


class BenchError(Exception):
    """The benchmark could not run (service missing, daemon failed)."""


def admin(**kw) -> pymysql.connections.Connection:
    return pymysql.connect(charset="utf8mb4", autocommit=True, connect_timeout=5, **server_params(), **kw)


def db_name(i: int) -> str:
    return f"{PREFIX}{i:04d}{db_tag()}"


def site_name(i: int) -> str:
    return f"s{i:04d}.local"


def password(i: int) -> str:
    return f"pw{i:04d}x"


def make_template(schedules: int) -> TestDatabase:
    """One database with the schema, BTU installed, a task and `schedules` schedules: copied per site."""
    t = TestDatabase(f"{PREFIX}template", sample_data=False)
    conn = t.connect()
    with conn.cursor() as cur:
        cur.execute("INSERT INTO tabDefaultValue (name, creation, modified, parent, parentfield, parenttype, "
                    "defkey, defvalue) VALUES ('ms1', NOW(6), NOW(6), '__global', 'system_defaults', '__default', "
                    "'installed_apps', %s)", (json.dumps(["frappe", "btu", "btu_hooks"]),))
        cur.execute("INSERT INTO `tabBTU Task` (name, creation, modified, owner, docstatus, desc_short, "
                    "function_string, arguments, max_task_duration, queue_name) VALUES ('BTU-MS-1', NOW(6), "
                    "NOW(6), 'Administrator', 1, 'bench task', 'app.tasks.run', '{}', 600, 'default')")
        rows = []
        for k in range(schedules):
            # Spread over the hour and the day; a few every minute.
            cron = "* * * * *" if k % 25 == 0 else f"{k % 60} {(k // 60) % 24}/{1 + k % 6} * * *"
            rows.append((f"TS-{k:05d}", cron, "default" if k % 3 else "long"))
        cur.executemany("INSERT INTO `tabBTU Task Schedule` (name, creation, modified, owner, task, enabled, "
                        "queue_name, run_frequency, cron_string) VALUES (%s, NOW(6), NOW(6), 'Administrator', "
                        "'BTU-MS-1', 1, %s, 'Cron Style', %s)", [(n, q, c) for n, c, q in rows])
    conn.close()
    return t


def existing_sites(schedules: int) -> int:
    """How many of the benchmark's site databases exist complete (for --keep reuse)."""
    conn = admin()
    with conn.cursor() as cur:
        cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s",
                    (f"{PREFIX}0%{db_tag()}",))
        names = sorted(r[0] for r in cur.fetchall())
        n = 0
        while db_name(n) in names:
            cur.execute(f"SELECT COUNT(*) FROM `{db_name(n)}`.`tabBTU Task Schedule`")
            if cur.fetchone()[0] != schedules:
                break
            n += 1
    conn.close()
    return n


def build_sites(n: int, schedules: int, start: int) -> None:
    template = make_template(schedules)
    conn = admin()
    with conn.cursor() as cur:
        for i in range(start, n):
            db = db_name(i)  # names made here, never from input
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
            cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            for t in TABLES:
                cur.execute(f"CREATE TABLE `{db}`.`{t}` LIKE `{template.name}`.`{t}`")
                cur.execute(f"INSERT INTO `{db}`.`{t}` SELECT * FROM `{template.name}`.`{t}`")
            cur.execute(f"CREATE USER IF NOT EXISTS `{db}`@'%%' IDENTIFIED BY %s", (password(i),))
            cur.execute(f"ALTER USER `{db}`@'%%' IDENTIFIED BY %s", (password(i),))
            cur.execute(f"GRANT ALL PRIVILEGES ON `{db}`.* TO `{db}`@'%'")
            if (i + 1) % 50 == 0:
                print(f"  {i + 1}/{n} site databases", file=sys.stderr)
    conn.close()
    template.drop()


def drop_sites(n: int) -> None:
    conn = admin()
    with conn.cursor() as cur:
        for i in range(n):
            cur.execute(f"DROP DATABASE IF EXISTS `{db_name(i)}`")
            cur.execute(f"DROP USER IF EXISTS `{db_name(i)}`@'%'")
    conn.close()


def write_bench(root: Path, n: int) -> Path:
    p = server_params()
    sites = root / "sites"
    sites.mkdir(parents=True)
    (sites / "assets").mkdir()
    (sites / "apps.txt").write_text("frappe\nbtu\nbtu_hooks\n")
    (sites / "common_site_config.json").write_text(json.dumps({
        "db_host": p["host"], "db_port": p["port"],
        "redis_queue": f"redis://127.0.0.1:{REDIS_PORT}/{REDIS_DB}",
        "redis_cache": f"redis://127.0.0.1:{REDIS_PORT}/{REDIS_DB}"}, indent=1))
    for i in range(n):
        d = sites / site_name(i)
        d.mkdir()
        (d / "site_config.json").write_text(json.dumps({"db_name": db_name(i), "db_password": password(i)}, indent=1))
    return root


class ConnSampler(threading.Thread):
    """Samples the daemon's MariaDB connections (its sites' users) and Threads_connected."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.daemon_max = 0
        self.per_user_max = 0
        self.threads_max = 0
        self.samples = 0
        self.conn = admin()

    def run(self) -> None:
        pattern = f"{PREFIX}0%{db_tag()}"
        with self.conn.cursor() as cur:
            while not self.stop.is_set():
                cur.execute("SELECT USER, COUNT(*) FROM information_schema.PROCESSLIST WHERE USER LIKE %s "
                            "GROUP BY USER", (pattern,))
                counts = [c for _, c in cur.fetchall()]
                cur.execute("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
                threads = int(cur.fetchone()[1])
                self.daemon_max = max(self.daemon_max, sum(counts))
                self.per_user_max = max([self.per_user_max, *counts])
                self.threads_max = max(self.threads_max, threads)
                self.samples += 1
                time.sleep(0.01)
        self.conn.close()


def threads_connected() -> int:
    conn = admin()
    with conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
        n = int(cur.fetchone()[1])
    conn.close()
    return n


def http(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def planned(metrics_text: str) -> int:
    return sum(int(float(m)) for m in re.findall(r'^btu_schedules\{[^}]*state="planned"[^}]*\} (\S+)$',
                                                 metrics_text, re.M))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError("no VmRSS")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_run(bench: Path, tmp: Path, cap: int, n: int, m: int, rebuilds: int) -> dict[str, float]:
    r = redis.Redis(port=REDIS_PORT, db=REDIS_DB)
    r.flushdb()
    port = free_port()
    sock = tmp / f"d{cap}.sock"
    cfg = tmp / f"d{cap}.toml"
    cfg.write_text(f"""[daemon]
socket_path = "{sock}"
[frappe]
bench_path = "{bench}"
[mariadb]
max_connections = {cap}
[metrics]
listen = "127.0.0.1:{port}"
""")
    log = open(tmp / f"d{cap}.log", "w")
    before = threads_connected()
    sampler = ConnSampler()
    sampler.start()
    t0 = time.monotonic()
    proc = subprocess.Popen([str(DAEMON), "--config", str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, RUST_LOG="warn"))
    try:
        ready_at = None
        deadline = t0 + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchError(f"daemon exited: {(tmp / f'd{cap}.log').read_text()[-2000:]}")
            status, _ = http(f"http://127.0.0.1:{port}/readyz")
            if status == 200 and planned(http(f"http://127.0.0.1:{port}/metrics")[1]) == n * m:
                ready_at = time.monotonic()
                break
            time.sleep(0.01)
        if ready_at is None:
            raise BenchError("not everything planned within 120 s")
        cold = ready_at - t0
        time.sleep(5)
        rss = rss_mb(proc.pid)
        durations = []
        for _ in range(rebuilds):
            s = time.monotonic()
            out = subprocess.run([str(BTU), "rebuild", "--socket", str(sock), "--json", "--timeout", "120"],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                raise BenchError(f"btu rebuild: {out.stdout}{out.stderr}")
            durations.append(time.monotonic() - s)
        rss_after = rss_mb(proc.pid)
        _, text = http(f"http://127.0.0.1:{port}/metrics")
        waits = re.search(r"^btu_mariadb_connection_waits_total (\S+)$", text, re.M)
    finally:
        sampler.stop.set()
        sampler.join()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
        r.flushdb()
    return {"cold_s": cold, "rss_mb": rss, "rss_after_rebuilds_mb": rss_after,
            "rebuild_s": statistics.median(durations), "daemon_conns_max": sampler.daemon_max,
            "per_site_max": sampler.per_user_max, "threads_before": before, "threads_max": sampler.threads_max,
            "waits": float(waits.group(1)) if waits else -1, "samples": sampler.samples}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=300)
    ap.add_argument("--schedules", type=int, default=100)
    ap.add_argument("--caps", default="16,4", help="comma-separated [mariadb] max_connections values")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rebuilds", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep (and reuse) the site databases and users")
    args = ap.parse_args()
    for b in (DAEMON, BTU):
        if not b.exists():
            raise BenchError(f"{b} is missing: cargo build --release -p btu-daemon")
    redis.Redis(port=REDIS_PORT, db=REDIS_DB).ping()
    have = existing_sites(args.schedules) if args.keep else 0
    if have < args.sites:
        t = time.monotonic()
        build_sites(args.sites, args.schedules, have)
        print(f"built {args.sites - have} site databases in {time.monotonic() - t:.1f} s", file=sys.stderr)
    caps = [int(c) for c in args.caps.split(",")]
    results: dict[int, list[dict[str, float]]] = {c: [] for c in caps}
    try:
        with tempfile.TemporaryDirectory(prefix="btu-many-sites-") as tmp_s:
            tmp = Path(tmp_s)
            bench = write_bench(tmp / "frappe-bench", args.sites)
            for run in range(args.runs):
                for cap in caps:  # alternating, so drift on the shared machine hits every cap alike
                    res = one_run(bench, tmp, cap, args.sites, args.schedules, args.rebuilds)
                    results[cap].append(res)
                    print(f"run {run + 1} cap {cap}: " + ", ".join(f"{k} {v:.3g}" for k, v in res.items()),
                          file=sys.stderr)
    finally:
        if not args.keep:
            drop_sites(args.sites)
    print(f"\n{args.sites} sites x {args.schedules} schedules, medians of {args.runs} runs "
          f"(btu rebuild: median of {args.rebuilds} per run)\n")
    print("| max_connections | cold start to all planned | RSS after planning | RSS after rebuilds "
          "| btu rebuild (all sites) | daemon's MariaDB connections, max | per site, max "
          "| Threads_connected before / max (whole server) |")
    print("|---|---|---|---|---|---|---|---|")
    for cap in caps:
        med = {k: statistics.median(r[k] for r in results[cap]) for k in results[cap][0]}
        print(f"| {cap} | {med['cold_s']:.2f} s | {med['rss_mb']:.1f} MB | {med['rss_after_rebuilds_mb']:.1f} MB "
              f"| {med['rebuild_s']:.2f} s | {med['daemon_conns_max']:.0f} | {med['per_site_max']:.0f} "
              f"| {med['threads_before']:.0f} / {med['threads_max']:.0f} |")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"many_sites_bench: {e}", file=sys.stderr)
        sys.exit(1)
