"""The soak's own reading of its cron strings: which UTC instants a schedule is due at, written
independently of the daemon (Python's zoneinfo, second by second) so the soak checks the
daemon's DST handling instead of repeating it.

Only what the soak generates is understood: 6 fields `second minute hour dom month dow`, each
`*`, `*/n`, `a/n`, `a`, `a-b` or `a,b,...`, with `*` in the three day fields. The DST rule is the
one of docs/cron.md: a *wildcard* job (second, minute or hour field starting with `*`) runs at
every real instant whose wall time matches (no runs in a spring-forward gap, both passes of a
fall-back hour); a *fixed-time* job runs only at the first pass of a repeated wall time, and a
fixed-time wall time inside a gap runs once, at the first real instant after the gap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo


class CronError(ValueError):
    """A cron string outside the subset the soak generates."""


def _field(text: str, lo: int, hi: int) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
            if step < 1:
                raise CronError(f"bad step in {text!r}")
        if part == "*":
            a, b = lo, hi
        elif "-" in part:
            a_text, b_text = part.split("-", 1)
            a, b = int(a_text), int(b_text)
        else:
            a = int(part)
            b = hi if step != 1 else a
        if not (lo <= a <= b <= hi):
            raise CronError(f"{text!r} is out of range {lo}-{hi}")
        out.update(range(a, b + 1, step))
    return frozenset(out)


@dataclass(frozen=True)
class Cron:
    text: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    wildcard: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        fields = text.split()
        if len(fields) != 6 or fields[3:] != ["*", "*", "*"]:
            raise CronError(f"the soak only generates 6-field crons with '* * *' days: {text!r}")
        wildcard = any(f.startswith("*") for f in fields[:3])
        return cls(text, _field(fields[0], 0, 59), _field(fields[1], 0, 59), _field(fields[2], 0, 23), wildcard)

    def matches_wall(self, wall: datetime) -> bool:
        return wall.second in self.seconds and wall.minute in self.minutes and wall.hour in self.hours


class WallClock:
    """Wall times of one zone for every second of a window, computed once and shared by all the
    schedules of that zone: (wall time, fold, whether the instant ends a spring-forward gap)."""

    def __init__(self, zone: str, start: int, end: int) -> None:
        self.zone = zone
        self.start = start
        tz = ZoneInfo(zone)
        self.walls: list[datetime] = []
        self.gap_after: dict[int, tuple[datetime, datetime]] = {}
        prev_off = datetime.fromtimestamp(start - 1, tz).utcoffset()
        for t in range(start, end):
            w = datetime.fromtimestamp(t, tz)
            off = w.utcoffset()
            if prev_off is not None and off is not None and off > prev_off:
                # Wall clock jumped forward at t: the wall times from (wall(t-1) + 1s) up to
                # wall(t) - 1s do not exist.
                before = datetime.fromtimestamp(t - 1, tz).replace(tzinfo=None) + timedelta(seconds=1)
                self.gap_after[t] = (before, w.replace(tzinfo=None))
            prev_off = off
            self.walls.append(w)

    def transitions(self) -> list[int]:
        """UTC instants in the window at which the zone's offset changes."""
        out = []
        for i in range(1, len(self.walls)):
            if self.walls[i].utcoffset() != self.walls[i - 1].utcoffset():
                out.append(self.start + i)
        return out


def _gap_has_match(cron: Cron, gap: tuple[datetime, datetime]) -> bool:
    w, end = gap
    while w < end:
        if cron.matches_wall(w):
            return True
        w += timedelta(seconds=1)
    return False


def due_instants(cron: Cron, clock: WallClock, start: int, end: int) -> list[int]:
    """UTC epoch seconds in [start, end) at which `cron` is due in the clock's zone."""
    out: list[int] = []
    lo = max(start, clock.start)
    hi = min(end, clock.start + len(clock.walls))
    for t in range(lo, hi):
        w = clock.walls[t - clock.start]
        hit = cron.matches_wall(w) and (cron.wildcard or w.fold == 0)
        if not hit and not cron.wildcard and t in clock.gap_after:
            hit = _gap_has_match(cron, clock.gap_after[t])
        if hit:
            out.append(t)
    return out


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
