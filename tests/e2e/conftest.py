"""Fixtures for the end-to-end tests: real MariaDB, real Redis, the real daemon binary and stock
`rq worker` processes from PyPI (one virtualenv per supported rq release).

Nothing here mocks a service. When a service is missing the tests FAIL with a message saying
what to start (scripts/bootstrap.sh does it all)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pymysql
import pytest
import redis

REPO = Path(__file__).resolve().parents[2]
SQL_DIR = REPO / "tests" / "sql"  # the project's own copy of the BTU schema and sample data
VENVS = REPO / "tests" / ".venvs"
DAEMON_BIN = Path(os.environ.get("BTU_DAEMON_BIN", REPO / "target" / "debug" / "btu-daemon"))
BTU_BIN = Path(os.environ.get("BTU_BIN", REPO / "target" / "debug" / "btu"))
E2E_DIR = Path(__file__).resolve().parent
FRAPPE_STUB = REPO / "tests" / "frappe_stub"
BTU_STANDIN = REPO / "tests" / "btu_standin"  # the stand-in BTU app (package `btu`)
HOOKS_DIR = REPO / "frappe-hooks"
TESTS_DIR = REPO / "tests"
if str(TESTS_DIR) not in sys.path:  # shared helpers: legacy_daemon, smtp_sink
    sys.path.insert(0, str(TESTS_DIR))

MYSQL = dict(host="127.0.0.1", port=3306, user="root", password="")
# BTU_TEST_REDIS_PORT / BTU_TEST_DB_TAG let two checkouts run the suites side by side.
REDIS_HOST, REDIS_PORT = "127.0.0.1", int(os.environ.get("BTU_TEST_REDIS_PORT", "6379"))
DB_TAG = "".join(c for c in os.environ.get("BTU_TEST_DB_TAG", "") if c.isalnum() or c == "_")
REDIS_DB = 13  # the e2e suite's own database: it may be flushed between tests

RQ_RELEASES = ["1.15.1", "2.6.1", "3.0"]


def rq_bin(release: str) -> Path:
    matches = sorted(VENVS.glob(f"rq-{release}*"))
    if not matches:
        pytest.fail(f"no virtualenv for rq {release} under {VENVS}: run tests/setup-rq-venvs.sh")
    return matches[0] / "bin" / "rq"


@pytest.fixture(scope="session")
def btu_sql() -> tuple[str, str]:
    schema = SQL_DIR / "schema.sql"
    sample = SQL_DIR / "sample-data.sql"
    if not schema.exists():
        pytest.fail(f"{schema} is missing")
    return schema.read_text(), sample.read_text()


@pytest.fixture(scope="session")
def binaries() -> None:
    for b in (DAEMON_BIN, BTU_BIN):
        if not b.exists():
            pytest.fail(f"{b} is missing: run `cargo build --workspace` first")


@pytest.fixture()
def redis_conn() -> Iterator[redis.Redis]:
    r = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    try:
        r.ping()
    except redis.exceptions.ConnectionError as e:
        pytest.fail(f"Redis is not reachable on {REDIS_HOST}:{REDIS_PORT} ({e}); run scripts/bootstrap.sh")
    r.flushdb()
    yield r
    r.flushdb()


def _run_sql(conn: pymysql.connections.Connection, script: str) -> None:
    # The SQL files are plain statements separated by ';' at line ends, with '--' comments.
    lines = [ln for ln in script.splitlines() if not ln.strip().startswith("--")]
    with conn.cursor() as cur:
        for stmt in "\n".join(lines).split(";\n"):
            if stmt.strip():
                cur.execute(stmt)
    conn.commit()


@dataclass
class Site:
    name: str
    db_name: str
    conn: pymysql.connections.Connection

    def sql(self, query: str, args: tuple | list | None = None) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(query, args)
            rows = list(cur.fetchall())
        self.conn.commit()
        return rows


@pytest.fixture()
def make_site(btu_sql: tuple[str, str]) -> Iterator:
    """Factory: a fresh MariaDB database with the BTU tables (and by default the sample rows)."""
    created: list[Site] = []

    def factory(name: str | None = None, sample: bool = True) -> Site:
        try:
            conn = pymysql.connect(**MYSQL, autocommit=False)
        except pymysql.err.OperationalError as e:
            pytest.fail(f"MariaDB is not reachable as root@127.0.0.1:3306 ({e}); run scripts/bootstrap.sh")
        db = f"btu_e2e_{uuid.uuid4().hex[:8]}{DB_TAG}"
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{db}`")  # name made here, never from input
        conn.select_db(db)
        schema, sample_sql = btu_sql
        _run_sql(conn, schema)
        if sample:
            _run_sql(conn, sample_sql)
        site = Site(name=name or f"{db}.local", db_name=db, conn=conn)
        created.append(site)
        return site

    yield factory
    for site in created:
        with site.conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{site.db_name}`")
        site.conn.close()


@pytest.fixture()
def tmp_dir(tmp_path: Path) -> Path:
    return tmp_path


def worker_env(extra_paths: list[Path] | None = None, btu_app: bool = True) -> dict[str, str]:
    """Environment of an rq worker of the test bench: the stand-in frappe, btu_hooks, the e2e
    task functions and (btu_app=True) the stand-in BTU app importable."""
    env = dict(os.environ)
    paths = [str(E2E_DIR), str(FRAPPE_STUB), str(HOOKS_DIR)] + ([str(BTU_STANDIN)] if btu_app else [])
    paths += [str(p) for p in (extra_paths or [])]
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def run_burst_worker(release: str, queues: list[str], cwd: Path, timeout: float = 120, btu_app: bool = True) -> str:
    """Run a stock `rq worker --burst` to completion and return its log; fail on a worker crash
    (rq exits 0 even when it died, so the log is checked too)."""
    cmd = [str(rq_bin(release)), "worker", "--burst", "--url",
           f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}", *queues]
    p = subprocess.run(cmd, cwd=cwd, env=worker_env(btu_app=btu_app), capture_output=True, text=True, timeout=timeout)
    log = p.stdout + p.stderr
    assert p.returncode == 0, f"rq worker exited {p.returncode}:\n{log}"
    assert "unhandled exception" not in log, f"rq worker died:\n{log}"
    return log


@dataclass
class Daemon:
    proc: subprocess.Popen
    config: Path
    log_path: Path
    socket_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def send(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture()
def start_daemon(binaries: None, tmp_path: Path) -> Iterator:
    """Factory: start `btu-daemon --config <file>` with the given TOML text."""
    started: list[Daemon] = []

    def factory(config_text: str, name: str = "daemon", socket_path: Path | None = None,
                wait_for: str | None = None, env: dict[str, str] | None = None) -> Daemon:
        cfg = tmp_path / f"{name}.toml"
        cfg.write_text(config_text)
        log_path = tmp_path / f"{name}.log"
        full_env = dict(os.environ, RUST_LOG=os.environ.get("BTU_TEST_RUST_LOG", "info"))
        full_env.update(env or {})
        proc = subprocess.Popen([str(DAEMON_BIN), "--config", str(cfg)], stdout=open(log_path, "w"),
                                stderr=subprocess.STDOUT, env=full_env, cwd=tmp_path)
        d = Daemon(proc, cfg, log_path, socket_path or tmp_path / f"{name}.sock")
        started.append(d)
        if wait_for:
            wait_until(lambda: wait_for in d.log() or proc.poll() is not None, 30,
                       f"daemon log to contain {wait_for!r}")
            assert proc.poll() is None, f"daemon exited early:\n{d.log()}"
        return d

    yield factory
    for d in started:
        d.stop()


def wait_until(cond, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


BENCH_APPS = ("frappe", "btu", "btu_hooks")


def write_sites_dir(sites_dir: Path, site: Site, apps: tuple[str, ...] = BENCH_APPS) -> Path:
    """A Frappe bench's sites/ directory for `site`, as the stand-in frappe reads it (the rq worker
    runs with this as its working directory, like Frappe's workers): <site>/site_config.json,
    apps.txt (the apps on the bench; default frappe, the stand-in btu, btu_hooks) and
    common_site_config.json (redis_cache: db 12, redis_queue: the e2e database, both on the test
    Redis). Which apps are INSTALLED on the site is in its database (set_installed_apps)."""
    import json

    d = sites_dir / site.name
    d.mkdir(parents=True, exist_ok=True)
    (d / "site_config.json").write_text(json.dumps({
        "db_name": site.db_name, "db_password": MYSQL["password"], "db_host": MYSQL["host"],
        "db_port": MYSQL["port"], "db_user": MYSQL["user"]}))
    (sites_dir / "apps.txt").write_text("".join(f"{a}\n" for a in apps))
    (sites_dir / "common_site_config.json").write_text(json.dumps({
        "redis_cache": f"redis://{REDIS_HOST}:{REDIS_PORT}/12",
        "redis_queue": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"}))
    return sites_dir


def set_installed_apps(site: Site, apps: tuple[str, ...] | list[str]) -> None:
    """What `bench install-app` leaves in the site's database (tabDefaultValue __global
    installed_apps), e.g. for a make_site(sample=False) site whose jobs a worker runs."""
    import json

    site.sql("DELETE FROM tabDefaultValue WHERE parent = '__global' AND defkey = 'installed_apps'")
    site.sql("INSERT INTO tabDefaultValue (name, creation, modified, parent, parentfield, parenttype, defkey, defvalue)"
             " VALUES (%s, NOW(6), NOW(6), '__global', 'system_defaults', '__default', 'installed_apps', %s)",
             (uuid.uuid4().hex[:10], json.dumps(list(apps))))


def clear_site_cache(site: Site) -> None:
    """`bench --site SITE clear-cache`: drop the site's keys from the stand-in's Redis cache."""
    r = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=12)
    keys = r.keys(f"{site.db_name}|*")
    if keys:
        r.delete(*keys)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PrivateRedis:
    """A redis-server of our own, so a test may stop and restart it without touching the
    machine's shared instance. It saves to an RDB file on shutdown, like a production Redis."""
    port: int
    dir: Path
    proc: subprocess.Popen | None = None
    password: str | None = None  # set before start() to require AUTH

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_socket(self) -> Path:
        return self.dir / "redis.sock"

    def start(self) -> None:
        auth = ["--requirepass", self.password] if self.password else []
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no",
             "--unixsocket", str(self.unix_socket), "--unixsocketperm", "700", *auth],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._ping, 10, f"redis-server on port {self.port}")

    def _ping(self) -> bool:
        try:
            return bool(self.client(socket_timeout=0.5).ping())
        except redis.exceptions.RedisError:
            return False

    def stop(self) -> None:
        """SHUTDOWN SAVE: the data survives the restart (the outage loses no state)."""
        if self.proc and self.proc.poll() is None:
            try:
                self.client().shutdown(save=True)
            except redis.exceptions.ConnectionError:
                pass  # shutdown closes the connection before it answers
            self.proc.wait(10)

    def client(self, **kw) -> redis.Redis:
        return redis.Redis(port=self.port, password=self.password, **kw)


