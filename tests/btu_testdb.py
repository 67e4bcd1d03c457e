"""Test databases built from the BTU schema in tests/sql (and sample data), plus a Frappe site
directory pointing at them, for tests that use the stand-in `frappe` package.

    from btu_testdb import TestDatabase
    db = TestDatabase("btu_test_hooks")      # drops + creates it, loads schema.sql (+ sample-data.sql)
    sites = db.write_site(tmp_path / "sites", "test.localhost")   # a bench's sites/ for the stand-in frappe
    ...
    db.drop()

Server: 127.0.0.1:3306 as root with an empty password unless BTU_TEST_DB_HOST/_PORT/_USER/
_PASSWORD say otherwise; `$BTU_TEST_DB_TAG` is appended to every database name (so that two checkouts
can run the suites side by side). SQL files (schema.sql, sample-data.sql): tests/sql/ in the
repository (the project's own copy of the BTU tables). The stand-in frappe caches hooks in Redis
(`redis_cache`): 127.0.0.1:$BTU_TEST_REDIS_PORT (default 6379), database 12.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pymysql
from pymysql.constants import CLIENT

_REPO = Path(__file__).resolve().parent.parent
_NAME = re.compile(r"^[A-Za-z0-9_]+$")


class TestDatabaseError(Exception):
    """The test database could not be set up (server unreachable, SQL files missing...)."""


def server_params() -> dict[str, Any]:
    return {
        "host": os.environ.get("BTU_TEST_DB_HOST", "127.0.0.1"),
        "port": int(os.environ.get("BTU_TEST_DB_PORT", "3306")),
        "user": os.environ.get("BTU_TEST_DB_USER", "root"),
        "password": os.environ.get("BTU_TEST_DB_PASSWORD", ""),
    }


def sql_dir() -> Path:
    d = _REPO / "tests" / "sql"
    if not (d / "schema.sql").is_file():
        raise TestDatabaseError(f"{d / 'schema.sql'} is missing")
    return d


def db_tag() -> str:
    return "".join(c for c in os.environ.get("BTU_TEST_DB_TAG", "") if c.isalnum() or c == "_")


def server_available() -> bool:
    try:
        pymysql.connect(connect_timeout=2, **server_params()).close()
    except pymysql.err.OperationalError:
        return False
    return True


BENCH_APPS = ("frappe", "btu", "btu_hooks")
"""The apps of a test bench (sites/apps.txt): Frappe, the stand-in BTU app, btu_hooks."""


def redis_cache_url() -> str:
    return f"redis://127.0.0.1:{os.environ.get('BTU_TEST_REDIS_PORT', '6379')}/12"


class TestDatabase:
    __test__ = False  # not a pytest test class despite its name

    def __init__(self, name: str, *, sample_data: bool = True) -> None:
        if not _NAME.match(name):
            raise TestDatabaseError(f"database name {name!r}: only letters, digits and _ are allowed")
        self.name = name + db_tag()
        self.sample_data = sample_data
        self.reset()

    def _server(self, **kw: Any) -> pymysql.connections.Connection:
        try:
            return pymysql.connect(charset="utf8mb4", autocommit=True, connect_timeout=5, **server_params(), **kw)
        except pymysql.err.OperationalError as e:
            p = server_params()
            raise TestDatabaseError(f"MariaDB at {p['host']}:{p['port']} as {p['user']}: {e}") from e

    def reset(self) -> None:
        """Drop and re-create the database from schema.sql (+ sample-data.sql)."""
        scripts = [sql_dir() / "schema.sql"] + ([sql_dir() / "sample-data.sql"] if self.sample_data else [])
        conn = self._server(client_flag=CLIENT.MULTI_STATEMENTS)
        try:
            with conn.cursor() as cur:
                # the name is validated above; identifiers cannot be bound as parameters
                cur.execute(f"DROP DATABASE IF EXISTS `{self.name}`")
                cur.execute(f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
                cur.execute(f"USE `{self.name}`")
                for script in scripts:
                    cur.execute(script.read_text(encoding="utf-8"))
                    while cur.nextset():
                        pass
        finally:
            conn.close()

    def drop(self) -> None:
        conn = self._server()
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{self.name}`")
        finally:
            conn.close()

    def connect(self) -> pymysql.connections.Connection:
        """A separate autocommit connection (sees only what other sessions committed)."""
        return self._server(database=self.name)

    def query(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        conn = self.connect()
        try:
            with conn.cursor(pymysql.cursors.DictCursor) as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        finally:
            conn.close()

    def write_site(self, sites_path: str | os.PathLike[str], site: str, *, apps: Sequence[str] = BENCH_APPS,
                   redis_queue: str | None = None, **extra: Any) -> Path:
        """A bench's sites/ directory for this database: <site>/site_config.json, plus
        apps.txt (the apps on the bench) and common_site_config.json (redis_cache, redis_queue)
        when missing. Returns sites_path."""
        return write_site_dir(sites_path, site, self.name, apps=apps, redis_queue=redis_queue, **extra)


def write_site_dir(sites_path: str | os.PathLike[str], site: str, db_name: str, *, apps: Sequence[str] = BENCH_APPS,
                   redis_queue: str | None = None, **extra: Any) -> Path:
    """<sites_path>/<site>/site_config.json for database `db_name` on the test server, and the
    bench files the stand-in frappe reads (apps.txt, common_site_config.json) when missing."""
    p = server_params()
    sites = Path(sites_path)
    site_dir = sites / site
    site_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "db_name": db_name,
        "db_password": p["password"],
        "db_host": p["host"],
        "db_port": p["port"],
        "db_user": p["user"],  # real Frappe logs in as db_name; tests use the server's admin
        **extra,
    }
    (site_dir / "site_config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    if not (sites / "apps.txt").exists():
        (sites / "apps.txt").write_text("".join(f"{a}\n" for a in apps), encoding="utf-8")
    if not (sites / "common_site_config.json").exists():
        common = {"redis_cache": redis_cache_url(), "redis_queue": redis_queue or redis_cache_url()}
        (sites / "common_site_config.json").write_text(json.dumps(common, indent=1), encoding="utf-8")
    return sites
