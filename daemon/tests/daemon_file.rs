//! The engine with a schedules file against real Redis: runs land as RQ jobs, file edits are
//! picked up by a rebuild, the missed-run rule (catch up once within grace, skip beyond it,
//! never twice), and the Frappe-mode job payload.

mod daemon_support;

use std::collections::HashSet;
use std::time::Duration;

use btu::engine::store::{StoredSchedule, schedules_key, upcoming_key};
use btu::source::{RowOutcome, Source};
use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc};
use daemon_support::*;
use redis::AsyncCommands;

fn schedule(id: &str, cron: &str, queue: &str) -> String {
    format!(
        "[[schedule]]\nid = \"{id}\"\nfunction = \"demo_tasks.tick\"\ncron = \"{cron}\"\nqueue = \"{queue}\"\nkwargs = {{ n = 1 }}\n"
    )
}

#[tokio::test]
async fn file_schedules_fire_and_edits_are_picked_up() {
    let f = FileSite::new("btu-daemon-test");
    f.write(&(schedule("tick", "* * * * * *", &f.queue) + &schedule("broken", "99 * * * *", &f.queue)));
    let (handle, task) = start(&f.config("plain"));
    ready(&handle).await;
    let mut conn = redis().await;
    wait_for("2 runs", 15, async || queued(&mut conn.clone(), &f.token, &f.queue).await.len() >= 2).await;
    let ids = queued(&mut conn, &f.token, &f.queue).await;
    let h = job_hash(&mut conn, &f.token, &ids[0]).await;
    let desc = String::from_utf8_lossy(h.get("description").map(|v| v.as_slice()).unwrap_or_default()).to_string();
    assert!(desc.contains("demo_tasks.tick"), "{desc}");
    let st = handle.status().await.expect("status");
    assert_eq!((st.sites[0].planned, st.sites[0].skipped), (1, 1));

    // Edit: change tick, add tock → 1 changed, 1 added.
    f.write(&(schedule("tick", "*/2 * * * * *", &f.queue) + &schedule("tock", "0 0 * * *", &f.queue)));
    let r = handle.rebuild(None).await.expect("rebuild");
    assert_eq!((r.sites[0].added, r.sites[0].changed, r.sites[0].removed), (1, 1, 0), "{r:?}");
    // Disable tock → removed; a broken file keeps the last schedules.
    f.write(
        &(schedule("tick", "*/2 * * * * *", &f.queue) + &schedule("tock", "0 0 * * *", &f.queue) + "enabled = false\n"),
    );
    let r = handle.rebuild(None).await.expect("rebuild");
    assert_eq!(r.sites[0].removed, 1, "{r:?}");
    f.write("[[schedule]\nid = ");
    let r = handle.rebuild(None).await.expect("rebuild");
    assert!(r.sites[0].error.is_some(), "{r:?}");
    let st = handle.status().await.expect("status");
    assert_eq!(st.sites[0].planned, 1);
    let up = handle.upcoming(None, Some("tick"), 3).await.expect("upcoming");
    assert_eq!(up.len(), 3);
    assert!(up.iter().all(|u| u.due.second() % 2 == 0), "{up:?}");
    stop(handle, task).await;
    let ids = queued(&mut conn, &f.token, &f.queue).await;
    assert_eq!(ids.len(), ids.iter().collect::<HashSet<_>>().len());
    f.cleanup().await;
}

/// A cron expression (6 fields, UTC) that runs once a year, exactly at `t`.
fn yearly_at(t: DateTime<Utc>) -> String {
    format!("{} {} {} {} {} *", t.second(), t.minute(), t.hour(), t.day(), t.month())
}

/// Writes a schedule due yearly at `t`, and a previous daemon's record that its next run is
/// `t` (with the current fingerprint unless `stale_fingerprint`).
async fn with_recorded_run(f: &FileSite, t: DateTime<Utc>, stale_fingerprint: bool) -> String {
    f.write(&schedule("yearly", &yearly_at(t), &f.queue));
    let cfg = f.config("plain");
    let rows = Source::all_from_config(&cfg).remove(0).load_all().await.expect("load");
    let RowOutcome::Loaded(spec) = &rows[0] else { panic!("{rows:?}") };
    let mut stored = StoredSchedule::from_spec(spec);
    if stale_fingerprint {
        stored.fingerprint = "0000000000000000".into();
    }
    let mut conn = redis().await;
    let _: () = conn.zadd(upcoming_key(&f.site), "yearly", t.timestamp()).await.expect("zadd");
    let _: () =
        conn.hset(schedules_key(&f.site), "yearly", serde_json::to_string(&stored).expect("json")).await.expect("hset");
    btu::rq::job_id(&f.site, "yearly", t)
}

fn whole_seconds_ago(secs: i64) -> DateTime<Utc> {
    let now = Utc::now() - TimeDelta::seconds(secs);
    DateTime::from_timestamp(now.timestamp(), 0).expect("valid instant")
}

