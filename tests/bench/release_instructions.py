"""Redis' instructions per released run: the release script (`daemon/src/rq/scripts.rs`, or
`--rev REV`'s) releasing 10,000 staged runs, counted by valgrind's callgrind inside a private
`redis-server` (numbers go to docs/performance.md).

Wall time at the instant varies by a factor of two from one round to the next on a shared
2-core machine (`due_instant_bench.py`, `script_bench.py --release`); an instruction count does
not (±2 % between runs here: Lua's and Redis' hash seeds differ per process), so a change to the
script can be judged on it alone. It is a proxy: a Redis call's cache misses are not in it.

What is counted is what Redis does between the first and the last answer of a burst: 20
`EVALSHA` calls of 500 runs each, sent at once, in the segment layout the daemon sends (one
queue, one gate index with nothing paused or skipped, overlap `allow`, runs by schedule id) —
the runs were staged before with the stage script, uncounted. `--floor` counts, for scale, a
script that does only what no release can skip: per run `HGET status` + `HSET status
enqueued_at`, one `RPUSH` per 1,000 ids, and the same per-run answer.

    tests/.venvs/test/bin/python tests/bench/release_instructions.py [--rev b4b973b] [--floor]

Needs `valgrind` (Debian package) and `redis-server`; takes ~20 s (Redis runs ~50x slower under
callgrind).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import redis

from due_instant_bench import private_redis
from script_bench import lua, stage_script

RUNS, CALL = 10_000, 500
FLOOR_LUA = """
local out, res = {}, {}
for i = 1, #ARGV do
  local job = 'gb:rq:job:' .. ARGV[i]
  if redis.pcall('HGET', job, 'status') == 'scheduled' then
    redis.call('HSET', job, 'status', 'queued', 'enqueued_at', '2026-12-02T04:00:00.000000Z')
    out[#out + 1] = ARGV[i]
  end
  res[i] = 1
end
for i = 1, #out, 1000 do redis.call('RPUSH', KEYS[1], unpack(out, i, math.min(i + 999, #out))) end
return res
"""


def calls(r: redis.Redis, stage_lua: str, release_lua: str, floor: bool, staged: list[bytes]) -> list[tuple[list, list]]:
    """Stages every run (uncounted) and answers the release calls for them."""
    out = []
    for c in range(RUNS // CALL):
        schedules = [f"TS-{c:02d}{i:04d}" for i in range(CALL)]
        # as rq/id.rs writes them: "-" in a schedule is escaped ("_2d")
        ids = [f"site.local||btu-{s.replace('-', '_2d')}-1900000000" for s in schedules]
        keys, args = [], [CALL, 3600]
        for jid in ids:
            keys += [f"gb:claim:{jid}", f"gb:rq:job:{jid}"]
            args += [jid, 600, len(staged)] + staged
        r.eval(stage_lua, len(keys), *keys, *args)
        if floor:
            out.append((["gb:rq:queue:default"], ids))
            continue
        keys = ["gb:rq:queues", "gb:pauses", "gb:skips", "gb:rq:queue:default"]
        # header: prefix, runs, 1 gate index + its prefixes; one segment: queue 1, index 1,
        # allow, the due instant, runs by escaped schedule (form e) where the script has that
        # form, else by job id and schedule (form m)
        args = ["gb:rq", CALL, 1, "gb:pause:", "gb:skip:", "gb:lastjob:", CALL, 1, 1, "allow", 1_900_000_000]
        if "form == 'e'" in release_lua:
            args += ["e", "site.local||btu-", "-1900000000"] + [jid.split("-")[1] for jid in ids]
        else:
            args.append("m")
            for jid, s in zip(ids, schedules):
                args += [jid, s]
        out.append((keys, args))
    return out


def count(rev: str | None, floor: bool) -> int:
    text = FLOOR_LUA if floor else lua(rev, "RELEASE_LUA")[0]
    sparse = "local function answer(r, value)" in text
    # the floor stages as the scripts before STAGED_LUA did: status `scheduled`
    stage_lua, staged = stage_script(rev, old_form=floor)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        # Redis starts ~50x slower under callgrind
        server, port = private_redis(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"], wait_secs=30)
        try:
            r = redis.Redis(port=port)
            sha = r.script_load(text)
            burst = calls(r, stage_lua, text, floor, staged)
            subprocess.run(["callgrind_control", "--zero", str(server.pid)], check=True, capture_output=True)
            pipe = r.pipeline(transaction=False)
            for keys, args in burst:
                pipe.evalsha(sha, len(keys), *keys, *args)
            answers = pipe.execute()
            subprocess.run(["callgrind_control", "--dump", str(server.pid)], check=True, capture_output=True)
            # every run released: no run listed (the sparse answers), or a dense answer of 1s
            listed = any(answers) if sparse else any(a != 1 for call in answers for a in call)
            if listed or r.llen("gb:rq:queue:default") != RUNS:
                raise SystemExit(f"the burst did not release every run: {answers[0][:3]}…")
        finally:
            server.terminate()
            server.wait()
        # the file the dump wrote (the one at exit is the part after it)
        for f in Path(tmp).glob("callgrind.out*"):
            text = f.read_text(errors="replace")
            if "Trigger: dump" in text:
                return next(int(line.split()[1]) for line in text.splitlines() if line.startswith("totals:"))
    raise SystemExit("callgrind wrote no dump")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rev", help="count the release script of this git revision instead of the working tree")
    ap.add_argument("--floor", action="store_true", help="count only HGET + HSET + push per run, for scale")
    a = ap.parse_args()
    total = count(a.rev, a.floor)
    what = "floor (HGET + HSET + push)" if a.floor else (a.rev or "working tree")
    print(f"{what}: {total / RUNS:,.0f} Redis instructions per released run ({RUNS:,} runs, calls of {CALL})")


if __name__ == "__main__":
    main()