@pytest.fixture()
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    d = tmp_path / "redis"
    d.mkdir()
    r = PrivateRedis(free_port(), d)
    r.start()
    yield r
    if r.proc and r.proc.poll() is None:
        r.proc.kill()
        r.proc.wait()


@dataclass
class PrivateMariaDb:
    """A mariadbd of our own (its own datadir and port), so a test may stop and restart it."""
    port: int
    datadir: Path
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        user = ["--user=mysql"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={self.datadir}", f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--socket={self.datadir}/mysqld.sock",
             f"--pid-file={self.datadir}/mysqld.pid", "--skip-log-bin", "--innodb-buffer-pool-size=32M",
             *user], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._ping, 60, f"mariadbd on port {self.port}")

    def _ping(self) -> bool:
        try:
            pymysql.connect(host="127.0.0.1", port=self.port, user="root", password="").close()
            return True
        except pymysql.err.MySQLError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)

    def connect(self, db: str | None = None) -> pymysql.connections.Connection:
        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", password="", database=db)


@pytest.fixture()
def private_mariadb(tmp_path: Path, btu_sql: tuple[str, str]) -> Iterator[PrivateMariaDb]:
    import shutil
    import tempfile

    # Not under tmp_path: pytest makes that 0700 for root, and mariadbd runs as mysql.
    top = Path(tempfile.mkdtemp(prefix="btu-e2e-mariadb-"))
    os.chmod(top, 0o755)
    datadir = top / "data"
    datadir.mkdir()
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "mysql:mysql", str(top)], check=True)
    user = ["--user=mysql"] if os.geteuid() == 0 else []
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={datadir}",
                    "--auth-root-authentication-method=normal", "--skip-test-db", *user],
                   check=True, capture_output=True)
    m = PrivateMariaDb(free_port(), datadir)
    m.start()
    yield m
    if m.proc and m.proc.poll() is None:
        m.proc.kill()
        m.proc.wait()
    shutil.rmtree(top, ignore_errors=True)


