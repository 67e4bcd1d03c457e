"""Redis Sentinel: one master, one replica and three sentinels, real `redis-server` and
`redis-sentinel` processes on loopback ports of their own. The daemon finds the master through
the sentinels (`[redis] sentinels` + `master_name`, with a password), schedules fire every second
from a schedules file, and `SENTINEL FAILOVER` turns the replica into the master while runs fire.

Checked: runs continue against the new master (the time it took and how many runs are printed),
every job hash and queue entry on the new master and every history entry is there once (no run
enqueued twice), the old master is a replica afterwards, and the daemon log has one line naming
the old and the new master (and never the password). Fails, not skips, when the binaries are
missing (scripts/bootstrap.sh installs them). docs/operations.md "Redis Sentinel" gives the
numbers and how to reproduce them."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
import redis
from conftest import BTU_BIN, free_port, wait_until

MASTER_NAME = "btu-queue"
PASSWORD = "s3ntinel-test-secret"
SITE = "sentinel.local"
QUEUE = "sentinel"
SCHEDULES = 5  # each fires every second
ID_DUE = re.compile(r"-(\d{8}T\d{6}Z)$")


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: install Debian's redis-server and redis-sentinel (scripts/bootstrap.sh)")
    return path


@dataclass
class Server:
    port: int
    proc: subprocess.Popen

    def client(self, **kw) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=PASSWORD, socket_timeout=2, **kw)

    def role(self) -> str:
        try:
            return self.client().execute_command("ROLE")[0].decode()
        except redis.exceptions.RedisError:
            return "down"


@dataclass
class Sentinels:
    master: Server
    replica: Server
    sentinels: list[Server] = field(default_factory=list)

    def ask(self, i: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.sentinels[i].port, socket_timeout=2)

    def named_master(self) -> str:
        host, port = self.ask().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
        return f"{host.decode()}:{int(port)}"


def _start_server(d: Path, name: str, port: int, replica_of: int | None) -> Server:
    d = d / name
    d.mkdir()
    args = [_binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(d),
            "--save", "", "--appendonly", "no", "--requirepass", PASSWORD, "--masterauth", PASSWORD,
            "--logfile", str(d / "redis.log")]
    if replica_of is not None:
        args += ["--replicaof", "127.0.0.1", str(replica_of)]
    s = Server(port, subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))

    def up() -> bool:
        if s.proc.poll() is not None:
            pytest.fail(f"redis-server {name} did not start: {(d / 'redis.log').read_text(errors='replace')}")
        try:
            return bool(s.client().ping())
        except redis.exceptions.RedisError:
            return False
    wait_until(up, 20, f"redis-server {name} on port {port}")
    return s


def _start_sentinel(d: Path, i: int, master_port: int) -> Server:
    d = d / f"sentinel{i}"
    d.mkdir()
    port = free_port()
    conf = d / "sentinel.conf"  # sentinel rewrites its file: one per sentinel, writable
    conf.write_text(f"""port {port}
bind 127.0.0.1
dir {d}
logfile {d / 'sentinel.log'}
sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2
sentinel auth-pass {MASTER_NAME} {PASSWORD}
sentinel down-after-milliseconds {MASTER_NAME} 2000
sentinel failover-timeout {MASTER_NAME} 10000
sentinel parallel-syncs {MASTER_NAME} 1
""")
    s = Server(port, subprocess.Popen([_binary("redis-sentinel"), str(conf)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.STDOUT))

    def up() -> bool:
        if s.proc.poll() is not None:
            pytest.fail(f"redis-sentinel {i} did not start: {(d / 'sentinel.log').read_text(errors='replace')}")
        try:
            return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping())
        except redis.exceptions.RedisError:
            return False
    wait_until(up, 20, f"redis-sentinel {i} on port {port}")
    return s


@pytest.fixture()
def sentinel_set(tmp_path: Path) -> Iterator[Sentinels]:
    d = tmp_path / "redis"
    d.mkdir()
    master = _start_server(d, "master", free_port(), None)
    replica = _start_server(d, "replica", free_port(), master.port)
    env = Sentinels(master, replica)
    try:
        wait_until(lambda: replica.client().info("replication").get("master_link_status") == "up",
                   30, "the replica to sync with the master")
        env.sentinels = [_start_sentinel(d, i, master.port) for i in range(3)]

        def ready() -> bool:  # every sentinel knows the replica and the two other sentinels
            for i in range(3):
                s = env.ask(i)
                replicas = s.execute_command("SENTINEL", "REPLICAS", MASTER_NAME)
                others = s.execute_command("SENTINEL", "SENTINELS", MASTER_NAME)
                if len(replicas) != 1 or len(others) != 2:
                    return False
            return True
        wait_until(ready, 60, "the sentinels to find the replica and each other", interval=0.5)
        yield env
    finally:
        for s in [*env.sentinels, replica, master]:
            s.proc.kill()
            s.proc.wait()


def _config(tmp_path: Path, env: Sentinels, schedules: Path) -> str:
    sentinels = ", ".join(f'"127.0.0.1:{s.port}"' for s in env.sentinels)
    return f"""
