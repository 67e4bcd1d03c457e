"""The soak's own processes: a Redis with an fsync-always AOF, a MariaDB in its own datadir, two
btu-daemons (under libfaketime, see soak.py) and stock `rq worker`s kept running by a supervisor.
Every process is started here and stopped by its own pid; nothing shared is touched."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

import pymysql
import redis

REPO = Path(__file__).resolve().parents[2]
FAKETIME_LIBS = [Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
                 Path("/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"),
                 Path("/usr/lib/faketime/libfaketime.so.1")]


class SoakSetupError(RuntimeError):
    """A service the soak needs could not be started (the soak fails, it never skips)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(cond: Callable[[], object], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(interval)
    raise SoakSetupError(f"timed out after {timeout:.0f}s waiting for {what}")


def faketime_lib() -> Path:
    for p in FAKETIME_LIBS:
        if p.exists():
            return p
    raise SoakSetupError("libfaketime is missing (apt-get install libfaketime; scripts/bootstrap.sh does it)")


def _kill(proc: subprocess.Popen | None, sig: int = signal.SIGKILL, wait: float = 30) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class SoakRedis:
    """redis-server with `appendonly yes`, `appendfsync always`: an acknowledged write survives a
    SIGKILL, so a restart loses no queued job, claim or record."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.port, self.dir = port, workdir / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kw: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)  # type: ignore[arg-type]

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Loading a large AOF on a busy machine takes a while; answering LOADING is not up.
        wait_until(self.up, 180, f"redis-server on port {self.port} (log: {self.dir / 'redis.log'})")

    def up(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise SoakSetupError(f"redis-server on port {self.port} exited {self.proc.returncode}; "
                                 f"see {self.dir / 'redis.log'}")
        try:
            return bool(self.client(socket_timeout=0.5).ping())
        except redis.exceptions.RedisError:
            return False

    def crash(self) -> None:
        _kill(self.proc, signal.SIGKILL)

    def stop(self) -> None:
        _kill(self.proc, signal.SIGTERM)


class SoakMariaDb:
    """mariadbd in its own datadir under /tmp and on its own port (never the shared 3306)."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.port = port
        self.top = workdir / "mariadb"
        self.datadir = self.top / "data"
        self.sock = Path(f"/tmp/soak-mysqld-{port}.sock")
        self.proc: subprocess.Popen | None = None

    def install(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.top.parent, 0o755)
        os.chmod(self.top, 0o755)
        user = ["--user=mysql"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "mysql:mysql", str(self.top)], check=True)
        p = subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}",
                            "--auth-root-authentication-method=normal", "--skip-test-db", *user],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise SoakSetupError(f"mariadb-install-db failed:\n{p.stdout}{p.stderr}")

    def start(self) -> None:
        user = ["--user=mysql"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={self.datadir}", f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--socket={self.sock}", f"--pid-file={self.datadir}/mysqld.pid",
             "--skip-log-bin", "--innodb-buffer-pool-size=32M", f"--log-error={self.top}/error.log", *user],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.up, 180, f"mariadbd on port {self.port} (log: {self.top}/error.log)")

    def up(self) -> bool:
        try:
            pymysql.connect(host="127.0.0.1", port=self.port, user="root", password="", connect_timeout=1).close()
            return True
        except pymysql.err.MySQLError:
            return False

    def connect(self, db: str | None = None) -> pymysql.connections.Connection:
        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", password="", database=db,
                               autocommit=True, connect_timeout=3)

    def stop(self) -> None:
        _kill(self.proc, signal.SIGTERM, wait=90)

    def remove(self) -> None:
        shutil.rmtree(self.top, ignore_errors=True)


class SoakDaemon:
    """One btu-daemon. `env` carries the libfaketime settings (the same offset for both)."""

    def __init__(self, name: str, binary: Path, config: Path, socket_path: Path, env: dict[str, str]) -> None:
        self.name, self.binary, self.config, self.socket_path, self.env = name, binary, config, socket_path, env
        self.log_path = config.with_suffix(".log")
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with open(self.log_path, "a") as log:
            log.write(f"\n===== soak: start #{self.starts} =====\n")
            self.proc = subprocess.Popen([str(self.binary), "--config", str(self.config)], stdout=log,
                                         stderr=subprocess.STDOUT, env=self.env)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        _kill(self.proc, signal.SIGKILL)

    def stop(self) -> None:
        _kill(self.proc, signal.SIGTERM)


class WorkerPool:
    """Stock `rq worker` processes (SimpleWorker: no fork per job, so a few hundred jobs a second
    on two cores), one per rq release, restarted by a supervisor thread whenever one exits (a
    worker may die when its Redis goes away)."""

    def __init__(self, workdir: Path, rq_bins: list[Path], redis_url: str, queue: str, env: dict[str, str]) -> None:
        self.workdir, self.rq_bins, self.redis_url, self.queue, self.env = workdir, rq_bins, redis_url, queue, env
        self.procs: list[subprocess.Popen | None] = [None] * len(rq_bins)
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="rq-supervisor", daemon=True)

    def _start(self, i: int) -> None:
        log = open(self.workdir / f"worker-{i}.log", "a")
        self.procs[i] = subprocess.Popen(
            [str(self.rq_bins[i]), "worker", "-w", "rq.worker.SimpleWorker", "--url", self.redis_url,
             "--logging_level", "WARNING", self.queue],
            cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def start(self) -> None:
        for i in range(len(self.rq_bins)):
            self._start(i)
        self._thread.start()

    def _supervise(self) -> None:
        while not self._stop.wait(0.5):
            for i, p in enumerate(self.procs):
                if p is not None and p.poll() is not None:
                    self.restarts += 1
                    self._start(i)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for p in self.procs:
            _kill(p, signal.SIGTERM, wait=15)
