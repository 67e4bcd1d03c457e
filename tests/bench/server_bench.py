"""Socket-server benchmarks (numbers go to docs/server.md).

Starts a RELEASE btu-daemon on a MariaDB site (database `btu_bench_server`, the shared schema +
sample data) and Redis db 12 (on `$BTU_TEST_REDIS_PORT`, default 6379, like the test suites), then
measures:

1. notify round trip from Python (`btu_client.notify`), including the daemon's MariaDB read of the
   schedule: p50 / p90 / p99 / max over N calls (one connection per call, as btu_client does);
2. with `--rust` (default on): `cargo bench -p btu-daemon --bench server_notify` against the same
   daemon: notify throughput over several connections and 1,000 connections held at once.

    cargo build --release -p btu-daemon
    tests/.venvs/test/bin/maturin build --release -m py-client/Cargo.toml --out target/wheels
    tests/.venvs/test/bin/pip install --force-reinstall --no-deps target/wheels/btu_client-*.whl
    tests/.venvs/test/bin/python tests/bench/server_bench.py [--calls 5000] [--no-rust]

Everything it creates (database, Redis keys, socket, temp dir) is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

import btu_client  # noqa: E402
import redis  # noqa: E402
from btu_testdb import TestDatabase, server_params  # noqa: E402

SITE = "bench-server.local"
REDIS_DB = 12
# Like the test suites: lets two checkouts benchmark side by side without sharing keys.
REDIS_PORT = int(os.environ.get("BTU_TEST_REDIS_PORT", "6379"))
KEY_PREFIX = "btu_bench_srv_rq"
SCHEDULE = "TS-000001"
# One runnable schedule per bench connection, for the distinct-ids notify run (copies of
# TS-000002, inserted below): coalesced notifies then read several ids in one query.
DISTINCT = [f"TS-3{n:05}" for n in range(8)]


def pct(sorted_ns: list[int], p: float) -> float:
    i = min(len(sorted_ns) - 1, round((len(sorted_ns) - 1) * p))
    return sorted_ns[i] / 1e6


def summary(label: str, ns: list[int]) -> str:
    s = sorted(ns)
    return (f"{label}: n={len(s)} p50 {pct(s, .5):.3f} ms, p90 {pct(s, .9):.3f} ms, p99 {pct(s, .99):.3f} ms, "
            f"max {s[-1] / 1e6:.3f} ms, mean {statistics.fmean(s) / 1e6:.3f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--no-rust", action="store_true", help="skip the Rust throughput / hold bench")
    ap.add_argument("--daemon", default=str(REPO / "target" / "release" / "btu-daemon"))
    args = ap.parse_args()

    db = TestDatabase("btu_bench_server")
    for name in DISTINCT:
        db.query("INSERT INTO `tabBTU Task Schedule` (name, creation, modified, owner, task, task_description, "
                 "enabled, queue_name, run_frequency, cron_string, argument_overrides) "
                 "SELECT %s, creation, modified, owner, task, task_description, enabled, queue_name, "
                 "run_frequency, cron_string, argument_overrides FROM `tabBTU Task Schedule` WHERE name = 'TS-000002'",
                 (name,))
    tmp = Path(tempfile.mkdtemp(prefix="btu_bench_server_"))
    sock = tmp / "bench.sock"
    p = server_params()
    (tmp / "btu.toml").write_text(f"""
[daemon]
socket_path = "{sock}"
[redis]
url = "redis://127.0.0.1:{REDIS_PORT}/{REDIS_DB}"
key_prefix = "{KEY_PREFIX}"
[frappe]
queue_prefix = "bench-server:"
[[sites]]
name = "{SITE}"
host = "{p['host']}"
port = {p['port']}
user = "{p['user']}"
password = "{p['password']}"
database = "{db.name}"
""")
    log = open(tmp / "daemon.log", "w")
    daemon = subprocess.Popen([args.daemon, "--config", str(tmp / "btu.toml")], stdout=log, stderr=subprocess.STDOUT,
                              env=dict(os.environ, RUST_LOG="warn"))
    r = redis.Redis(port=REDIS_PORT, db=REDIS_DB)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                st = btu_client.status(socket_path=str(sock))
                if all(s["schedules"] > 0 and s["redis_ok"] for s in st["sites"]):
                    break
            except btu_client.DaemonUnavailable:
                pass
            if time.monotonic() > deadline or daemon.poll() is not None:
                print((tmp / "daemon.log").read_text(), file=sys.stderr)
                raise SystemExit("the daemon did not come up")
            time.sleep(0.1)

        for _ in range(300):  # warm-up: connection pool, caches
            btu_client.notify(SCHEDULE, socket_path=str(sock))
        ping_ns, notify_ns = [], []
        for _ in range(args.calls):
            t = time.perf_counter_ns()
            btu_client.ping(socket_path=str(sock))
            ping_ns.append(time.perf_counter_ns() - t)
        for _ in range(args.calls):
            t = time.perf_counter_ns()
            [state] = btu_client.notify(SCHEDULE, socket_path=str(sock))
            notify_ns.append(time.perf_counter_ns() - t)
            assert state["runs"], state
        print(summary("python ping round trip", ping_ns))
        print(summary("python notify round trip (MariaDB read + replan)", notify_ns))
        sys.stdout.flush()

        if not args.no_rust:
            env = dict(os.environ, BTU_BENCH_SOCKET=str(sock), BTU_BENCH_SCHEDULE=SCHEDULE,
                       BTU_BENCH_SCHEDULES=",".join(DISTINCT))
            subprocess.run(["cargo", "bench", "-q", "-p", "btu-daemon", "--bench", "server_notify"], cwd=REPO, env=env,
                           check=True)
            fds = len(os.listdir(f"/proc/{daemon.pid}/fd"))
            print(f"daemon open fds after the hold bench: {fds}")
        return 0
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(20)
        except subprocess.TimeoutExpired:
            daemon.kill()
        log.close()
        keys = list(r.scan_iter(f"btu:{SITE}:*")) + list(r.scan_iter(f"{KEY_PREFIX}*"))
        if keys:
            r.delete(*keys)
        db.drop()
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


if __name__ == "__main__":
    raise SystemExit(main())
