"""The original BTU app announces a change BEFORE its transaction commits (legacy
`cancel_task_schedule` + `create_task_schedule` from before_save, `cancel_task_schedule` from
on_trash): the daemon answers at once, follows the row for `legacy_follow_secs`, and the
committed state is in effect within 2 s of the commit. Real MariaDB transactions, the real
daemon, job ids read from the RQ queue in Redis (each id carries its site, schedule and due
instant)."""

from __future__ import annotations

import json
import re
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pymysql
import redis

from conftest import MYSQL, REDIS_DB, REDIS_HOST, REDIS_PORT, Site, add_schedule, queued_ids, wait_until

PREFIX = "e2e-follow:"
QUEUE = PREFIX + "default"
EVEN, ODD = "*/2 * * * * *", "1-59/2 * * * * *"  # every even / odd second
FOLLOWING = "It will follow the change once saved."


def config(sites: list[Site], sock: Path, follow_secs: int) -> str:
    text = f"""
[daemon]
socket_path = "{sock}"
legacy_follow_secs = {follow_secs}

[redis]
url = "redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"

[frappe]
queue_prefix = "{PREFIX}"
"""
    for site in sites:
        text += f"""
[[sites]]
name = "{site.name}"
host = "{MYSQL['host']}"
port = {MYSQL['port']}
user = "{MYSQL['user']}"
database = "{site.db_name}"
"""
    return text


def start(start_daemon, sites: list[Site], tmp_path: Path, follow_secs: int = 30) -> str:
    sock = tmp_path / "follow.sock"
    start_daemon(config(sites, sock, follow_secs), name="follow", socket_path=sock, wait_for="schedules rebuilt")
    return str(sock)


def legacy(sock: str, request_type: str, schedule: str) -> str:
    """One request as the app's SchedulerAPI sends it: raw JSON, then one recv."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(sock)
        s.sendall(json.dumps({"request_type": request_type, "request_content": schedule}).encode())
        return s.recv(2048).decode()


def before_save(sock: str, schedule: str) -> str:
    """What the app's before_save sends for an enabled schedule: cancel, then create."""
    legacy(sock, "cancel_task_schedule", schedule)
    return legacy(sock, "create_task_schedule", schedule)


def esc(text: str) -> str:
    return "".join(c if c.isascii() and c.isalnum() else "".join(f"_{b:02x}" for b in c.encode()) for c in text)


def dues(r: redis.Redis, site: Site, schedule: str) -> list[float]:
    """Due instants (epoch seconds) of the queued runs of `schedule` on `site`."""
    marker = f"btu-{esc(site.name)}-{esc(schedule)}-"
    out = []
    for job_id in queued_ids(r, QUEUE):
        m = re.search(r"-(\d{8}T\d{6})Z$", job_id)
        if marker in job_id and m:
            out.append(datetime.strptime(m.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc).timestamp())
    return sorted(out)


class Txn:
    """A transaction of its own connection, as the app's request holds one while it saves."""

    def __init__(self, site: Site) -> None:
        self.conn = pymysql.connect(**MYSQL, database=site.db_name, autocommit=False)

    def sql(self, query: str, args: Any = None) -> None:
        with self.conn.cursor() as cur:
            cur.execute(query, args)

    def commit(self) -> float:
        self.conn.commit()
        committed = time.time()
        self.conn.close()
        return committed

    def rollback(self) -> None:
        self.conn.rollback()
        self.conn.close()


def insert(txn: Txn, name: str, cron: str, enabled: int = 1) -> None:
    txn.sql("INSERT INTO `tabBTU Task Schedule` (name, creation, modified, owner, task, enabled, queue_name, "
            "run_frequency, cron_string) VALUES (%s, NOW(6), NOW(6), 'Administrator', 'BTU-00002', %s, "
            "'default', 'Cron Style', %s)", (name, enabled, cron))


def runs_after(r: redis.Redis, site: Site, schedule: str, instant: float) -> list[float]:
    return [d for d in dues(r, site, schedule) if d > instant]


def test_a_new_schedule_runs_within_2_s_of_its_commit(make_site, start_daemon, redis_conn, tmp_path):
    site = make_site()
    sock = start(start_daemon, [site], tmp_path)
    txn = Txn(site)
    insert(txn, "TS-NEW", "* * * * * *")
    # Not in the database yet (for anyone but the transaction): the answer says what will happen.
    assert before_save(sock, "TS-NEW") == \
        f"BTU Scheduler now re-processing Task Schedule TS-NEW in Python RQ. {FOLLOWING}"
    time.sleep(1.5)
    assert dues(redis_conn, site, "TS-NEW") == [], "nothing runs before the commit"
    committed = txn.commit()
    wait_until(lambda: dues(redis_conn, site, "TS-NEW"), 10, "runs of the committed schedule")
    first = dues(redis_conn, site, "TS-NEW")[0]
    assert committed - 1 < first <= committed + 2, (committed, first)


def test_an_edited_cron_runs_on_the_new_cron_only_from_its_commit(make_site, start_daemon, redis_conn, tmp_path):
    site = make_site()
    add_schedule(site, "TS-EDIT", "BTU-00002", EVEN)
    sock = start(start_daemon, [site], tmp_path)
    wait_until(lambda: dues(redis_conn, site, "TS-EDIT"), 10, "runs on the old cron")
    txn = Txn(site)
    txn.sql("UPDATE `tabBTU Task Schedule` SET cron_string = %s WHERE name = 'TS-EDIT'", (ODD,))
    assert before_save(sock, "TS-EDIT").endswith(FOLLOWING)
    time.sleep(1.5)
    committed = txn.commit()
    time.sleep(4)
    after = runs_after(redis_conn, site, "TS-EDIT", committed + 2)
    assert after and all(int(d) % 2 == 1 for d in after), f"old cron ran after the commit: {after}"
    assert [d for d in runs_after(redis_conn, site, "TS-EDIT", committed) if int(d) % 2 == 1][0] <= committed + 2


