"""The faults the soak injects, one at a time at random moments, and the record of each: when it
started and ended on the daemons' (faked) clock, which is what explains a missed run later."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import btu_client

from soak_plan import SITE, Schedule, Version
from soak_services import SoakDaemon, SoakMariaDb, SoakRedis, wait_until

KINDS = ["kill-daemon-a", "kill-daemon-b", "redis-restart", "mariadb-restart", "storm", "edit"]


@dataclass
class Event:
    kind: str
    start: float  # fake-clock epoch seconds
    end: float
    detail: str = ""


@dataclass
class FaultLog:
    events: list[Event] = field(default_factory=list)
    notify_ok: int = 0
    notify_errors: int = 0
    cancels: int = 0

    def outages(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]


class Chaos:
    def __init__(self, *, daemons: list[SoakDaemon], redis_: SoakRedis, mariadb: SoakMariaDb,
                 schedules: list[Schedule], clock: Callable[[], float], rng: random.Random,
                 rebuild_secs: int) -> None:
        self.daemons, self.redis, self.mariadb = daemons, redis_, mariadb
        self.schedules, self.clock, self.rng, self.rebuild_secs = schedules, clock, rng, rebuild_secs
        self.log = FaultLog()
        self.by_id = {s.id: s for s in schedules}

    # --- helpers ---------------------------------------------------------------------------------
    def _notify(self, daemon: SoakDaemon, ids: list[str]) -> bool:
        try:
            btu_client.notify(ids, site=SITE, socket_path=str(daemon.socket_path), timeout=10.0)
            self.log.notify_ok += 1
            return True
        except btu_client.BtuError:
            self.log.notify_errors += 1
            return False

    def _wait_daemon(self, d: SoakDaemon) -> None:
        def up() -> bool:
            try:
                btu_client.ping(socket_path=str(d.socket_path), timeout=1.0)
                return True
            except btu_client.BtuError:
                return False
        wait_until(up, 60, f"{d.name} answering on {d.socket_path}")

    # --- the faults ------------------------------------------------------------------------------
    def kill_daemon(self, d: SoakDaemon) -> None:
        t0 = self.clock()
        d.kill()
        time.sleep(self.rng.uniform(0.5, 4.0))
        d.start()
        self._wait_daemon(d)
        self.log.events.append(Event(f"kill-{d.name}", t0, self.clock(), "SIGKILL, restarted"))

    def restart_redis(self) -> None:
        t0 = self.clock()
        self.redis.crash()
        time.sleep(self.rng.uniform(1.0, 3.0))
        self.redis.start()
        self.log.events.append(Event("redis-restart", t0, self.clock(), "SIGKILL, restarted on its AOF"))

    def restart_mariadb(self) -> None:
        t0 = self.clock()
        self.mariadb.stop()
        # While it is down: notifies must fail without dropping the plan, rebuilds keep it.
        ids = [s.id for s in self.rng.sample(self.schedules, 10) if s.current.enabled]
        for d in self.daemons:
            self._notify(d, ids)
        time.sleep(self.rng.uniform(0.5, 2.0))
        self.mariadb.start()
        self.log.events.append(Event("mariadb-restart", t0, self.clock(), f"SIGTERM, restarted; {len(ids)} notifies while down"))

    def storm(self) -> None:
        """8 threads notify unchanged schedules for 2 s (no run may be lost or doubled), then a
        batch of schedules is cancelled on both daemons and notified back."""
        t0 = self.clock()
        stop = time.monotonic() + 2.0
        ids = [s.id for s in self.schedules]

        def hammer(seed: int) -> None:
            r = random.Random(seed)
            while time.monotonic() < stop:
                self._notify(r.choice(self.daemons), r.sample(ids, r.randint(1, 5)))

        threads = [threading.Thread(target=hammer, args=(self.rng.random(),)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        victims = [s for s in self.rng.sample(self.schedules, 20) if s.current.enabled]
        c0 = self.clock()
        ok = True
        for d in self.daemons:
            for s in victims:
                try:
                    btu_client.cancel(s.id, site=SITE, socket_path=str(d.socket_path), timeout=10.0)
                    self.log.cancels += 1
                except btu_client.BtuError:
                    ok = False
        time.sleep(self.rng.uniform(0.5, 3.0))
        for d in self.daemons:
            ok = self._notify(d, [s.id for s in victims]) and ok
        # A daemon that missed the re-notify picks the schedules up at its next rebuild.
        c1 = self.clock() + 2.0 + (0 if ok else self.rebuild_secs + 5)
        for s in victims:
            s.cancelled.append((c0 - 0.5, c1))
        self.log.events.append(Event("storm", t0, self.clock(), f"notify storm 2 s x 8 threads, {len(victims)} cancelled + re-notified"))

    def edit(self) -> None:
        """Edits rows in MariaDB as the BTU app does (commit, then notify each daemon): new
        second offsets, disabling, enabling."""
        pool = [s for s in self.schedules if s.kind in ("every-minute", "every-second")]
        victims = self.rng.sample(pool, 10)
        t0 = self.clock()
        conn = self.mariadb.connect("soak")
        changes = []
        try:
            with conn.cursor() as cur:
                for s in victims:
                    cur_v = s.current
                    if not cur_v.enabled:
                        new = Version(t0, cur_v.cron, cur_v.zone, True)
                    elif self.rng.random() < 0.3:
                        new = Version(t0, cur_v.cron, cur_v.zone, False)
                    else:
                        new = Version(t0, f"{self.rng.randrange(60)} * * * * *", cur_v.zone, True)
                    cur.execute("UPDATE `tabBTU Task Schedule` SET cron_string = %s, enabled = %s, modified = NOW(6)"
                                " WHERE name = %s", (new.cron, int(new.enabled), s.id))
                    changes.append((s, new))
        finally:
            conn.close()
        ok = all([self._notify(d, [s.id for s in victims]) for d in self.daemons])
        t1 = self.clock() + 2.0 + (0 if ok else self.rebuild_secs + 5)
        for s, new in changes:
            s.versions.append(new)
            s.blurred.append((t0 - 1.0, t1))
        self.log.events.append(Event("edit", t0, self.clock(), f"{len(changes)} rows edited + notified"))

    # --- the loop --------------------------------------------------------------------------------
    def run(self, until: float, gap: tuple[float, float]) -> None:
        """Faults until the fake clock reaches `until`: first every kind once (shuffled), then
        random ones, each after a random pause."""
        order = KINDS[:]
        self.rng.shuffle(order)
        while True:
            time.sleep(self.rng.uniform(*gap))
            if self.clock() >= until:
                return
            kind = order.pop(0) if order else self.rng.choice(KINDS)
            {
                "kill-daemon-a": lambda: self.kill_daemon(self.daemons[0]),
                "kill-daemon-b": lambda: self.kill_daemon(self.daemons[1]),
                "redis-restart": self.restart_redis,
                "mariadb-restart": self.restart_mariadb,
                "storm": self.storm,
                "edit": self.edit,
            }[kind]()

