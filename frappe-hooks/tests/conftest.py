"""Fixtures for btu_hooks tests: the stand-in `frappe` (tests/frappe_stub) on sys.path, a MariaDB
database `btu_test_hooks` built from tests/sql (schema + sample data), a site directory pointing
at it, and a fake btu_client.

Without MariaDB the tests are skipped, unless BTU_TEST_STRICT=1 (CI) makes that a failure.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parent.parent
# The stand-in frappe goes first so that no installed frappe is picked up by accident.
for p in (_HERE, _REPO / "frappe-hooks", _REPO / "tests", _REPO / "tests" / "frappe_stub"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import btu_hooks.client
import frappe
from btu_hooks_testutil import DB_NAME, SITE, FakeClient
from btu_testdb import TestDatabase, TestDatabaseError, server_available


@pytest.fixture(scope="session")
def testdb() -> Iterator[TestDatabase]:
    if not server_available():
        message = "MariaDB is not reachable at 127.0.0.1:3306 as root (see tests/btu_testdb.py)"
        if os.environ.get("BTU_TEST_STRICT") == "1":
            pytest.fail(message)
        pytest.skip(message)
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
    testdb.write_site(sites_path, SITE, stub_hooks_modules=["btu_hooks.hooks_snippet"])
    monkeypatch.chdir(sites_path)
    yield sites_path
    frappe.destroy()


@pytest.fixture
def site(sites: Path) -> Iterator[str]:
    """The site initialised and connected in this thread, as in a web request or console."""
    frappe.init(SITE, sites_path=str(sites))
    frappe.connect()
    yield SITE
    frappe.destroy()


@pytest.fixture
def fake_client(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    client = FakeClient()
    monkeypatch.setattr(btu_hooks.client, "get_client", lambda: client)
    return client
