"""Due-instant benchmark: how long after its due instant a run's job id is visible in the queue
list, for N runs due in the same second (numbers go to docs/performance.md).

Two producers run side by side on one private Redis (a `redis-server` this script starts and
stops; no other data in it), each with N jobs due at the same instants, alternating so that they
never burst at the same time:

* btu-daemon (a RELEASE build, `--daemon`): N file schedules `0,20,40 * * * * *` on queue `btu`;
* rq's own `rq cron` (stock rq from `--rq-venv`, default tests/.venvs/rq-2.6.1): N
  `cron.register(...)` jobs `* * * * * 10,30,50` (croniter: seconds last) on queue `rqcron`.

A separate poller process (own connection) reads `MULTI; TIME; LLEN rq:queue:btu;
LLEN rq:queue:rqcron; EXEC` every 1 ms: the Redis clock at the moment the lengths were read, so a
job id counts as visible at the first poll that sees it (resolution: the poll interval, ~1 ms,
as an upper bound). Per run: visible time − due instant; per producer and N: p50 / p99 / max over
every run of the measured rounds, plus the per-round p99. Between bursts the harness deletes the
queue lists and job hashes it measured (never during a burst). The first burst of each producer
is a warm-up and is not counted.

    cargo build --release -p btu-daemon
    tests/.venvs/test/bin/python tests/bench/due_instant_bench.py [--runs 1000,10000] [--rounds 3]
        [--daemon target/release/btu-daemon] [--rq-venv tests/.venvs/rq-2.6.1] [--no-rq]
        [--log-level info] [--json FILE]

It needs about (rounds + 1) × 20 s per N, plus start-up. Benchmarks report numbers; nothing here
asserts a time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parents[2]
PERIOD = 20
DAEMON_SECONDS = (0, 20, 40)
RQ_SECONDS = (10, 30, 50)
QUEUES = {"btu-daemon": "rq:queue:btu", "rq cron": "rq:queue:rqcron"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def private_redis(wrapper: list[str] | None = None, wait_secs: float = 5.0) -> tuple[subprocess.Popen, int]:
    """A `redis-server` of the bench's own on a free loopback port, keeping nothing on disk,
    started under `wrapper` (e.g. valgrind) if given; answers it once it replies to PING."""
    port = free_port()
    proc = subprocess.Popen([*(wrapper or []), "redis-server", "--port", str(port), "--save", "",
                             "--appendonly", "no", "--bind", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL if wrapper else None)
    r = redis.Redis(port=port)
    deadline = time.monotonic() + wait_secs
    while True:
        try:
            r.ping()
            return proc, port
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.terminate()
                raise SystemExit(f"redis-server on port {port} did not answer within {wait_secs} s")
            time.sleep(0.05)


def poller(port: int, stop_at: float, out_path: str) -> None:
    """Polls both queue lengths with the Redis clock every 1 ms; writes the changes as JSON
    lines [redis_time_s, side, length]."""
    r = redis.Redis(port=port)
    last = {k: -1 for k in QUEUES}
    with open(out_path, "w") as out:
        while time.time() < stop_at:
            pipe = r.pipeline(transaction=True)
            pipe.time()
            for key in QUEUES.values():
                pipe.llen(key)
            (sec, usec), *lens = pipe.execute()
            t = sec + usec / 1e6
            for side, n in zip(QUEUES, lens):
                if n != last[side]:
                    last[side] = n
                    out.write(json.dumps([t, side, n]) + "\n")
            time.sleep(0.001)


def write_daemon_files(tmp: Path, port: int, n: int, log_level: str) -> Path:
    lines = ['[defaults]\nzone = "UTC"\nqueue = "btu"\ntimeout = 60\n']
    for i in range(n):
        lines.append(f'[[schedule]]\nid = "s{i:05d}"\nfunction = "bench_tasks.f"\n'
                     f'cron = "0,20,40 * * * * *"\nkwargs = {{ i = {i} }}\n')
    (tmp / "schedules.toml").write_text("".join(lines))
    cfg = tmp / "daemon.toml"
    cfg.write_text(
        f'[daemon]\nsocket_path = "{tmp}/btu.sock"\nlog_level = "{log_level}"\nrebuild_interval_secs = 3600\n'
        f'[redis]\nurl = "redis://127.0.0.1:{port}/0"\n'
        f'[file]\npath = "{tmp}/schedules.toml"\nsite = "bench"\nmode = "plain"\n')
    return cfg


def write_rq_files(tmp: Path, n: int) -> Path:
    (tmp / "bench_tasks.py").write_text("def f(i):\n    return i\n")
    cfg = tmp / "rq_cron_config.py"
    cfg.write_text(
        "from rq import cron\nfrom bench_tasks import f\n"
        f"for i in range({n}):\n"
        "    cron.register(f, queue_name='rqcron', kwargs={'i': i}, cron='* * * * * 10,30,50')\n")
    return cfg


def next_instant(seconds: tuple[int, ...], after: float) -> int:
    t = int(after) + 1
    while t % 60 not in seconds:
        t += 1
    return t


def pct(sorted_vals: list[float], p: float) -> float:
    return sorted_vals[min(len(sorted_vals) - 1, round((len(sorted_vals) - 1) * p))]


def latencies(events: list[tuple[float, int]], due: int, n: int) -> tuple[list[float] | None, int]:
    """Per job (k = 1..n): ms from `due` to the first poll that saw the list reach base + k
    jobs (base: its length before the instant). Also answers how many were seen."""
    base = 0
    for t, length in events:
        if t < due:
            base = length
    out: list[float] = []
    for t, length in events:
        if t < due or t >= due + 8:
            continue
        while len(out) < min(length - base, n):
            out.append((t - due) * 1e3)
    return (out if len(out) == n else None), len(out)


def cleanup(r: redis.Redis, key: str) -> None:
    ids = r.lrange(key, 0, -1)
    for i in range(0, len(ids), 1000):
        r.delete(*[b"rq:job:" + j for j in ids[i:i + 1000]])
    r.delete(key)


def measure(n: int, rounds: int, args: argparse.Namespace, port: int, tmp: Path) -> dict:
    r = redis.Redis(port=port)
    r.flushall()
    procs: list[subprocess.Popen] = []
    logs = []
    sides = {"btu-daemon": DAEMON_SECONDS}
    dcfg = write_daemon_files(tmp, port, n, args.log_level)
    dlog = open(tmp / f"daemon-{n}.log", "w")
    logs.append(dlog)
    procs.append(subprocess.Popen([args.daemon, "--config", str(dcfg)], stdout=dlog, stderr=subprocess.STDOUT))
    if not args.no_rq:
        sides["rq cron"] = RQ_SECONDS
        rcfg = write_rq_files(tmp, n)
        rlog = open(tmp / f"rq-cron-{n}.log", "w")
        logs.append(rlog)
        procs.append(subprocess.Popen(
            [str(Path(args.rq_venv) / "bin" / "rq"), "cron", "--url", f"redis://127.0.0.1:{port}/0",
             "--path", str(tmp), str(rcfg)], stdout=rlog, stderr=subprocess.STDOUT, cwd=tmp))
    try:
        # Start-up (the daemon plans, rq cron imports N registrations): give both ~10 s, then
        # the first burst of each side is a warm-up.
        start = time.time() + 10
        first = {side: next_instant(secs, start) for side, secs in sides.items()}
        dues = {side: [first[side] + PERIOD * k for k in range(rounds + 1)] for side in sides}
        end = max(d[-1] for d in dues.values()) + 9
        ev_path = tmp / f"events-{n}.jsonl"
        p = mp.get_context("spawn").Process(target=poller, args=(port, end, str(ev_path)))
        p.start()
        # Clean each side's queue 8 s after each of its bursts (the other side is quiet then),
        # and before the first (bursts due before the measurement started).
        cleanups = sorted([(d + 8, side) for side, ds in dues.items() for d in ds]
                          + [(ds[0] - 5, side) for side, ds in dues.items()])
        for at, side in cleanups:
            time.sleep(max(0.0, at - time.time()))
            for proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[0]} exited early; see the logs in {tmp}")
            cleanup(r, QUEUES[side])
        p.join()
        events: dict[str, list[tuple[float, int]]] = {side: [] for side in sides}
        for line in ev_path.read_text().splitlines():
            t, side, length = json.loads(line)
            if side in events:
                events[side].append((t, length))
        result: dict = {}
        for side in sides:
            per_round = []
            all_ms: list[float] = []
            for due in dues[side][1:]:
                ms, seen = latencies(events[side], due, n)
                if ms is None:
                    per_round.append({"due": due, "complete": False, "seen": seen})
                    continue
                s = sorted(ms)
                per_round.append({"due": due, "complete": True, "p50": pct(s, .5), "p99": pct(s, .99), "max": s[-1]})
                all_ms.extend(ms)
            s = sorted(all_ms)
            result[side] = {"rounds": per_round, "runs": len(s),
                            "p50": pct(s, .5) if s else None, "p99": pct(s, .99) if s else None,
                            "max": s[-1] if s else None}
        return result
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for f in logs:
            f.close()


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="1000,10000", help="comma-separated N (runs due in the same second)")
    ap.add_argument("--rounds", type=int, default=3, help="measured bursts per producer and N (after one warm-up)")
    ap.add_argument("--daemon", default=str(REPO / "target" / "release" / "btu-daemon"))
    ap.add_argument("--rq-venv", default=str(REPO / "tests" / ".venvs" / "rq-2.6.1"))
    ap.add_argument("--no-rq", action="store_true", help="measure btu-daemon only")
    ap.add_argument("--log-level", default="info", help="the daemon's log_level (default info, as shipped)")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, poll events)")
    args = ap.parse_args()
    if not Path(args.daemon).is_file():
        print(f"no daemon binary at {args.daemon}: cargo build --release -p btu-daemon", file=sys.stderr)
        return 2
    if not args.no_rq and not (Path(args.rq_venv) / "bin" / "rq").is_file():
        print(f"no rq in {args.rq_venv}: bash tests/setup-rq-venvs.sh", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="btu-due-bench-"))
    redis_proc, port = private_redis()
    results: dict = {}
    try:
        for n in (int(x) for x in args.runs.split(",")):
            res = measure(n, args.rounds, args, port, tmp)
            results[n] = res
            for side, v in res.items():
                rounds = ", ".join(fmt(x["p99"]) if x["complete"] else f"incomplete ({x['seen']}/{n})"
                                   for x in v["rounds"])
                print(f"{side:10} N={n:>6}: visible after due p50 {fmt(v['p50'])} ms, p99 {fmt(v['p99'])} ms, "
                      f"max {fmt(v['max'])} ms over {v['runs']} runs (per-round p99: {rounds})", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    finally:
        redis_proc.terminate()
        redis_proc.wait()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
