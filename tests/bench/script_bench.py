"""Redis time per run of the enqueue script, or with `--release` of the release of staged runs
(numbers go to docs/rq.md, "Gates", and docs/performance.md).

Loads the Lua text of the enqueue script — `daemon/src/rq/scripts.rs` (+ `stamp.rs`) since
staging, or, with `--rev REV`, of the file that held it at that git revision: `rq/scripts.rs`,
`rq/script.rs`, else `rq/writer.rs` — sends batches of 200 runs with
the nine job fields the daemon writes (~400 bytes), and reads Redis' own time for each call from
`INFO commandstats` (usec of EVALSHA): the server-side cost per run, which no client change can
hide. Scripts from before the gates take the old argument layout (no gate keys).

Cases: overlap `allow` (pause EXISTS, skip ZREM, lastjob SET per run), `skip` (the previous job
is queued: GET + HMGET, no write) and `replace` (the previous job is queued: LREM from a
200-job queue, HSET, ZADD, then the write). Redis db 9 on `$BTU_TEST_REDIS_PORT` (default 6379),
keys `gb:*`, deleted at the end.

    tests/.venvs/test/bin/python tests/bench/script_bench.py [--batches 40] [--rev b2e70e4] [--release]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import time
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parents[2]
LUA = re.compile(r'const ENQUEUE_LUA: &str = r#"(.*?)"#;', re.S)
FIELDS = [b"data", os.urandom(300), b"status", b"queued", b"origin", b"bq:default", b"created_at",
          b"2026-12-02T04:00:00.000000Z", b"timeout", b"300", b"result_ttl", b"600", b"failure_ttl", b"604800",
          b"description", b"btu site s1 mod.func due 2026-12-02T04:00:00Z"]
RUNS = 200


def piece(text: str, name: str) -> str:
    m = re.search(rf'const {name}: &str = r#"(.*?)"#;', text, re.S)
    if not m:
        raise SystemExit(f"no {name}")
    return m.group(1)


def show(rev: str | None, path: str) -> str | None:
    if rev is None:
        f = REPO / path
        return f.read_text() if f.exists() else None
    p = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:{path}"], capture_output=True, text=True)
    return p.stdout if p.returncode == 0 else None


def staged_prelude(text: str) -> str:
    """What tells the scripts a staged hash, as rq/scripts.rs prefixes them: STAGED_LUA (no
    `enqueued_at`) since the release became one HSETNX per run, before it status `scheduled`."""
    return piece(text, "STAGED_LUA") if "const STAGED_LUA" in text else "local STAGED = 'scheduled'\n"


def stage_script(rev: str | None, old_form: bool = False) -> tuple[str, list[bytes]]:
    """The stage script of `rev` (None: the working tree) and the fields it is given per run
    (FIELDS but `enqueued_at`): with `status` scheduled for scripts before STAGED_LUA, or
    when `old_form` asks for that form."""
    text = show(rev, "daemon/src/rq/scripts.rs") or ""
    old = old_form or "const STAGED_LUA" not in text
    return staged_prelude(text) + piece(text, "STAGE_LUA"), [b"scheduled" if old and f == b"queued" else f for f in FIELDS]


def lua(rev: str | None, script: str = "ENQUEUE_LUA") -> tuple[str, str]:
    """The enqueue (or release) script's text and its argument layout: 'escaped' (the release
    sending `allow` runs by escaped schedule and answering only runs not released),
    'segments' (rq/scripts.rs with a last-job prefix per gate index, and the release sending
    runs in segments by schedule id), 'indexed' (rq/scripts.rs with the sites' gate indexes),
    'staged' (rq/scripts.rs: the enqueue script is STAMP_LUA + COMMON_LUA + ENQUEUE_LUA,
    stamped in Lua), 'gated' (rq/script.rs) or 'plain' (rq/writer.rs before the gates)."""
    if (text := show(rev, "daemon/src/rq/scripts.rs")) is not None:
        stamp = piece(show(rev, "daemon/src/rq/stamp.rs") or "", "STAMP_LUA")
        common = piece(text, "COMMON_LUA")
        layout = "segments" if "3 * i" in common else "indexed" if "nidx" in common else "staged"
        # as rq/scripts.rs assembles them: the release leaves PERSIST to its follow-up
        persist = f"local PERSIST = {'false' if script == 'RELEASE_LUA' else 'true'}\n"
        body = piece(text, script)
        if "form == 'e'" in body:
            layout = "escaped"
        return staged_prelude(text) + stamp + persist + common + body, layout
    if script != "ENQUEUE_LUA":
        raise SystemExit(f"no release script at {rev}")
    for path in ("daemon/src/rq/script.rs", "daemon/src/rq/writer.rs"):
        if (text := show(rev, path)) is not None and (m := LUA.search(text)):
            return m.group(1), ("gated" if "KEYS[k + 5]" in m.group(1) else "plain")
    raise SystemExit(f"no ENQUEUE_LUA at {rev}")


def batch(r: redis.Redis, sha: str, layout: str, overlap: str, n: int) -> float:
    gated = layout != "plain"
    keys = ["gb:rq:queues"]
    if layout in ("indexed", "segments"):
        keys += ["gb:pauses", "gb:skips"]
        args: list = ["gb:rq", RUNS, 1, "gb:pause:", "gb:skip:"] + (["gb:lastjob:"] if layout == "segments" else [])
    elif layout == "staged":
        args = ["gb:rq", RUNS]
    else:
        args = ["2026-12-02T04:00:00.000000Z", RUNS]
    if layout == "gated":
        args += ["gb:rq", int(time.time())]
    for i in range(RUNS):
        jid = f"gb-{overlap}-{n}-{i}"
        keys += [f"gb:claim:{jid}", f"gb:rq:job:{jid}", "gb:rq:queue:default"]
        if gated:
            keys += [f"gb:pause:s{i}", f"gb:skip:s{i}", f"gb:lastjob:s{i}"]
            args += [jid, 600, 1_900_000_000 + n, overlap] + (["1"] if layout != "gated" else []) + [len(FIELDS)]
        else:
            args += [jid, 600, len(FIELDS)]
        args += FIELDS
    before = r.info("commandstats").get("cmdstat_evalsha", {}).get("usec", 0)
    r.evalsha(sha, len(keys), *keys, *args)
    return (r.info("commandstats")["cmdstat_evalsha"]["usec"] - before) / RUNS


def release_batch(r: redis.Redis, sha: str, stage_lua: str, layout: str, n: int, staged: list[bytes]) -> float:
    """Stages RUNS runs (EVAL, not counted), then releases them with one EVALSHA: Redis' time
    per run of the release, what is left at a due instant."""
    keys, args = [], [RUNS] + ([3600] if "least" in stage_lua else [])
    ids = [f"gb-rel-{n}-s{i}-1900000000" for i in range(RUNS)]
    for jid in ids:
        keys += [f"gb:claim:{jid}", f"gb:rq:job:{jid}"]
        args += [jid, 600, len(staged)] + staged
    r.eval(stage_lua, len(keys), *keys, *args)
    keys, args = ["gb:rq:queues"], ["gb:rq", RUNS]
    if layout in ("segments", "escaped"):
        # one segment: queue 1, index 1, allow, the due instant, runs by escaped schedule (the
        # id's middle) or by job id and schedule id
        keys += ["gb:pauses", "gb:skips", "gb:rq:queue:default"]
        args += [1, "gb:pause:", "gb:skip:", "gb:lastjob:", RUNS, 1, 1, "allow", 1_900_000_000 + n]
        if layout == "escaped":
            args += ["e", f"gb-rel-{n}-", "-1900000000"] + [f"s{i}" for i in range(RUNS)]
        else:
            args.append("m")
            for i, jid in enumerate(ids):
                args += [jid, f"s{i}"]
    elif layout == "indexed":
        keys += ["gb:pauses", "gb:skips"]
        args += [1, "gb:pause:", "gb:skip:"]
    for i, jid in enumerate(ids if layout not in ("segments", "escaped") else []):
        keys += [f"gb:claim:{jid}", f"gb:rq:job:{jid}", "gb:rq:queue:default"]
        keys += [f"gb:pause:s{i}", f"gb:skip:s{i}", f"gb:lastjob:s{i}"]
        args += [jid, 1_900_000_000 + n, "allow"] + (["1"] if layout == "indexed" else [])
    before = r.info("commandstats").get("cmdstat_evalsha", {}).get("usec", 0)
    out = r.evalsha(sha, len(keys), *keys, *args)
    # the escaped layout's script lists only the runs it did not release
    if (out if layout == "escaped" else any(o != 1 for o in out)):
        raise SystemExit(f"release answered {out[:3]}…, not 1 (released)")
    return (r.info("commandstats")["cmdstat_evalsha"]["usec"] - before) / RUNS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--rev", help="measure the script of this git revision instead of the working tree")
    ap.add_argument("--release", action="store_true", help="measure the release of staged runs (since staging)")
    a = ap.parse_args()
    r = redis.Redis(port=int(os.environ.get("BTU_TEST_REDIS_PORT", "6379")), db=9)
    if a.release:
        text, layout = lua(a.rev, "RELEASE_LUA")
        stage_lua, staged = stage_script(a.rev)
        sha = r.script_load(text)
        per = [release_batch(r, sha, stage_lua, layout, n, staged) for n in range(a.batches)]
        if keys := r.keys("gb:*"):
            r.delete(*keys)
        print(f"{a.rev or 'working tree'}: release median {statistics.median(per):5.1f} us per run "
              f"(min {min(per):.1f}, max {max(per):.1f}; {a.batches} batches of {RUNS})")
        return
    text, layout = lua(a.rev)
    sha = r.script_load(text)
    for overlap in ("allow", "skip", "replace") if layout != "plain" else ("-",):
        per = [batch(r, sha, layout, overlap, n) for n in range(a.batches)]
        if keys := r.keys("gb:*"):
            r.delete(*keys)
        print(f"{a.rev or 'working tree'}: overlap {overlap:8} median {statistics.median(per):5.1f} us per run "
              f"(min {min(per):.1f}, max {max(per):.1f}; {a.batches} batches of {RUNS})")


if __name__ == "__main__":
    main()
