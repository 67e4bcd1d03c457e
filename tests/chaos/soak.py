#!/usr/bin/env python3
"""Chaos soak: two btu-daemons on one Redis, 1,000 MariaDB schedules, stock rq workers draining,
and faults at random moments (SIGKILL + restart of either daemon, Redis and MariaDB restarts, a
notify/cancel storm through the btu_client wheel, schedule edits). Every due instant of every
schedule is checked against what the workers executed. See tests/chaos/README.md.

    tests/.venvs/test/bin/python tests/chaos/soak.py --minutes 2

Exit status 0 only when no run was duplicated, no run ran that should not have, and every
missed run is explained by the missed-run rule and the outage (or cancel) that caused it.

DST: the daemons run under libfaketime with a constant offset that puts their clock shortly
before a real European DST transition (2027-10-31 01:00 UTC fall back by default, or
2027-03-28 spring forward with --dst spring), so the local-time schedules of all three zones
cross it during the run. Only the daemons' clock is shifted (Redis, MariaDB and the workers
keep the real one); every instant below is on the daemons' clock."""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import btu_client
import redis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from soak_faults import Chaos  # noqa: E402
from soak_plan import FUNCTION, QUEUE, SITE, TRANSITIONS, Schedule, expectations, make_schedules  # noqa: E402
from soak_report import collect, judge, render  # noqa: E402
from soak_services import (REPO, SoakDaemon, SoakMariaDb, SoakRedis, SoakSetupError, WorkerPool,  # noqa: E402
                           faketime_lib, free_port, wait_until)

REBUILD_SECS = 30
RQ_RELEASES = ["1.15.1", "2.6.1", "3.0"] * 2  # two workers of each release


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, required=True, help="length of the measured run")
    p.add_argument("--schedules", type=int, default=1000)
    p.add_argument("--dst", choices=sorted(TRANSITIONS), default="fall")
    p.add_argument("--seed", type=int, default=None, help="fault and schedule randomness (printed)")
    p.add_argument("--redis-port", type=int, default=0, help="default: a free port")
    p.add_argument("--mysql-port", type=int, default=0, help="default: a free port")
    p.add_argument("--daemon-bin", type=Path, default=Path(os.environ.get("BTU_DAEMON_BIN", REPO / "target/debug/btu-daemon")))
    p.add_argument("--report", type=Path, help="also write the verdict as JSON here")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, AOF, datadir)")
    return p.parse_args()


def rq_bins() -> list[Path]:
    venvs = REPO / "tests" / ".venvs"
    out = []
    for rel in RQ_RELEASES:
        found = sorted(venvs.glob(f"rq-{rel}*"))
        if not found:
            raise SoakSetupError(f"no virtualenv for rq {rel} under {venvs}: run tests/setup-rq-venvs.sh")
        out.append(found[0] / "bin" / "rq")
    return out


def load_schedules(m: SoakMariaDb, schedules: list[Schedule]) -> None:
    conn = m.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE soak")
    conn.select_db("soak")
    script = (REPO / "tests" / "sql" / "schema.sql").read_text()
    lines = [ln for ln in script.splitlines() if not ln.strip().startswith("--")]
    with conn.cursor() as cur:
        for stmt in "\n".join(lines).split(";\n"):
            if stmt.strip():
                cur.execute(stmt)
        # The per-row zone column (docs/daemon.md: used when the table has one).
        cur.execute("ALTER TABLE `tabBTU Task Schedule` ADD COLUMN cron_time_zone varchar(140) DEFAULT NULL")
        cur.execute("INSERT INTO `tabBTU Task` (name, docstatus, desc_short, function_string, arguments, queue_name,"
                    " max_task_duration) VALUES ('SOAK-TASK', 1, 'soak', %s, '{}', %s, 60)", (FUNCTION, QUEUE))
        cur.executemany(
            "INSERT INTO `tabBTU Task Schedule` (name, task, enabled, queue_name, cron_string, cron_time_zone,"
            " run_frequency) VALUES (%s, 'SOAK-TASK', 1, %s, %s, %s, 'Cron Style')",
            [(s.id, QUEUE, s.current.cron, s.current.zone) for s in schedules])
    conn.close()