[daemon]
socket_path = "{tmp_path / 'sentinel.sock'}"
[redis]
sentinels = [{sentinels}]
master_name = "{MASTER_NAME}"
password = "{PASSWORD}"
[file]
path = "{schedules}"
site = "{SITE}"
mode = "plain"
"""


def _schedules(tmp_path: Path) -> Path:
    p = tmp_path / "schedules.toml"
    p.write_text("".join(f"""
[[schedule]]
id = "every-second-{i}"
function = "e2e_tasks.record"
cron = "* * * * * *"
queue = "{QUEUE}"
kwargs = {{ marker_dir = "{tmp_path / 'markers'}" }}
""" for i in range(SCHEDULES)))
    return p


def _due(job_id: str) -> datetime:
    m = ID_DUE.search(job_id)
    assert m, job_id
    return datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


def test_failover_while_runs_fire_continues_on_the_new_master_without_duplicates(
        sentinel_set: Sentinels, start_daemon, tmp_path: Path):
    env = sentinel_set
    old, new = env.master, env.replica
    d = start_daemon(_config(tmp_path, env, _schedules(tmp_path)), name="sentinel", wait_for="redis connected")
    assert f"127.0.0.1:{old.port}" in d.log()
    wait_until(lambda: old.client().llen(f"rq:queue:{QUEUE}") >= 3 * SCHEDULES, 20, "runs on the first master")

    # The failover, while the schedules fire every second.
    before = {i.decode() for i in old.client().lrange(f"rq:queue:{QUEUE}", 0, -1)}
    failover_at = time.time()
    assert env.ask(1).execute_command("SENTINEL", "FAILOVER", MASTER_NAME) in (True, b"OK")
    wait_until(lambda: new.role() == "master", 30, "the replica to be promoted")
    wait_until(lambda: env.named_master() == f"127.0.0.1:{new.port}", 30, "the sentinels to name the new master")

    def fresh_on_new() -> set[str]:  # runs due after the failover began, on the new master
        ids = {i.decode() for i in new.client().lrange(f"rq:queue:{QUEUE}", 0, -1)}
        return {i for i in ids - before if _due(i).timestamp() > failover_at}
    wait_until(lambda: fresh_on_new(), 30, "runs on the new master", interval=0.05)
    continued_after = time.time() - failover_at
    time.sleep(5)  # keep firing against the new master
    wait_until(lambda: old.role() == "slave", 30, "the old master to become a replica")
    assert d.stop() == 0
    log = d.log()

    # The switch is logged once, with both addresses and without the password.
    changes = [ln for ln in log.splitlines() if "redis master changed" in ln]
    assert len(changes) == 1, log
    assert f"127.0.0.1:{old.port}" in changes[0] and f"127.0.0.1:{new.port}" in changes[0], changes[0]
    assert PASSWORD not in log

    # Every job hash and queue entry on the new master is there once, and so is every history
    # entry; nothing runs the jobs, so each hash has exactly one queue entry.
    c = new.client()
    queued = [i.decode() for i in c.lrange(f"rq:queue:{QUEUE}", 0, -1)]
    dup = [i for i, n in Counter(queued).items() if n > 1]
    assert not dup, f"job ids queued twice: {dup}"
    stopped_at = time.time()
    hashes = {k.decode().removeprefix("rq:job:") for k in c.scan_iter("rq:job:*")}
    # Runs staged ahead of their instant (docs/rq.md "Staging": no `enqueued_at`, an expiry, in
    # no queue) that the stopped daemon never reached are not jobs yet; they are all due after it stopped.
    staged = {h for h in hashes if not c.hexists(f"rq:job:{h}", "enqueued_at") and c.ttl(f"rq:job:{h}") > 0}
    assert all(_due(h).timestamp() > stopped_at - 5 for h in staged), sorted(staged)[:10]
    hashes -= staged
    assert hashes == set(queued), (sorted(hashes ^ set(queued)))[:10]
    for i in range(SCHEDULES):
        entries = [e.decode() for e in c.lrange(f"btu:{SITE}:history:every-second-{i}", 0, -1)]
        ids = [re.search(r'"job_id":"([^"]+)"', e).group(1) for e in entries]
        dup = [j for j, n in Counter(ids).items() if n > 1]
        assert not dup, f"history of every-second-{i} has a run twice: {dup}"
        assert set(ids) <= hashes, "every history entry names a job the new master has"

    # Runs continued: after the switch, every schedule has a run for every second.
    after = sorted({_due(i) for i in queued if _due(i).timestamp() > failover_at + continued_after + 1})
    assert len(after) >= 3, after
    for i in range(SCHEDULES):
        dues = sorted(_due(j) for j in queued if f"every-second-{i}-" in j and _due(j) in after)
        assert [(b - a).total_seconds() for a, b in zip(dues, dues[1:])] == [1.0] * (len(dues) - 1), dues
    # Nothing lost either: each schedule's runs on the new master are one per second from the
    # first to the last, unless the daemon logged the missed-run rule skipping some.
    gaps = 0
    for i in range(SCHEDULES):
        dues = sorted(_due(j) for j in queued if f"every-second-{i}-" in j)
        gaps += sum(int((b - a).total_seconds()) - 1 for a, b in zip(dues, dues[1:]))
    assert gaps == 0 or "missed runs skipped" in log, f"{gaps} runs missing on the new master"
    fresh = fresh_on_new()
    resent = re.search(r"enqueued_again=(\d+)", log)
    lost = [ln for ln in log.splitlines() if "lost with the old master" in ln]
    print(f"\nsentinel failover: runs continued on the new master {continued_after:.2f} s after SENTINEL FAILOVER; "
          f"{len(fresh)} runs due after it are on the new master, {len(queued)} jobs in all, "
          f"{len(lost)} runs re-sent after the switch (enqueued_again={resent.group(1) if resent else '-'}), "
          f"0 duplicates, {gaps} runs missing")

    # The CLI finds the same master through the sentinels.
    p = subprocess.run([str(BTU_BIN), "check-config", "--config", str(d.config)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"master 127.0.0.1:{new.port}" in p.stdout, p.stdout


@pytest.mark.parametrize("text, needle", [
    ('sentinels = ["127.0.0.1:26379"]', "redis.master_name"),
    ('master_name = "m"', "needs sentinels"),
    ('url = "redis://127.0.0.1:6379"\nsentinels = ["127.0.0.1:26379"]\nmaster_name = "m"', "not both"),
    ('sentinels = ["nohost"]\nmaster_name = "m"', "is not host:port"),
    ('sentinels = []\nmaster_name = "m"', "at least one"),
    ('password = "x"', "only used with sentinels"),
])
def test_sentinel_keys_are_checked_when_the_file_is_read(text, needle, tmp_path: Path, binaries):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(f"[redis]\n{text}\n[file]\npath = \"{_schedules(tmp_path)}\"\n")
    p = subprocess.run([str(BTU_BIN), "check-config", "--config", str(cfg)], capture_output=True, text=True)
    assert p.returncode != 0 and needle in p.stdout + p.stderr, (p.stdout, p.stderr)
