"""`rediss://` against a real TLS Redis: `redis-server --tls-port … --port 0` with a CA and a
server certificate this test makes with openssl. The daemon trusts the CA through
`[redis] tls_ca_file`, enqueues runs over TLS that a stock rq worker (also over TLS) executes;
a CA that did not sign the server's certificate, or none at all, is a clear error (daemon log and
`btu check-config`), and the daemon keeps retrying instead of dying."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import redis
from conftest import BTU_BIN, free_port, rq_bin, wait_until, worker_env


def _openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is missing: run scripts/bootstrap.sh")
    p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert p.returncode == 0, f"openssl {' '.join(args)} failed:\n{p.stderr}"


def make_ca(d: Path, name: str) -> tuple[Path, Path]:
    key, crt = d / f"{name}.key", d / f"{name}.crt"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
             "-days", "2", "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    return key, crt


def make_server_cert(d: Path, ca_key: Path, ca_crt: Path) -> tuple[Path, Path]:
    key, csr, crt, ext = d / "server.key", d / "server.csr", d / "server.crt", d / "server.ext"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1", cwd=d)
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
             "-out", str(crt), "-days", "2", "-extfile", str(ext), cwd=d)
    return key, crt


@dataclass
class TlsRedis:
    port: int
    ca: Path  # the CA that signed the server's certificate
    rogue_ca: Path  # a CA that signed nothing of this server
    proc: subprocess.Popen

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, ssl=True, ssl_ca_certs=str(self.ca))


@pytest.fixture()
def tls_redis(tmp_path: Path) -> Iterator[TlsRedis]:
    d = tmp_path / "tls"
    d.mkdir()
    ca_key, ca_crt = make_ca(d, "btu-test-ca")
    _, rogue = make_ca(d, "rogue-ca")
    key, crt = make_server_cert(d, ca_key, ca_crt)
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(crt), "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca_crt),
         "--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", str(d)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    r = TlsRedis(port, ca_crt, rogue, proc)

    def up() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"redis-server with TLS did not start (built without TLS?):\n{proc.stdout.read() if proc.stdout else ''}")
        try:
            return bool(r.client().ping())
        except redis.exceptions.RedisError:
            return False
    wait_until(up, 20, f"TLS redis-server on port {port}")
    yield r
    proc.kill()
    proc.wait()


def _config(tmp_path: Path, port: int, ca: Path | None, schedules: Path) -> str:
    ca_line = f'tls_ca_file = "{ca}"' if ca else ""
    return f"""
[daemon]
socket_path = "{tmp_path / 'tls.sock'}"
[redis]
url = "rediss://127.0.0.1:{port}/0"
{ca_line}
[file]
path = "{schedules}"
site = "tls.local"
mode = "plain"
"""


def _schedules(tmp_path: Path) -> Path:
    marker_dir = tmp_path / "markers"
    p = tmp_path / "schedules.toml"
    p.write_text(f"""
[[schedule]]
id = "over-tls"
function = "e2e_tasks.record"
cron = "* * * * * *"
queue = "tls"
kwargs = {{ marker_dir = "{marker_dir}" }}
""")
    return p


def test_rediss_with_the_ca_file_enqueues_runs_a_worker_executes(tls_redis, start_daemon, tmp_path):
    d = start_daemon(_config(tmp_path, tls_redis.port, tls_redis.ca, _schedules(tmp_path)), name="tls-ok",
                     wait_for="redis connected")
    c = tls_redis.client()
    wait_until(lambda: c.llen("rq:queue:tls") >= 2, 20, "two runs enqueued over TLS")
    assert d.stop() == 0
    assert "rediss://127.0.0.1" in d.log() and "unreachable" not in d.log()
    # A stock rq worker over TLS (rq's --url takes the ssl_* query parameters of redis-py).
    url = f"rediss://127.0.0.1:{tls_redis.port}/0?ssl_ca_certs={tls_redis.ca}"
    p = subprocess.run([str(rq_bin("3.0")), "worker", "--burst", "--url", url, "tls"], cwd=tmp_path,
                       env=worker_env(), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert len(list((tmp_path / "markers").iterdir())) >= 2
    ok = subprocess.run([str(BTU_BIN), "check-config", "--config", str(d.config)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr


@pytest.mark.parametrize("trust", ["rogue-ca", "web-roots"])
def test_a_certificate_the_daemon_cannot_verify_is_a_clear_error(trust, tls_redis, start_daemon, tmp_path):
    ca = tls_redis.rogue_ca if trust == "rogue-ca" else None
    d = start_daemon(_config(tmp_path, tls_redis.port, ca, _schedules(tmp_path)), name=f"tls-{trust}")
    wait_until(lambda: "redis unreachable" in d.log(), 20, "the daemon to report the TLS failure")
    log = d.log()
    assert "invalid peer certificate" in log and "UnknownIssuer" in log, log
    assert "TLS certificate was not accepted" in log and "tls_ca_file" in log, log
    assert log.count("redis unreachable") == 1, "one line per outage, not per retry"
    assert d.proc.poll() is None, "the daemon keeps running and retrying"
    assert tls_redis.client().llen("rq:queue:tls") == 0, "nothing was written without a verified server"
    bad = subprocess.run([str(BTU_BIN), "check-config", "--config", str(d.config)], capture_output=True, text=True)
    assert bad.returncode != 0
    assert "TLS certificate was not accepted" in bad.stdout + bad.stderr


def test_tls_ca_file_is_checked_when_the_file_is_read(tmp_path, binaries):
    schedules = _schedules(tmp_path)
    cases = {
        "missing": (_config(tmp_path, 6379, tmp_path / "nope.pem", schedules), "redis.tls_ca_file"),
        "not-tls": (_config(tmp_path, 6379, schedules, schedules).replace("rediss://", "redis://"),
                    "only used with a rediss://"),
    }
    for name, (text, needle) in cases.items():
        cfg = tmp_path / f"{name}.toml"
        cfg.write_text(text)
        p = subprocess.run([str(BTU_BIN), "check-config", "--config", str(cfg)], capture_output=True, text=True)
        assert p.returncode != 0 and needle in p.stdout + p.stderr, (name, p.stdout, p.stderr)