def daemon_config(work: Path, name: str, redis_port: int, mysql_port: int) -> tuple[Path, Path]:
    sock = work / f"{name}.sock"
    cfg = work / f"{name}.toml"
    cfg.write_text(f"""
[daemon]
rebuild_interval_secs = {REBUILD_SECS}
missed_run_grace_secs = 300
time_zone = "UTC"
socket_path = "{sock}"
log_level = "info"

[redis]
url = "redis://127.0.0.1:{redis_port}/0"

[[sites]]
name = "{SITE}"
host = "127.0.0.1"
port = {mysql_port}
user = "root"
password = ""
database = "soak"
mode = "plain"
""")
    return cfg, sock


def drain(r: redis.Redis) -> None:
    """Waits until the workers emptied the queue; fails when they stop making progress."""
    last, since = -1, time.monotonic()
    while (n := r.llen(f"rq:queue:{QUEUE}")) > 0:
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since > 60:
            raise SoakSetupError(f"the workers made no progress for 60 s with {n} jobs queued")
        time.sleep(1)


def main() -> int:
    args = parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    run_secs = args.minutes * 60
    lead = min(max(40.0, 0.4 * run_secs), 900.0)  # how long before the DST transition the run starts
    print(f"soak: {args.minutes} min, {args.schedules} schedules, DST {args.dst}, seed {seed}", flush=True)
    if not args.daemon_bin.exists():
        raise SoakSetupError(f"{args.daemon_bin} is missing: cargo build -p btu-daemon")
    lib = faketime_lib()
    work = Path(tempfile.mkdtemp(prefix="btu-soak-"))
    redis_ = SoakRedis(work, args.redis_port or free_port())
    mariadb = SoakMariaDb(work, args.mysql_port or free_port())
    daemons: list[SoakDaemon] = []
    workers: WorkerPool | None = None
    try:
        redis_.start()
        mariadb.install()
        mariadb.start()
        schedules = make_schedules(args.schedules, args.dst, lead, run_secs, rng)
        load_schedules(mariadb, schedules)
        worker_env = dict(os.environ, PYTHONPATH=str(HERE))
        workers = WorkerPool(work, rq_bins(), redis_.url, QUEUE, worker_env)
        workers.start()
        # One offset for both daemons: their clock reads `T - lead` about when the run starts.
        offset = math.floor(TRANSITIONS[args.dst] - lead - (time.time() + 8))
        env = dict(os.environ, LD_PRELOAD=str(lib), FAKETIME=f"{offset:+d}", FAKETIME_DONT_FAKE_MONOTONIC="1",
                   RUST_LOG=os.environ.get("BTU_SOAK_RUST_LOG", "info"))
        clock = lambda: time.time() + offset  # noqa: E731  (the daemons' clock)
        for name in ("daemon-a", "daemon-b"):
            cfg, sock = daemon_config(work, name, redis_.port, mariadb.port)
            d = SoakDaemon(name, args.daemon_bin, cfg, sock, env)
            d.start()
            daemons.append(d)

        def ready() -> bool:
            try:
                return all(any(s["schedules"] == len(schedules) for s in btu_client.status(socket_path=str(d.socket_path))["sites"])
                           for d in daemons)
            except btu_client.BtuError:
                return False
        wait_until(ready, 120, "both daemons to plan every schedule")
        start = math.ceil(clock()) + 1
        end = start + int(run_secs)
        print(f"soak: measuring {end - start} s from {time.strftime('%H:%M:%S')} (daemons' clock offset {offset:+d} s)", flush=True)
        chaos = Chaos(daemons=daemons, redis_=redis_, mariadb=mariadb, schedules=schedules, clock=clock,
                      rng=rng, rebuild_secs=REBUILD_SECS)
        gap = (2.0, 6.0) if run_secs <= 300 else (5.0, 25.0)
        chaos.run(until=end - 20, gap=gap)
        time.sleep(max(0.0, end + 3 - clock()))
        for d in daemons:
            d.stop()
        r = redis_.client()
        drain(r)
        time.sleep(3)  # the last jobs finish
        workers.stop()
        truth = collect(r)
        verdict = judge(schedules, expectations(schedules, start, end), truth, chaos.log, start, end, offset)
        print(render(verdict), flush=True)
        print(f"(seed {seed}; worker restarts {workers.restarts}; work dir {work}{'' if args.keep else ', removed'})")
        if args.report:
            args.report.write_text(verdict.to_json())
        return 0 if verdict.ok else 1
    finally:
        if workers is not None:
            workers.stop()
        for d in daemons:
            d.kill()
        redis_.stop()
        mariadb.stop()
        if not args.keep:
            import shutil
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SoakSetupError as e:
        print(f"soak: FAIL: {e}", file=sys.stderr)
        sys.exit(2)