def test_an_enabled_schedule_runs_and_a_disabled_one_stops(make_site, start_daemon, redis_conn, tmp_path):
    site = make_site()
    add_schedule(site, "TS-ON", "BTU-00002", "* * * * * *", enabled=0)
    add_schedule(site, "TS-OFF", "BTU-00002", "* * * * * *")
    sock = start(start_daemon, [site], tmp_path)
    wait_until(lambda: dues(redis_conn, site, "TS-OFF"), 10, "runs of TS-OFF")

    # Enable: the row still reads as disabled before the commit; the answer does not say so.
    txn = Txn(site)
    txn.sql("UPDATE `tabBTU Task Schedule` SET enabled = 1 WHERE name = 'TS-ON'")
    answer = before_save(sock, "TS-ON")
    assert "disabled" not in answer and answer.endswith(FOLLOWING), answer
    time.sleep(1)
    committed = txn.commit()
    wait_until(lambda: dues(redis_conn, site, "TS-ON"), 10, "runs of the enabled schedule")
    assert committed - 1 < dues(redis_conn, site, "TS-ON")[0] <= committed + 2

    # Disable: the app sends only a cancel (planned runs dropped at once), then commits.
    txn = Txn(site)
    txn.sql("UPDATE `tabBTU Task Schedule` SET enabled = 0 WHERE name = 'TS-OFF'")
    assert legacy(sock, "cancel_task_schedule", "TS-OFF").endswith(FOLLOWING)
    time.sleep(1)
    committed = txn.commit()
    time.sleep(4)
    assert runs_after(redis_conn, site, "TS-OFF", committed + 2) == []


def test_a_deleted_schedule_never_runs_again(make_site, start_daemon, redis_conn, tmp_path):
    site = make_site()
    add_schedule(site, "TS-DEL", "BTU-00002", "* * * * * *")
    sock = start(start_daemon, [site], tmp_path)
    wait_until(lambda: dues(redis_conn, site, "TS-DEL"), 10, "runs of TS-DEL")
    txn = Txn(site)
    txn.sql("DELETE FROM `tabBTU Task Schedule` WHERE name = 'TS-DEL'")
    assert legacy(sock, "cancel_task_schedule", "TS-DEL").endswith(FOLLOWING)  # on_trash
    time.sleep(1)
    committed = txn.commit()
    time.sleep(4)
    assert runs_after(redis_conn, site, "TS-DEL", committed + 2) == []


def test_a_rolled_back_delete_or_disable_is_restored_when_the_window_ends(make_site, start_daemon, redis_conn,
                                                                         tmp_path):
    site = make_site()
    add_schedule(site, "TS-RB1", "BTU-00002", "* * * * * *")
    add_schedule(site, "TS-RB2", "BTU-00002", "* * * * * *")
    sock = start(start_daemon, [site], tmp_path, follow_secs=3)
    wait_until(lambda: dues(redis_conn, site, "TS-RB1") and dues(redis_conn, site, "TS-RB2"), 10, "runs")
    txn = Txn(site)
    txn.sql("DELETE FROM `tabBTU Task Schedule` WHERE name = 'TS-RB1'")
    txn.sql("UPDATE `tabBTU Task Schedule` SET enabled = 0 WHERE name = 'TS-RB2'")
    legacy(sock, "cancel_task_schedule", "TS-RB1")
    legacy(sock, "cancel_task_schedule", "TS-RB2")
    cancelled = time.time()
    time.sleep(1)
    txn.rollback()
    # The rows never changed: at the end of the 3 s window both are applied again.
    for schedule in ("TS-RB1", "TS-RB2"):
        wait_until(lambda: runs_after(redis_conn, site, schedule, cancelled + 1), 10, f"{schedule} restored")
        assert runs_after(redis_conn, site, schedule, cancelled + 1)[0] <= cancelled + 3 + 2


def test_two_sites_sharing_an_id_each_follow_their_own_commit(make_site, start_daemon, redis_conn, tmp_path):
    a, b = make_site(), make_site()
    sock = start(start_daemon, [a, b], tmp_path)
    txn_a, txn_b = Txn(a), Txn(b)
    insert(txn_a, "TS-SHARED", "* * * * * *")
    insert(txn_b, "TS-SHARED", "* * * * * *")
    # One request, no site: it is applied and followed on every site whose database has the id.
    assert before_save(sock, "TS-SHARED").endswith(FOLLOWING)
    committed_a = txn_a.commit()
    wait_until(lambda: dues(redis_conn, a, "TS-SHARED"), 10, "site A's runs")
    assert dues(redis_conn, a, "TS-SHARED")[0] <= committed_a + 2
    time.sleep(1.5)
    assert dues(redis_conn, b, "TS-SHARED") == [], "site B has not committed"
    committed_b = txn_b.commit()
    wait_until(lambda: dues(redis_conn, b, "TS-SHARED"), 10, "site B's runs")
    assert dues(redis_conn, b, "TS-SHARED")[0] <= committed_b + 2
