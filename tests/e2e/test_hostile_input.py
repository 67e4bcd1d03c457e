"""Hostile schedule ids and values through every entry point — MariaDB rows, the schedules file
and socket requests: quotes, `%`, NUL, `|`, unicode, Redis glob and key-separator characters, SQL,
very long ids, non-UTF-8 bytes. Each gets correct handling (planned, fired under its escaped job
id, its arguments intact) or a clear error/skip line; never an SQL or Redis key injection, and
every other schedule keeps firing."""

from __future__ import annotations

import re
import signal
import socket
from datetime import datetime, timezone
from pathlib import Path

import btu_client
import pymysql
import pytest
import redis
from btu_client import _core
from conftest import REDIS_DB, REDIS_HOST, REDIS_PORT, add_schedule, add_task, run_burst_worker, wait_until
from e2e_tasks import markers

HOSTILE = {
    "quote": "it's \"quoted\"",
    "percent": "100%_%s%%",
    "pipe": "a|b||c",
    "unicode": "Zeitplan-Ü-日本-😀",
    "glob": "x*?[ab]",
    "colon": "a:b:upcoming",
    "sql": "x'); DROP TABLE `tabBTU Task Schedule`; --",
    "nul": "a\x00b",
    "newline": "line1\nline2",
    "long": "L" * 140,  # MariaDB's varchar(140) maximum; the file and the socket get longer ones
}
ARGS = {"q": "it's \"x\"", "p": "100%s", "pipe": "a|b", "u": "日本😀", "nul": "a\x00b"}
ARGS_LITERAL = "{'q': 'it\\'s \"x\"', 'p': '100%s', 'pipe': 'a|b', 'u': '日本😀', 'nul': 'a\\x00b'}"
JOB_ID = re.compile(r"^[A-Za-z0-9_-]+$")


def escape(text: str) -> str:
    """docs/rq.md: every byte outside [A-Za-z0-9] becomes `_xx`."""
    return "".join(chr(b) if chr(b).isascii() and chr(b).isalnum() else f"_{b:02x}" for b in text.encode())


def assert_keys_are_ours(r: redis.Redis, site: str) -> None:
    """Every key is an RQ key or one of the daemon's keys of `site`, with the type it should have."""
    for key in r.scan_iter(count=1000):
        k = key.decode("utf-8", "surrogateescape")
        if k.startswith("rq:"):
            continue
        assert k.startswith(f"btu:{site}:"), f"a key outside the daemon's namespace: {k!r}"
        rest = k[len(f"btu:{site}:"):]
        kind = r.type(key).decode()
        if rest in ("upcoming",):
            assert kind == "zset", (k, kind)
        elif rest == "schedules":
            assert kind == "hash", (k, kind)
        elif rest.startswith("history:"):
            assert kind == "list", (k, kind)
        elif rest.startswith("claim:"):
            assert kind == "string", (k, kind)
            assert JOB_ID.match(rest[len("claim:"):]), k
        elif rest.startswith(("lastjob:", "pause:")):
            assert kind == "string", (k, kind)
        elif rest.startswith("skip:"):
            assert kind == "zset", (k, kind)
        elif rest == "audit":
            assert kind == "stream", (k, kind)


def check_jobs(r: redis.Redis, site: str, queue: str, names: list[str]) -> dict[str, int]:
    """Runs per schedule, from the job ids in the queue: each id is rq-safe and decodes to exactly
    one of `names` (so no id of one schedule can be read as another's)."""
    per: dict[str, int] = {n: 0 for n in names}
    by_escaped = {escape(n): n for n in names}
    for raw in r.lrange(f"rq:queue:{queue}", 0, -1):
        jid = raw.decode()
        assert JOB_ID.match(jid), jid
        prefix = f"btu-{escape(site)}-"
        assert jid.startswith(prefix), jid
        esc, stamp = jid[len(prefix):].rsplit("-", 1)
        datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        per[by_escaped[esc]] += 1
    return per


def _control_fires(r: redis.Redis, queue: str) -> None:
    before = r.llen(f"rq:queue:{queue}")
    wait_until(lambda: r.llen(f"rq:queue:{queue}") > before, 10, f"the control schedule ({queue}) to keep firing")


