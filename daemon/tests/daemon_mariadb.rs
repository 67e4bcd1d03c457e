//! The MariaDB source and the engine against real MariaDB + Redis: which sample rows run and
//! why the others do not, zones, argument merging, rebuilds after edits, and runs that land in
//! Redis exactly once, even with two engines on one Redis.

mod daemon_support;

use std::collections::HashSet;
use std::time::Duration;

use btu::engine::ScheduleStatus;
use btu::pyvalue::kwargs_repr;
use btu::source::{RowOutcome, SkipReason, Source};
use daemon_support::*;

fn site_config(token: &str, db: &str, extra: &str) -> btu::config::Config {
    config(
        token,
        &format!(
            "[frappe]\nqueue_prefix = \"{token}:\"\n{extra}\n[[sites]]\nname = \"{token}.local\"\nhost = \"127.0.0.1\"\nuser = \"root\"\ndatabase = \"{db}\"\n"
        ),
    )
}

fn outcomes(rows: &[RowOutcome]) -> Vec<(String, String)> {
    let mut v: Vec<_> = rows
        .iter()
        .map(|r| match r {
            RowOutcome::Loaded(s) => (s.id.to_string(), "loaded".to_string()),
            RowOutcome::Skipped { schedule, reason, .. } => (schedule.clone(), reason.code().to_string()),
        })
        .collect();
    v.sort();
    v
}

