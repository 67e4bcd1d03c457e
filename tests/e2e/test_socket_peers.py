"""The socket's guards with real peers: the allowlist against a real second uid (users this test
creates, the client run through `runuser` and `setpriv`), and `[daemon] max_connections` against
a flood of real connections. Needs root (useradd); fails, never skips, without it."""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import btu_client
from btu_client import _core
import pytest
from conftest import REDIS_DB, REDIS_HOST, REDIS_PORT, wait_until

GROUP = "btu-e2e-peers"
ALLOWED, DENIED = "btu-e2e-allowed", "btu-e2e-denied"
SYSTEM_PYTHON = "/usr/bin/python3"

CLIENT = """
import json, sys, btu_client
out = []
for _ in range(2):
    try:
        out.append({"ok": btu_client.ping(socket_path=sys.argv[1])["daemon_version"]})
    except btu_client.BtuError as e:
        out.append({"error": type(e).__name__, "code": e.code, "message": e.message})
print(json.dumps(out))
"""


def _ensure_users() -> tuple[int, int, int]:
    if os.geteuid() != 0:
        pytest.fail("this test creates users: run it as root (scripts/test-all.sh does)")
    for tool in ("useradd", "groupadd", "runuser", "setpriv"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: run scripts/bootstrap.sh (util-linux, passwd)")
    try:
        grp.getgrnam(GROUP)
    except KeyError:
        subprocess.run(["groupadd", "--system", GROUP], check=True)
    for user in (ALLOWED, DENIED):
        try:
            pwd.getpwnam(user)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            "--gid", GROUP, user], check=True)
    return pwd.getpwnam(ALLOWED).pw_uid, pwd.getpwnam(DENIED).pw_uid, grp.getgrnam(GROUP).gr_gid


@pytest.fixture()
def shared_dir() -> Iterator[Path]:
    """A directory the test users can reach (pytest's tmp_path is root-only), holding the socket
    and a copy of the btu_client package for the system Python."""
    d = Path(tempfile.mkdtemp(prefix="btu-e2e-peers-"))
    os.chmod(d, 0o755)
    pkg = Path(btu_client.__file__).parent
    shutil.copytree(pkg, d / "py" / "btu_client", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["chmod", "-R", "a+rX", str(d / "py")], check=True)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _as_user(cmd: list[str], sock: Path, d: Path) -> list[dict]:
    env = {"PYTHONPATH": str(d / "py"), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    tool = shutil.which(cmd[0]) or cmd[0]  # found on our PATH; the child's PATH is minimal
    p = subprocess.run([tool, *cmd[1:], SYSTEM_PYTHON, "-c", CLIENT, str(sock)], env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout)


def _daemon_config(sock: Path, schedules: Path, extra: str) -> str:
    return f"""
[daemon]
socket_path = "{sock}"
socket_file_group_owner = "{GROUP}"
{extra}
[redis]
url = "redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
[file]
path = "{schedules}"
site = "peers.local"
mode = "plain"
"""


def _schedules(d: Path) -> Path:
    p = d / "schedules.toml"
    p.write_text('[[schedule]]\nid = "tick"\nfunction = "e2e_tasks.record"\ncron = "* * * * * *"\nqueue = "peers"\n'
                 'kwargs = { marker_dir = "/nonexistent" }\n')
    return p


def test_allowlist_refuses_a_real_second_uid_and_keeps_serving_the_allowed_one(
        start_daemon, redis_conn, shared_dir):
    allowed_uid, denied_uid, gid = _ensure_users()
    sock = shared_dir / "peers.sock"
    d = start_daemon(_daemon_config(sock, _schedules(shared_dir), f"allowed_uids = [{allowed_uid}]"),
                     name="peers", socket_path=sock, wait_for="socket server listening")
    wait_until(lambda: redis_conn.llen("rq:queue:peers") >= 1, 20, "the schedule firing")

    allowed = _as_user(["runuser", "-u", ALLOWED, "--"], sock, shared_dir)
    denied = _as_user(["setpriv", f"--reuid={denied_uid}", f"--regid={gid}", "--clear-groups"], sock, shared_dir)
    allowed_again = _as_user(["setpriv", f"--reuid={allowed_uid}", f"--regid={gid}", "--clear-groups"], sock,
                             shared_dir)

    assert all("ok" in r for r in allowed + allowed_again), (allowed, allowed_again)
    assert all(r.get("error") == "DaemonError" and r.get("code") == "internal" for r in denied), denied
    assert all(f"permission denied: peer uid {denied_uid} gid {gid}" in r["message"] for r in denied), denied
    # Root (the daemon's own uid) is still served, and the schedule still fires.
    assert btu_client.ping(socket_path=str(sock))["daemon_version"]
    before = redis_conn.llen("rq:queue:peers")
    wait_until(lambda: redis_conn.llen("rq:queue:peers") > before, 10, "the schedule to keep firing")
    log = d.log()
    refusals = [ln for ln in log.splitlines() if "not in allowed_uids/allowed_gids refused" in ln]
    assert len(refusals) == 2, "one line per refused connection (two pings)"
    assert all(f"peer_uid={denied_uid}" in ln and "peer_pid=Some(" in ln for ln in refusals), refusals
    assert f"peer_uid={allowed_uid}" not in "\n".join(refusals)


def _connect(sock: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(sock))
    return s


def _refused(s: socket.socket) -> bool:
    """Closed at once by the daemon: reading gives EOF (or a reset) without sending anything."""
    s.settimeout(5)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_max_connections_refuses_the_flood_and_logs_once_per_burst(start_daemon, redis_conn, tmp_path):
    sock = tmp_path / "cap.sock"
    d = start_daemon(_daemon_config(sock, _schedules(tmp_path), "max_connections = 16").replace(
        f'socket_file_group_owner = "{GROUP}"', ""), name="cap", socket_path=sock, wait_for="socket server listening")
    def open_fds() -> int:
        return len(os.listdir(f"/proc/{d.proc.pid}/fd"))

    idle_fds = open_fds()
    for burst in range(2):
        # The previous burst's connections are released (their tasks saw EOF) before the next.
        wait_until(lambda: open_fds() <= idle_fds, 10, "the daemon to close the previous burst's connections")
        held = [_connect(sock) for _ in range(16)]
        for s in held:  # each is really being served: the daemon answers a ping on it
            s.sendall(_core._encode_request("ping", 7))
            assert s.recv(4), "a connection within the limit is answered"
        flood = [_connect(sock) for _ in range(50)]
        assert all(_refused(s) for s in flood), "over the limit: closed at once"
        for s in flood + held:
            s.close()
        # Below the limit again: new clients are served at once.
        wait_until(lambda: _ping_ok(sock), 10, "a new client to be served after the burst")
    assert btu_client.ping(socket_path=str(sock))["daemon_version"]
    log = d.log()
    assert log.count("connection limit reached") == 2, "one warning per burst, not per refused connection"
    assert log.count("below the connection limit again") == 2
    # 50 flooders per burst (a client racing the held connections' close may add one or two)
    counts = [int(n) for n in re.findall(r"refused=(\d+)", log)]
    assert len(counts) == 2 and all(50 <= n <= 55 for n in counts), counts
    assert d.proc.poll() is None


def _ping_ok(sock: Path) -> bool:
    try:
        btu_client.ping(socket_path=str(sock), timeout=1.0)
        return True
    except btu_client.BtuError:
        time.sleep(0.1)
        return False