def test_hostile_mariadb_rows(make_site, start_daemon, redis_conn, tmp_path):
    site = make_site(sample=False)
    marker_dir = tmp_path / "m"
    add_task(site, "HOSTILE-TASK", "e2e_tasks.record", f"{{'marker_dir': '{marker_dir}'}}")
    for name in HOSTILE.values():
        add_schedule(site, name, "HOSTILE-TASK", "* * * * * *", overrides=ARGS_LITERAL, queue="hostile")
    add_schedule(site, "CONTROL", "HOSTILE-TASK", "* * * * * *", queue="control")
    add_schedule(site, "BAD-CRON", "HOSTILE-TASK", "* * * * * *'; DROP TABLE x; --", queue="hostile")
    add_schedule(site, "BAD-ARGS", "HOSTILE-TASK", "* * * * * *", overrides="__import__('os').system('id')",
                 queue="hostile")
    add_schedule(site, "BAD-QUEUE", "HOSTILE-TASK", "* * * * * *", queue="q|'%\x00 x")
    # Non-UTF-8 bytes cannot enter this way: the utf8mb4 column refuses them (strict mode).
    with pytest.raises(pymysql.err.MySQLError):
        site.sql("INSERT INTO `tabBTU Task Schedule` (name, task, enabled, cron_string) VALUES (%s, 'HOSTILE-TASK', 1,"
                 " '* * * * * *')", (b"bad-\xff\xfe",))
    rows_before = site.sql("SELECT COUNT(*) FROM `tabBTU Task Schedule`")[0][0]
    d = start_daemon(f"""
[daemon]
socket_path = "{tmp_path / 'h.sock'}"
[redis]
url = "redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
[[sites]]
name = "{site.name}"
database = "{site.db_name}"
mode = "plain"
""", name="hostile-db", wait_for="schedules rebuilt")
    names = list(HOSTILE.values())
    wait_until(lambda: min(check_jobs(redis_conn, site.name, "hostile", names).values()) >= 2, 20,
               "every hostile schedule to fire twice")
    _control_fires(redis_conn, "control")
    sock = str(tmp_path / "h.sock")
    for name in names:  # the socket answers about each of them by its exact id
        state = btu_client.notify(name, socket_path=sock)[0]
        assert state["runs"] and state["schedule"] == name, state
        assert btu_client.history(name, 3, socket_path=sock), name
    assert d.stop() == 0
    log = d.log()
    for bad, why in (("BAD-CRON", "cron"), ("BAD-ARGS", "argument"), ("BAD-QUEUE", "queue")):
        assert re.search(rf"{bad}.*{why}|{why}.*{bad}", log, re.I), f"{bad}: no skip line naming it\n{log}"
    assert site.sql("SELECT COUNT(*) FROM `tabBTU Task Schedule`")[0][0] == rows_before, "no SQL ran from a value"
    assert_keys_are_ours(redis_conn, site.name)
    run_burst_worker("3.0", ["hostile"], cwd=tmp_path)
    runs = markers(str(marker_dir))
    assert runs and all(m["kwargs_repr"] == repr(ARGS) for m in runs), runs[:2]