# --- Frappe-mode schedules (shared by the e2e test files) ----------------------------------------
QUEUE_PREFIX = "e2e-bench:"


def frappe_config(site: Site, socket: Path, redis_url: str | None = None, rebuild_secs: int = 300,
                  grace_secs: int = 300, mysql_port: int = 3306, zone: str = "UTC") -> str:
    return f"""
[daemon]
rebuild_interval_secs = {rebuild_secs}
missed_run_grace_secs = {grace_secs}
time_zone = "{zone}"
socket_path = "{socket}"

[redis]
url = "{redis_url or f'redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}'}"

[frappe]
runner = "btu_hooks.runner.run_task"
queue_prefix = "{QUEUE_PREFIX}"
user = "Administrator"

[[sites]]
name = "{site.name}"
host = "127.0.0.1"
port = {mysql_port}
user = "root"
password = ""
database = "{site.db_name}"
"""


def add_task(site: Site, name: str, function: str, arguments: str | None, docstatus: int = 1,
             timeout: int = 600) -> None:
    site.sql("INSERT INTO `tabBTU Task` (name, creation, modified, owner, docstatus, desc_short, "
             "function_string, arguments, max_task_duration, queue_name) "
             "VALUES (%s, NOW(6), NOW(6), 'Administrator', %s, %s, %s, %s, %s, 'default')",
             (name, docstatus, f"e2e task {name}", function, arguments, timeout))


def add_schedule(site: Site, name: str, task: str, cron: str, enabled: int = 1,
                 overrides: str | None = None, queue: str = "default") -> None:
    site.sql("INSERT INTO `tabBTU Task Schedule` (name, creation, modified, owner, task, enabled, "
             "queue_name, run_frequency, cron_string, argument_overrides) "
             "VALUES (%s, NOW(6), NOW(6), 'Administrator', %s, %s, %s, 'Cron Style', %s, %s)",
             (name, task, enabled, queue, cron, overrides))


def queued_ids(r: redis.Redis, queue: str) -> list[str]:
    return [x.decode() for x in r.lrange(f"rq:queue:{queue}", 0, -1)]
