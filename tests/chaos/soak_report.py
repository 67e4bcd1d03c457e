"""Ground truth and the verdict. What counts is what the workers executed (the `soak:*` hashes
written by soak_tasks.record) and the RQ job hashes left in Redis, keyed by the deterministic job
id (site, schedule, due) — never the daemon's own history or counters."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime

import redis

from soak_cron import Cron, WallClock, iso
from soak_faults import FaultLog
from soak_plan import Expectation, Schedule, escape, parse_job_id
from soak_tasks import ENQUEUED_KEY, EXEC_KEY, STARTED_KEY

# After Redis answers again the daemons reconnect (backoff up to 5 s) and rewrite their plan.
RECOVERY_SLACK = 8.0


@dataclass
class Truth:
    executions: dict[str, int]  # job id -> times a worker executed it
    enqueued_at: dict[str, float]  # job id -> the job hash's enqueued_at (daemon's clock)
    started_at: dict[str, float]  # job id -> first worker start (real clock)
    hashes_only: set[str]  # job ids whose hash exists but no worker executed them


def _ts(raw: bytes | str) -> float | None:
    text = raw.decode() if isinstance(raw, bytes) else raw
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def collect(r: redis.Redis) -> Truth:
    executions = {k.decode(): int(v) for k, v in r.hgetall(EXEC_KEY).items()}
    enq = {k.decode(): t for k, v in r.hgetall(ENQUEUED_KEY).items() if (t := _ts(v)) is not None}
    started = {k.decode(): float(v) for k, v in r.hgetall(STARTED_KEY).items()}
    hashes_only: set[str] = set()
    for key in r.scan_iter(match="rq:job:btu-*", count=1000):
        jid = key.decode()[len("rq:job:"):]
        if jid in executions:
            continue
        hashes_only.add(jid)
        t = _ts(r.hget(key, "enqueued_at") or b"")
        if t is not None:
            enq[jid] = t
    return Truth(executions, enq, started, hashes_only)


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


@dataclass
class Verdict:
    window: tuple[str, str]
    runs_expected: int = 0
    enqueued_exactly_once: int = 0
    missed: int = 0
    missed_explained: dict[str, int] = field(default_factory=dict)
    missed_unexplained: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    executions_total: int = 0
    lateness_ms: dict[str, float] = field(default_factory=dict)
    worker_start_lateness_ms: dict[str, float] = field(default_factory=dict)
    lateness_in_outages_max_ms: float = 0.0
    dst: dict[str, object] = field(default_factory=dict)
    faults: list[dict[str, object]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (not self.duplicated and not self.missed_unexplained and not self.unexpected
                and self.runs_expected > 0)

    def to_json(self) -> str:
        return json.dumps(asdict(self) | {"ok": self.ok}, indent=2)


def _explain(sched: Schedule, due: int, redis_windows: list[tuple[float, float]],
             runs_by_sched: dict[str, list[int]]) -> str | None:
    for a, b in sched.cancelled:
        if a <= due <= b:
            return "cancelled by the notify/cancel storm until re-notified"
    for a, b in redis_windows:
        if a <= due <= b:
            # The missed-run rule: after the outage only the latest due run is enqueued; an
            # older one is skipped only when a newer one of the same schedule was enqueued.
            if any(due < d <= b for d in runs_by_sched.get(sched.id, [])):
                return "Redis restart: superseded by the schedule's catch-up run (missed-run rule)"
    return None


def judge(schedules: list[Schedule], exp: Expectation, truth: Truth, faults: FaultLog,
          start: int, end: int, offset: float) -> Verdict:
    v = Verdict(window=(iso(start), iso(end)))
    by_esc = {escape(s.id): s for s in schedules}
    runs_by_sched: dict[str, list[int]] = {}
    enqueued: dict[str, int] = dict(truth.executions)
    for jid in truth.hashes_only:
        enqueued.setdefault(jid, 1)
    v.executions_total = sum(truth.executions.values())
    for jid in enqueued:
        parsed = parse_job_id(jid)
        if parsed and parsed[0] in by_esc:
            runs_by_sched.setdefault(by_esc[parsed[0]].id, []).append(parsed[1])
    redis_windows = [(e.start - 1.0, e.end + RECOVERY_SLACK) for e in faults.outages("redis-restart")]

    def in_outage(due: int) -> bool:
        return any(a <= due <= b for a, b in redis_windows)

    v.runs_expected = len(exp.expected)
    late, late_start = [], []
    for jid, (sid, due) in exp.expected.items():
        n = enqueued.get(jid, 0)
        if n == 0:
            v.missed += 1
            why = _explain(next(s for s in schedules if s.id == sid), due, redis_windows, runs_by_sched)
            if why is None:
                v.missed_unexplained.append(f"{sid} due {iso(due)} ({jid})")
            else:
                v.missed_explained[why] = v.missed_explained.get(why, 0) + 1
            continue
        if n > 1:
            v.duplicated.append(f"{jid} executed {n} times")
            continue
        v.enqueued_exactly_once += 1
        t = truth.enqueued_at.get(jid)
        if t is None:
            continue
        if in_outage(due):
            v.lateness_in_outages_max_ms = max(v.lateness_in_outages_max_ms, (t - due) * 1000)
        else:
            late.append((t - due) * 1000)
            if jid in truth.started_at:
                late_start.append((truth.started_at[jid] + offset - due) * 1000)
    for jid, n in enqueued.items():
        parsed = parse_job_id(jid)
        if jid in exp.expected or parsed is None or not (start <= parsed[1] < end):
            continue
        if n > 1:
            v.duplicated.append(f"{jid} executed {n} times")
        elif jid not in exp.acceptable:
            v.unexpected.append(jid)
    for name, vals in (("lateness_ms", late), ("worker_start_lateness_ms", late_start)):
        setattr(v, name, {"p50": round(_pct(vals, 50), 1), "p99": round(_pct(vals, 99), 1),
                          "max": round(max(vals, default=0.0), 1), "count": len(vals)})
    v.dst = _dst_summary(schedules, exp, enqueued, start, end)
    v.faults = [{"kind": e.kind, "start": iso(e.start), "secs": round(e.end - e.start, 1), "detail": e.detail}
                for e in faults.events]
    v.notes.append(f"notifies answered {faults.notify_ok}, refused/failed {faults.notify_errors}; cancels {faults.cancels}")
    return v


def _dst_summary(schedules: list[Schedule], exp: Expectation, enqueued: dict[str, int],
                 start: int, end: int) -> dict[str, object]:
    """What the DST-sensitive schedules proved: transitions crossed, runs expected and done, and
    the wall times a naive scheduler would have run twice (second pass of a fixed-time job)."""
    dst = [s for s in schedules if s.kind.startswith("dst")]
    clocks = {z: WallClock(z, start, end) for z in {s.current.zone for s in dst}}
    second_pass = 0
    for s in dst:
        c = Cron.parse(s.current.cron)
        if c.wildcard:
            continue
        clock = clocks[s.current.zone]
        second_pass += sum(1 for w in clock.walls if w.fold == 1 and c.matches_wall(w))
    ids = {s.id for s in dst}
    expected = [j for j, (sid, _) in exp.expected.items() if sid in ids]
    done = sum(1 for j in expected if enqueued.get(j, 0) == 1)
    return {
        "transitions": {z: [iso(t) for t in ts] for z, ts in exp.transitions.items()},
        "schedules": len(dst),
        "runs_expected": len(expected),
        "runs_enqueued_once": done,
        "fixed_time_second_pass_instants_not_to_run": second_pass,
    }


def render(v: Verdict) -> str:
    lines = [
        f"soak window (daemons' clock): {v.window[0]} .. {v.window[1]}",
        f"runs expected:          {v.runs_expected}",
        f"enqueued exactly once:  {v.enqueued_exactly_once}",
        f"missed:                 {v.missed} ({len(v.missed_unexplained)} unexplained)",
    ]
    lines += [f"    {n:6d}  {why}" for why, n in sorted(v.missed_explained.items())]
    lines += [f"    UNEXPLAINED {m}" for m in v.missed_unexplained[:20]]
    lines.append(f"duplicated:             {len(v.duplicated)}")
    lines += [f"    {d}" for d in v.duplicated[:20]]
    lines.append(f"unexpected runs:        {len(v.unexpected)}")
    lines += [f"    {u}" for u in v.unexpected[:20]]
    lines.append(f"worker executions:      {v.executions_total}")
    lt, ws = v.lateness_ms, v.worker_start_lateness_ms
    lines.append(f"lateness outside outages (job enqueued_at - due): p50 {lt.get('p50')} ms, "
                 f"p99 {lt.get('p99')} ms, worst {lt.get('max')} ms over {lt.get('count')} runs")
    lines.append(f"worker start - due, outside outages: p50 {ws.get('p50')} ms, p99 {ws.get('p99')} ms, worst {ws.get('max')} ms")
    lines.append(f"worst lateness of a run due inside a Redis outage: {v.lateness_in_outages_max_ms:.0f} ms")
    lines.append(f"DST: {json.dumps(v.dst)}")
    lines.append("faults:")
    lines += [f"    {f['start']}  {f['kind']:<18} {f['secs']:>5} s  {f['detail']}" for f in v.faults]
    lines += v.notes
    lines.append("RESULT: " + ("PASS" if v.ok else "FAIL"))
    return "\n".join(lines)