def test_hostile_schedules_file_and_a_non_utf8_file(start_daemon, redis_conn, tmp_path):
    marker_dir = tmp_path / "m"
    long_id = "F" * 5000
    names = [*HOSTILE.values(), long_id]

    def toml_str(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\x00", "\\u0000").replace("\n", "\\n") + '"'

    body = "".join(f"""
[[schedule]]
id = {toml_str(n)}
function = "e2e_tasks.record"
cron = "* * * * * *"
queue = "hostile"
kwargs = {{ marker_dir = "{marker_dir}", q = {toml_str(ARGS['q'])}, p = "100%s", pipe = "a|b", u = "日本😀", nul = "a\\u0000b" }}
""" for n in names)
    body += f"""
[[schedule]]
id = "CONTROL"
function = "e2e_tasks.record"
cron = "* * * * * *"
queue = "control"
kwargs = {{ marker_dir = "{marker_dir}" }}

[[schedule]]
id = "BAD-FUNCTION"
function = "os.system('id')"
cron = "* * * * * *"
queue = "hostile"
"""
    schedules = tmp_path / "hostile.toml"
    schedules.write_text(body)
    d = start_daemon(f"""
[daemon]
socket_path = "{tmp_path / 'f.sock'}"
[redis]
url = "redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
[file]
path = "{schedules}"
site = "file.local"
mode = "plain"
""", name="hostile-file", wait_for="schedules rebuilt")
    wait_until(lambda: min(check_jobs(redis_conn, "file.local", "hostile", names).values()) >= 2, 20,
               "every hostile file schedule to fire twice")
    assert re.search(r"BAD-FUNCTION.*function|function.*BAD-FUNCTION", d.log(), re.I), d.log()
    # Non-UTF-8 bytes: the file is not TOML any more; the last loaded schedules keep firing.
    schedules.write_bytes(body.encode() + b"\n# \xff\xfe not utf-8\n")
    d.send(signal.SIGHUP)
    wait_until(lambda: "utf-8" in d.log().lower() or "utf8" in d.log().lower(), 10, "the file error to be logged")
    _control_fires(redis_conn, "control")
    assert d.proc.poll() is None
    assert_keys_are_ours(redis_conn, "file.local")
    assert d.stop() == 0


def test_hostile_socket_requests(start_daemon, redis_conn, tmp_path):
    schedules = tmp_path / "s.toml"
    schedules.write_text('[[schedule]]\nid = "CONTROL"\nfunction = "e2e_tasks.record"\ncron = "* * * * * *"\n'
                         f'queue = "control"\nkwargs = {{ marker_dir = "{tmp_path / "m"}" }}\n')
    sock = tmp_path / "r.sock"
    d = start_daemon(f"""
[daemon]
socket_path = "{sock}"
[redis]
url = "redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
[file]
path = "{schedules}"
site = "sock.local"
mode = "plain"
""", name="hostile-sock", wait_for="schedules rebuilt")
    ids = [*HOSTILE.values(), "S" * 100_000, "*", "btu:sock.local:upcoming"]
    for sid in ids:
        for call in (lambda: btu_client.notify(sid, socket_path=str(sock)),
                     lambda: btu_client.cancel(sid, socket_path=str(sock)),
                     lambda: btu_client.history(sid, 5, socket_path=str(sock)),
                     lambda: btu_client.upcoming(sid, 5, socket_path=str(sock)),
                     lambda: btu_client.run_now(sid, socket_path=str(sock))):
            try:
                out = call()
            except btu_client.ScheduleError as e:
                assert e.code == "unknown_schedule", (sid[:40], e)
                continue
            # notify answers with a state, cancel with removed=False, history/upcoming empty
            if isinstance(out, list):
                assert all(not x.get("runs", False) for x in out if isinstance(x, dict)), out
            elif isinstance(out, dict) and "removed" in out:
                assert out["removed"] is False, out
    # A frame whose schedule id is not UTF-8: a typed `malformed` answer, the stream stays usable.
    frame = _core._encode_request("notify", 42, schedules=["ABCD"])
    bad = frame.replace(b"ABCD", b"\xff\xfe\x00\xc3")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(sock))
        s.settimeout(5)
        s.sendall(bad)
        with pytest.raises(btu_client.ProtocolError) as err:
            _core._decode_response(_read_frame(s))
        assert err.value.code == "malformed" and "expected a string" in err.value.message, err.value
        s.sendall(_core._encode_request("ping", 43))
        assert _core._decode_response(_read_frame(s))[0] == 43
    assert btu_client.ping(socket_path=str(sock))
    _control_fires(redis_conn, "control")
    assert d.proc.poll() is None
    assert_keys_are_ours(redis_conn, "sock.local")
    keys = {k.decode() for k in redis_conn.scan_iter(match="btu:sock.local:*")}
    assert keys <= {"btu:sock.local:upcoming", "btu:sock.local:schedules", "btu:sock.local:audit"} | {
        k for k in keys if k.startswith(("btu:sock.local:history:CONTROL", "btu:sock.local:lastjob:CONTROL",
                                         "btu:sock.local:claim:"))}, keys
    assert redis_conn.zrange("btu:sock.local:upcoming", 0, -1) == [b"CONTROL"]


def _read_frame(s: socket.socket) -> bytes:
    head = b""
    while len(head) < 4:
        chunk = s.recv(4 - len(head))
        assert chunk, "the daemon closed the connection"
        head += chunk
    n = int.from_bytes(head, "big")
    body = b""
    while len(body) < n:
        chunk = s.recv(n - len(body))
        assert chunk
        body += chunk
    return head + body
