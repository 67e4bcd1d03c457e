"""Fixtures for btu_hooks tests: the stand-in `frappe` (tests/frappe_stub) and the stand-in BTU
app (tests/btu_standin) on sys.path, a MariaDB database `btu_test_hooks` built from tests/sql
(schema + sample data: frappe, btu and btu_hooks installed), a bench-like sites/ directory
pointing at it (apps.txt, common_site_config.json with the Redis cache on
$BTU_TEST_REDIS_PORT), a fake btu_client, a real SMTP server and a fake legacy daemon socket.

Without MariaDB or Redis the tests are skipped, unless BTU_TEST_STRICT=1 (CI) makes that a failure.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parent.parent
# The stand-ins go first so that no installed frappe or btu is picked up by accident.
for p in (_HERE, _REPO / "frappe-hooks", _REPO / "tests", _REPO / "tests" / "btu_standin", _REPO / "tests" / "frappe_stub"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import btu_hooks.client
import frappe
import redis
from btu_hooks_testutil import DB_NAME, SITE, FakeClient
from btu_testdb import TestDatabase, TestDatabaseError, redis_cache_url, server_available
from legacy_daemon import FakeLegacyDaemon
from smtp_sink import SmtpSink


def _unavailable(message: str) -> None:
    if os.environ.get("BTU_TEST_STRICT") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def testdb() -> Iterator[TestDatabase]:
    if not server_available():
        _unavailable("MariaDB is not reachable at 127.0.0.1:3306 as root (see tests/btu_testdb.py)")
    try:
        redis.Redis.from_url(redis_cache_url()).ping()
    except redis.exceptions.ConnectionError as e:
        _unavailable(f"Redis is not reachable at {redis_cache_url()} ({e}); set BTU_TEST_REDIS_PORT")
    try:
        db = TestDatabase(DB_NAME)
    except TestDatabaseError as e:
        pytest.fail(str(e))
    yield db
    db.drop()


@pytest.fixture
def sites(testdb: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh database and a bench-like sites/ directory as the current directory (where
    `rq worker` runs in a bench, hence where execute_job's frappe.init finds the site)."""
    testdb.reset()
    sites_path = tmp_path / "sites"
    testdb.write_site(sites_path, SITE)
    monkeypatch.chdir(sites_path)
    clear_site_cache(sites_path)
    yield sites_path
    frappe.destroy()


def clear_site_cache(sites_path: Path) -> None:
    """`bench --site SITE clear-cache`: the hooks cached in Redis by an earlier test go."""
    frappe.init(SITE, sites_path=str(sites_path))
    frappe.connect()
    frappe.clear_cache()
    frappe.destroy()


@pytest.fixture
def site(sites: Path) -> Iterator[str]:
    """The site initialised and connected in this thread, as in a web request or console."""
    frappe.init(SITE, sites_path=str(sites))
    frappe.connect()
    yield SITE
    frappe.destroy()


@pytest.fixture
def without_btu_app(sites: Path, testdb: TestDatabase, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bench and site without the BTU app: not in apps.txt, not installed, not importable."""
    (sites / "apps.txt").write_text("frappe\nbtu_hooks\n", encoding="utf-8")
    testdb.query("UPDATE tabDefaultValue SET defvalue = '[\"frappe\", \"btu_hooks\"]' WHERE defkey = 'installed_apps'")
    monkeypatch.setitem(sys.modules, "btu", None)  # `import btu` fails
    clear_site_cache(sites)
    return sites


@pytest.fixture
def fake_client(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    client = FakeClient()
    monkeypatch.setattr(btu_hooks.client, "get_client", lambda: client)
    return client


SMTP_USER, SMTP_PASSWORD = "btu@example.com", "smtp-secret"  # as in tests/sql/sample-data.sql


@pytest.fixture
def smtp(sites: Path, testdb: TestDatabase) -> Iterator[SmtpSink]:
    """A real SMTP server that BTU Configuration points at (sample data's user and password)."""
    with SmtpSink(SMTP_USER, SMTP_PASSWORD) as sink:
        testdb.query("UPDATE tabSingles SET value = %s WHERE doctype = 'BTU Configuration' AND field = 'email_server_port'",
                     (str(sink.port),))
        yield sink


@pytest.fixture
def legacy_daemon(sites: Path, testdb: TestDatabase) -> Iterator[FakeLegacyDaemon]:
    """A fake original daemon listening where BTU Configuration's path_to_btu_scheduler_uds points."""
    short = Path(tempfile.mkdtemp(prefix="btu-legacy-"))  # a socket path must stay under 108 bytes
    with FakeLegacyDaemon(short / "legacy.sock") as fake:
        testdb.query("UPDATE tabSingles SET value = %s WHERE doctype = 'BTU Configuration'"
                     " AND field = 'path_to_btu_scheduler_uds'", (str(fake.path),))
        yield fake
    short.rmdir()