#[tokio::test]
async fn missed_run_within_grace_is_enqueued_once() {
    let f = FileSite::new("btu-daemon-test");
    let t = whole_seconds_ago(20);
    let job_id = with_recorded_run(&f, t, false).await;
    let mut conn = redis().await;
    for round in 0..2 {
        // The second start finds the run already done: nothing more is enqueued.
        let (handle, task) = start(&f.config("plain"));
        ready(&handle).await;
        if round == 0 {
            wait_for("the catch-up run", 10, async || !queued(&mut conn.clone(), &f.token, &f.queue).await.is_empty())
                .await;
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        stop(handle, task).await;
        assert_eq!(queued(&mut conn, &f.token, &f.queue).await, vec![job_id.clone()], "round {round}");
    }
    // Next run planned a year later.
    let score: Option<f64> = conn.zscore(upcoming_key(&f.site), "yearly").await.expect("zscore");
    let next = score.map(|s| s as i64).expect("planned");
    assert_eq!(DateTime::from_timestamp(next, 0).map(|d| d.year()), Some(t.year() + 1));
    f.cleanup().await;
}

#[tokio::test]
async fn missed_run_beyond_grace_is_skipped() {
    let f = FileSite::new("btu-daemon-test");
    let t = whole_seconds_ago(20);
    with_recorded_run(&f, t, false).await;
    let mut cfg = f.config("plain");
    cfg.daemon.missed_run_grace = Duration::from_secs(5);
    let (handle, task) = start(&cfg);
    ready(&handle).await;
    wait_for("the skip", 10, async || handle.status().await.expect("status").runs_missed == 1).await;
    stop(handle, task).await;
    let mut conn = redis().await;
    assert!(queued(&mut conn, &f.token, &f.queue).await.is_empty());
    let score: Option<f64> = conn.zscore(upcoming_key(&f.site), "yearly").await.expect("zscore");
    assert!(score.is_some_and(|s| s as i64 > Utc::now().timestamp()));
    f.cleanup().await;
}

#[tokio::test]
async fn run_enqueued_before_a_crash_is_not_enqueued_again() {
    let f = FileSite::new("btu-daemon-test");
    let t = whole_seconds_ago(20);
    with_recorded_run(&f, t, false).await;
    // The crashed daemon got as far as the atomic enqueue (claim taken), not the ZADD.
    let mut conn = redis().await;
    let _: () = conn.set_ex(btu::engine::store::claim_key(&f.site, "yearly", t), "1", 600).await.expect("set");
    let (handle, task) = start(&f.config("plain"));
    ready(&handle).await;
    wait_for("the claimed catch-up", 10, async || handle.status().await.expect("status").runs_already_claimed == 1)
        .await;
    stop(handle, task).await;
    assert!(queued(&mut conn, &f.token, &f.queue).await.is_empty());
    f.cleanup().await;
}

#[tokio::test]
async fn schedule_changed_while_down_gets_no_catch_up() {
    let f = FileSite::new("btu-daemon-test");
    let t = whole_seconds_ago(20);
    with_recorded_run(&f, t, true).await;
    let (handle, task) = start(&f.config("plain"));
    ready(&handle).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let st = handle.status().await.expect("status");
    stop(handle, task).await;
    let mut conn = redis().await;
    assert!(queued(&mut conn, &f.token, &f.queue).await.is_empty());
    assert_eq!(st.runs_missed, 0);
    f.cleanup().await;
}

#[tokio::test]
async fn frappe_mode_job_calls_execute_job_with_frappe_kwargs() {
    use serde_pickle::{HashableValue as K, Value as V};
    let f = FileSite::new("btu-daemon-test");
    f.write(&format!(
        "[[schedule]]\nid = \"TS-9\"\ntask = \"BTU-9\"\ncron = \"* * * * * *\"\nqueue = \"{}\"\nkwargs = {{ days = 7 }}\n",
        f.queue
    ));
    let (handle, task) = start(&f.config("frappe"));
    ready(&handle).await;
    let mut conn = redis().await;
    wait_for("a run", 10, async || !queued(&mut conn.clone(), &f.token, &f.queue).await.is_empty()).await;
    stop(handle, task).await;
    let ids = queued(&mut conn, &f.token, &f.queue).await;
    let h = job_hash(&mut conn, &f.token, &ids[0]).await;
    let V::Tuple(call) = unpickle(&h["data"]) else { panic!("not a tuple") };
    assert_eq!(call[0], V::String("frappe.utils.background_jobs.execute_job".into()));
    assert_eq!(call[1], V::None);
    let V::Dict(kw) = &call[3] else { panic!("kwargs not a dict: {:?}", call[3]) };
    let get = |k: &str| kw.get(&K::String(k.into())).cloned().unwrap_or_else(|| panic!("missing {k}"));
    assert_eq!(get("site"), V::String(f.site.clone()));
    assert_eq!(get("user"), V::String("Administrator".into()));
    assert_eq!(get("method"), V::String("btu_hooks.runner.run_task".into()));
    assert_eq!(get("event"), V::None);
    assert_eq!(get("is_async"), V::Bool(true));
    let V::Dict(inner) = get("kwargs") else { panic!("inner kwargs") };
    let iget = |k: &str| inner.get(&K::String(k.into())).cloned().unwrap_or_else(|| panic!("missing inner {k}"));
    assert_eq!(iget("task"), V::String("BTU-9".into()));
    assert_eq!(iget("schedule"), V::String("TS-9".into()));
    assert_eq!(iget("job_id"), V::String(ids[0].clone()));
    let V::Dict(args) = iget("arguments") else { panic!("arguments") };
    assert_eq!(args.get(&K::String("days".into())), Some(&V::I64(7)));
    f.cleanup().await;
}