fn loaded<'a>(rows: &'a [RowOutcome], id: &str) -> &'a btu::source::ScheduleSpec {
    rows.iter()
        .find_map(|r| match r {
            RowOutcome::Loaded(s) if &*s.id == id => Some(s),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{id} not loaded: {rows:?}"))
}

#[tokio::test]
async fn sample_data_plans_exactly_the_runnable_schedules() {
    let token = token();
    let db = TestDb::create("sample").await;
    let cfg = site_config(&token, &db.name, "");
    let source = Source::all_from_config(&cfg).remove(0);
    let rows = source.load_all().await.expect("load");
    assert_eq!(
        outcomes(&rows),
        vec![
            ("TS-000001".into(), "loaded".into()),
            ("TS-000002".into(), "loaded".into()),
            ("TS-000003".into(), "disabled".into()),
            ("TS-000004".into(), "task_not_submitted".into()),
            ("TS-000005".into(), "invalid_cron".into()),
            ("TS-000006".into(), "task_missing".into()),
        ]
    );
    let reasons: Vec<String> = rows
        .iter()
        .filter_map(|r| match r {
            RowOutcome::Skipped { reason, .. } => Some(reason.to_string()),
            _ => None,
        })
        .collect();
    assert!(reasons.iter().any(|r| r.contains("BTU-00003") && r.contains("draft")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("61 25")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("BTU-09999") && r.contains("does not exist")), "{reasons:?}");

    // Zone from BTU Configuration in tabSingles; queue with the bench prefix; timeout from the task.
    let ts1 = loaded(&rows, "TS-000001");
    assert_eq!(&*ts1.zone, "America/Los_Angeles");
    assert_eq!(ts1.queue, format!("{token}:long"));
    assert_eq!(ts1.timeout_secs, 1800);
    assert_eq!(ts1.task.as_deref(), Some("BTU-00001"));
    assert_eq!(ts1.function, "erpnext.stock.utils.reconcile_all");
    // The schedule's overrides win over the task's arguments; other keys are kept.
    let ts2 = loaded(&rows, "TS-000002");
    assert_eq!(kwargs_repr(&ts2.kwargs), "{'days_overdue': 60, 'dry_run': False, 'customer_group': 'Wholesale'}");

    // load_one: a runnable row, a skipped row, a missing row.
    assert!(matches!(source.load_one("TS-000002").await.expect("one"), RowOutcome::Loaded(_)));
    assert!(matches!(
        source.load_one("TS-000003").await.expect("one"),
        RowOutcome::Skipped { reason: SkipReason::Disabled, .. }
    ));
    assert!(matches!(
        source.load_one("TS-999999").await.expect("one"),
        RowOutcome::Skipped { reason: SkipReason::NotFound, .. }
    ));
    source.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn zone_column_wins_then_site_zones_then_config_then_utc() {
    let token = token();
    let db = TestDb::create("zones").await;
    db.exec("ALTER TABLE `tabBTU Task Schedule` ADD COLUMN `cron_time_zone` varchar(140) DEFAULT NULL", ()).await;
    db.exec("UPDATE `tabBTU Task Schedule` SET cron_time_zone = ? WHERE name = ?", ("Asia/Tokyo", "TS-000001")).await;
    db.exec("UPDATE `tabBTU Task Schedule` SET cron_time_zone = ? WHERE name = ?", ("", "TS-000002")).await;
    let cfg = site_config(&token, &db.name, "");
    let source = Source::all_from_config(&cfg).remove(0);
    let rows = source.load_all().await.expect("load");
    assert_eq!(&*loaded(&rows, "TS-000001").zone, "Asia/Tokyo");
    assert_eq!(&*loaded(&rows, "TS-000002").zone, "America/Los_Angeles");
    source.close().await;

    // An unknown zone in the column skips only that schedule.
    db.exec("UPDATE `tabBTU Task Schedule` SET cron_time_zone = ? WHERE name = ?", ("Mars/Base", "TS-000001")).await;
    db.exec("DELETE FROM tabSingles WHERE doctype = ? AND field = ?", ("BTU Configuration", "cron_time_zone")).await;
    let cfg = config(&token, &format!("[[sites]]\nname = \"{token}.local\"\ndatabase = \"{}\"\n", db.name));
    // Without the app's "Time Zone for Scheduling", a Cron Style row takes the site's own zone.
    db.exec(
        "UPDATE tabSingles SET value = ? WHERE doctype = ? AND field = ?",
        ("Europe/Paris", "System Settings", "time_zone"),
    )
    .await;
    let source = Source::all_from_config(&cfg).remove(0);
    let rows = source.load_all().await.expect("load");
    assert_eq!(&*loaded(&rows, "TS-000002").zone, "Europe/Paris");
    source.close().await;
    db.exec("DELETE FROM tabSingles WHERE doctype = ? AND field = ?", ("System Settings", "time_zone")).await;
    let mut cfg_zone = cfg.clone();
    cfg_zone.daemon.time_zone = Some("Europe/Dublin".into());
    let source = Source::all_from_config(&cfg_zone).remove(0);
    let rows = source.load_all().await.expect("load");
    assert!(rows.iter().any(|r| matches!(r, RowOutcome::Skipped { schedule, reason: SkipReason::UnknownZone { .. }, .. } if schedule == "TS-000001")));
    assert_eq!(&*loaded(&rows, "TS-000002").zone, "Europe/Dublin");
    source.close().await;
    let source = Source::all_from_config(&cfg).remove(0);
    let rows = source.load_all().await.expect("load");
    assert_eq!(&*loaded(&rows, "TS-000002").zone, "UTC");
    source.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn unparseable_arguments_skip_only_that_schedule() {
    let token = token();
    let db = TestDb::create("badargs").await;
    db.exec("UPDATE `tabBTU Task Schedule` SET argument_overrides = ? WHERE name = ?", ("{'a': ", "TS-000002")).await;
    let cfg = site_config(&token, &db.name, "");
    let source = Source::all_from_config(&cfg).remove(0);
    let rows = source.load_all().await.expect("load");
    assert!(rows.iter().any(|r| matches!(r, RowOutcome::Skipped { schedule, reason: SkipReason::BadArguments { .. }, .. } if schedule == "TS-000002")));
    loaded(&rows, "TS-000001");
    source.close().await;
    db.drop_db().await;
}

/// Inserts a per-second schedule `id` running task BTU-00002 on queue `default`.
async fn add_per_second(db: &TestDb, id: &str, overrides: &str) {
    db.exec(
        "INSERT INTO `tabBTU Task Schedule` (name, task, enabled, queue_name, cron_string, argument_overrides) \
         VALUES (?, 'BTU-00002', 1, 'default', '* * * * * *', ?)",
        (id, overrides),
    )
    .await;
}

#[tokio::test]
async fn engine_fires_per_second_runs_once_across_rebuilds_and_follows_edits() {
    let token = token();
    let db = TestDb::create("engine").await;
    add_per_second(&db, "TS-100000", "{'tag': 'x'}").await;
    let cfg = site_config(&token, &db.name, "");
    let site = format!("{token}.local");
    let queue = format!("{token}:default");
    let (handle, task) = start(&cfg);
    ready(&handle).await;
    let mut conn = redis().await;

    // Upcoming state in Redis: TS-000001, TS-000002 and the new schedule; nothing else.
    let mut members: Vec<String> =
        redis::AsyncCommands::zrange(&mut conn, format!("btu:{site}:upcoming"), 0, -1).await.expect("zrange");
    members.sort();
    assert_eq!(members, vec!["TS-000001", "TS-000002", "TS-100000"]);
    let described: std::collections::HashMap<String, String> =
        redis::AsyncCommands::hgetall(&mut conn, format!("btu:{site}:schedules")).await.expect("hgetall");
    assert!(described["TS-000002"].contains("\"zone\":\"America/Los_Angeles\""), "{described:?}");

    // Runs arrive; rebuilds in between change nothing and duplicate nothing.
    wait_for("3 runs", 15, async || queued(&mut conn.clone(), &token, &queue).await.len() >= 3).await;
    for _ in 0..3 {
        let report = handle.rebuild(None).await.expect("rebuild");
        assert_eq!((report.sites[0].added, report.sites[0].changed, report.sites[0].removed), (0, 0, 0));
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let ids = queued(&mut conn, &token, &queue).await;
    assert_eq!(ids.len(), ids.iter().collect::<HashSet<_>>().len(), "duplicate job ids: {ids:?}");
    let h = job_hash(&mut conn, &token, &ids[0]).await;
    assert_eq!(h.get("origin").map(|v| v.as_slice()), Some(queue.as_bytes()));
    assert_eq!(h.get("status").map(|v| v.as_slice()), Some(&b"queued"[..]));
    assert!(h.contains_key("data"));
    assert!(ids.iter().all(|id| id.starts_with("btu-") && id.contains("TS_2d100000")), "{ids:?}");
    let history = handle.history(None, "TS-100000", 3).await.expect("history");
    assert_eq!(history.len(), 3);
    assert!(history[0].due > history[1].due, "newest first: {history:?}");

    // Edit: every 2 seconds instead → changed.
    db.exec("UPDATE `tabBTU Task Schedule` SET cron_string = ? WHERE name = ?", ("*/2 * * * * *", "TS-100000")).await;
    let r = handle.rebuild(None).await.expect("rebuild");
    assert_eq!(r.sites[0].changed, 1, "{r:?}");
    // Disable TS-000002, delete TS-000001 → both removed from Redis.
    db.exec("UPDATE `tabBTU Task Schedule` SET enabled = 0 WHERE name = ?", ("TS-000002",)).await;
    db.exec("DELETE FROM `tabBTU Task Schedule` WHERE name = ?", ("TS-000001",)).await;
    let r = handle.rebuild(None).await.expect("rebuild");
    assert_eq!(r.sites[0].removed, 2, "{r:?}");
    let members: Vec<String> =
        redis::AsyncCommands::zrange(&mut conn, format!("btu:{site}:upcoming"), 0, -1).await.expect("zrange");
    assert_eq!(members, vec!["TS-100000"]);
    let described: std::collections::HashMap<String, String> =
        redis::AsyncCommands::hgetall(&mut conn, format!("btu:{site}:schedules")).await.expect("hgetall");
    assert_eq!(described.len(), 1);

    // Notify: a disabled schedule reports why; re-enabled it is planned at once.
    let st = handle.notify(None, &["TS-000002".to_string()]).await.expect("notify");
    assert_eq!(st[0].status, ScheduleStatus::NotRunning(SkipReason::Disabled));
    db.exec("UPDATE `tabBTU Task Schedule` SET enabled = 1 WHERE name = ?", ("TS-000002",)).await;
    let st = handle.notify(Some(&site), &["TS-000002".to_string()]).await.expect("notify");
    match &st[0].status {
        ScheduleStatus::Planned { next_runs, zone, .. } => {
            assert_eq!(next_runs.len(), 5);
            assert_eq!(zone.name(), "America/Los_Angeles");
        }
        other => panic!("{other:?}"),
    }
    assert!(handle.cancel(None, "TS-000002").await.expect("cancel"));
    let up = handle.upcoming(None, None, 4).await.expect("upcoming");
    assert!(up.iter().all(|u| u.schedule == "TS-100000"), "{up:?}");
    let run = handle.run_now(None, "TS-100000").await.expect("run now");
    assert!(queued(&mut conn, &token, &queue).await.contains(&run.job_id));

    stop(handle, task).await;
    let ids = queued(&mut conn, &token, &queue).await;
    assert_eq!(ids.len(), ids.iter().collect::<HashSet<_>>().len(), "duplicate job ids: {ids:?}");
    cleanup_redis(&token).await;
    db.drop_db().await;
}

#[tokio::test]
async fn two_engines_on_one_redis_enqueue_each_run_once() {
    let token = token();
    let db = TestDb::create("twin").await;
    add_per_second(&db, "TS-200000", "").await;
    let cfg = site_config(&token, &db.name, "");
    let queue = format!("{token}:default");
    let (h1, t1) = start(&cfg);
    let (h2, t2) = start(&cfg);
    ready(&h1).await;
    ready(&h2).await;
    let mut conn = redis().await;
    wait_for("5 runs", 20, async || queued(&mut conn.clone(), &token, &queue).await.len() >= 5).await;
    // Both engines fired the same runs; the claim let exactly one write each.
    let (s1, s2) = (h1.status().await.expect("status"), h2.status().await.expect("status"));
    assert!(s1.runs_already_claimed + s2.runs_already_claimed > 0, "{s1:?} {s2:?}");
    stop(h1, t1).await;
    stop(h2, t2).await;
    let ids = queued(&mut conn, &token, &queue).await;
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(ids.len(), unique.len(), "a run was enqueued twice: {ids:?}");
    cleanup_redis(&token).await;
    db.drop_db().await;
}

#[tokio::test]
async fn mariadb_down_keeps_last_schedules_and_reports_the_error() {
    let token = token();
    let db = TestDb::create("down").await;
    add_per_second(&db, "TS-300000", "").await;
    let cfg = site_config(&token, &db.name, "");
    let queue = format!("{token}:default");
    let (handle, task) = start(&cfg);
    ready(&handle).await;
    // The database disappears: the rebuild reports the error, the schedule keeps firing.
    let name = db.name.clone();
    db.drop_db().await;
    let r = handle.rebuild(None).await.expect("rebuild");
    assert!(r.sites[0].error.as_deref().is_some_and(|e| e.contains(&name) || e.contains("Unknown database")), "{r:?}");
    let mut conn = redis().await;
    let before = queued(&mut conn, &token, &queue).await.len();
    wait_for("runs while MariaDB is gone", 15, async || {
        queued(&mut conn.clone(), &token, &queue).await.len() >= before + 2
    })
    .await;
    let st = handle.status().await.expect("status");
    assert_eq!(st.sites[0].source_ok, Some(false));
    assert_eq!(st.sites[0].planned, 3);
    stop(handle, task).await;
    cleanup_redis(&token).await;
}

#[tokio::test]
async fn rebuild_of_one_site_reloads_only_that_site() {
    let token = token();
    let (db_a, db_b) = (TestDb::create("site_a").await, TestDb::create("site_b").await);
    let (site_a, site_b) = (format!("{token}a.local"), format!("{token}b.local"));
    let cfg = config(
        &token,
        &format!(
            "[frappe]\nqueue_prefix = \"{token}:\"\n\
             [[sites]]\nname = \"{site_a}\"\nhost = \"127.0.0.1\"\nuser = \"root\"\ndatabase = \"{}\"\n\
             [[sites]]\nname = \"{site_b}\"\nhost = \"127.0.0.1\"\nuser = \"root\"\ndatabase = \"{}\"\n",
            db_a.name, db_b.name
        ),
    );
    let (handle, task) = start(&cfg);
    ready(&handle).await;
    let planned = |st: &btu::engine::StatusReport| st.sites.iter().map(|s| s.planned).collect::<Vec<_>>();
    let before = planned(&handle.status().await.expect("status"));
    assert!(before.iter().all(|n| *n > 0), "{before:?}");

    // The same edit on both sites; a rebuild of site A sees only A's.
    for db in [&db_a, &db_b] {
        db.exec("UPDATE `tabBTU Task Schedule` SET enabled = 0 WHERE name = ?", ("TS-000001",)).await;
    }
    let r = handle.rebuild(Some(&site_a)).await.expect("rebuild site A");
    assert_eq!(r.sites.iter().map(|s| s.site.as_str()).collect::<Vec<_>>(), vec![site_a.as_str()], "{r:?}");
    assert_eq!(r.sites[0].removed, 1, "{r:?}");
    assert_eq!(planned(&handle.status().await.expect("status")), vec![before[0] - 1, before[1]]);

    let unknown = handle.rebuild(Some("nowhere.local")).await;
    assert!(matches!(unknown, Err(btu::engine::EngineError::UnknownSite(_))), "{unknown:?}");

    // Without a site, every site is reloaded.
    let r = handle.rebuild(None).await.expect("rebuild all");
    assert_eq!(
        r.sites.iter().map(|s| (s.site.as_str(), s.removed)).collect::<Vec<_>>(),
        vec![(site_a.as_str(), 0), (site_b.as_str(), 1)]
    );
    assert_eq!(planned(&handle.status().await.expect("status")), vec![before[0] - 1, before[1] - 1]);

    stop(handle, task).await;
    cleanup_redis(&token).await;
    db_a.drop_db().await;
    db_b.drop_db().await;
}
