"""The soak's schedules and what it expects of them: 1,000 rows (every-second, every-minute and
local-time DST-sensitive ones in three zones), each with its history of versions (edits) and the
windows in which a missed run has a known cause (a cancel) or either version may run (an edit)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timezone

from soak_cron import Cron, WallClock, due_instants

SITE = "soak.local"
QUEUE = "soak"
FUNCTION = "soak_tasks.record"

# Europe changes its clocks at 01:00 UTC on the last Sunday of March and October, in every zone
# at the same instant, each at a different local hour: the soak's three zones all cross one
# transition at T, at three different wall times. (hour = the repeated / missing local hour)
ZONES = [("Europe/London", 1), ("Europe/Berlin", 2), ("Europe/Helsinki", 3)]
TRANSITIONS = {
    "fall": datetime(2027, 10, 31, 1, 0, 0, tzinfo=timezone.utc).timestamp(),
    "spring": datetime(2027, 3, 28, 1, 0, 0, tzinfo=timezone.utc).timestamp(),
}


def escape(text: str) -> str:
    """rq::job_id's escaping (docs/rq.md): every byte outside [A-Za-z0-9] becomes `_xx`."""
    return "".join(chr(b) if chr(b).isascii() and chr(b).isalnum() else f"_{b:02x}" for b in text.encode())


def job_id(schedule: str, due: int) -> str:
    stamp = datetime.fromtimestamp(due, timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"btu-{escape(SITE)}-{escape(schedule)}-{stamp}"


def parse_job_id(jid: str) -> tuple[str, int] | None:
    """(escaped schedule, due) of a soak job id, None for anything else."""
    prefix = f"btu-{escape(SITE)}-"
    if not jid.startswith(prefix) or jid.count("-") != 3:
        return None
    esc_sched, stamp = jid[len(prefix):].split("-")
    try:
        due = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return esc_sched, int(due.timestamp())


@dataclass
class Version:
    since: float  # fake-clock epoch seconds from which this row applies
    cron: str
    zone: str
    enabled: bool = True


@dataclass
class Schedule:
    id: str
    kind: str
    versions: list[Version]
    blurred: list[tuple[float, float]] = field(default_factory=list)  # edits: either version may run
    cancelled: list[tuple[float, float]] = field(default_factory=list)  # cancel storm: misses explained

    @property
    def current(self) -> Version:
        return self.versions[-1]


def make_schedules(count: int, dst: str, lead: float, run_secs: float, rng: random.Random) -> list[Schedule]:
    """`count` schedules: 1 % every second, 69 % every minute (UTC, seconds spread), 30 % local-time
    DST-sensitive ones across the three zones, built so that their interesting instants (the
    first and the second pass of the repeated hour, or the gap) fall inside the run."""
    n_second = max(1, count // 100)
    n_dst = count * 30 // 100
    n_minute = count - n_second - n_dst
    out: list[Schedule] = []

    def add(kind: str, cron: str, zone: str = "UTC") -> None:
        Cron.parse(cron)  # every generated string must be one the checker reads
        out.append(Schedule(f"SOAK-{len(out) + 1:04d}", kind, [Version(0.0, cron, zone)]))

    for _ in range(n_second):
        add("every-second", "* * * * * *")
    for i in range(n_minute):
        add("every-minute", f"{i % 60} * * * * *")
    after = max(10, int(run_secs - lead) - 5)  # seconds of the run after the transition
    for i in range(n_dst):
        zone, hour = ZONES[i % len(ZONES)]
        slot = (i // len(ZONES)) % 5
        if slot == 0:  # wildcard, every 15 s of the repeated / missing hour
            add("dst-wildcard", f"{i % 15}/15 * {hour} * * *", zone)
        elif slot == 1:  # wildcard, every 2 minutes
            add("dst-wildcard", f"{i % 60} */2 {hour} * * *", zone)
        elif slot == 2:  # wildcard over that hour and the next: every minute
            add("dst-wildcard", f"{i % 60} * {hour}-{hour + 1} * * *", zone)
        elif dst == "fall":
            # fixed-time: half at a first pass just before T (must run once), half at a second
            # pass just after T (must not run: that wall time already ran an hour earlier).
            if slot == 3:
                off = 3600 - rng.randint(2, max(3, int(lead) - 5))
            else:
                off = rng.randint(1, after)
            add("dst-fixed", f"{off % 60} {off // 60} {hour} * * *", zone)
        else:
            # spring: half inside the gap (all run once, at T), half just after it.
            off = rng.randint(0, 3599) if slot == 3 else rng.randint(0, after)
            h = hour if slot == 3 else hour + 1
            add("dst-fixed", f"{off % 60} {off // 60} {h} * * *", zone)
    return out


@dataclass
class Expectation:
    expected: dict[str, tuple[str, int]]  # job id -> (schedule, due): must be enqueued once
    acceptable: set[str]  # job ids that may or may not run (an edit's window)
    transitions: dict[str, list[int]]  # zone -> transition instants inside the run


def expectations(schedules: list[Schedule], start: int, end: int) -> Expectation:
    """Every due instant in [start, end) of every schedule, version by version."""
    clocks = {z: WallClock(z, start, end) for z in {v.zone for s in schedules for v in s.versions}}
    expected: dict[str, tuple[str, int]] = {}
    acceptable: set[str] = set()
    for s in schedules:
        for i, v in enumerate(s.versions):
            lo = max(start, int(v.since) + 1 if i else start)
            hi = min(end, int(s.versions[i + 1].since) + 1) if i + 1 < len(s.versions) else end
            dues = due_instants(Cron.parse(v.cron), clocks[v.zone], start, end)
            for d in dues:
                blurred = any(a <= d <= b for a, b in s.blurred)
                if blurred:
                    acceptable.add(job_id(s.id, d))
                elif v.enabled and lo <= d < hi:
                    expected[job_id(s.id, d)] = (s.id, d)
    transitions = {z: c.transitions() for z, c in clocks.items() if z != "UTC"}
    return Expectation(expected, acceptable - set(expected), transitions)
