//! The engine's staging against real Redis (db 11, keys under a per-test token): a run staged
//! by a daemon that then died is released once — at its instant by a daemon that did not
//! stage it, or by the catch-up of a restarted one — and a schedule cancelled, edited or
//! removed after its run was staged has that run removed at once, its batch's other runs
//! still released at their instant.

mod daemon_support;

use std::time::Duration;

use btu::engine::EngineHandle;
use btu::engine::store::{StoredSchedule, claim_key, schedules_key, upcoming_key};
use btu::pyvalue::PyValue;
use btu::rq::{Claim, PreparedRun, RqJob, RqWriter, StageOutcome};
use btu::source::{RowOutcome, Source};
use chrono::{DateTime, TimeDelta, Timelike, Utc};
use daemon_support::*;
use redis::AsyncCommands;

/// A schedules file with one run a year, due at `t`.
fn yearly(f: &FileSite, t: DateTime<Utc>) -> String {
    yearly_as(f, "yearly", t, 1)
}

/// A schedule `id` running once a year, due at `t`, called with `n`.
fn yearly_as(f: &FileSite, id: &str, t: DateTime<Utc>, n: u32) -> String {
    format!(
        "[[schedule]]\nid = \"{id}\"\nfunction = \"demo_tasks.tick\"\ncron = \"{} {} {} {} {} *\"\nqueue = \"{}\"\nkwargs = {{ n = {n} }}\n",
        t.second(),
        t.minute(),
        t.hour(),
        t.format("%-d"),
        t.format("%-m"),
        f.queue
    )
}

/// What a daemon that died after staging left: the run's claim and its staged hash (with
/// a payload of its own, to tell which content is released).
async fn stage_as_dead_daemon(f: &FileSite, t: DateTime<Utc>) -> String {
    let id = btu::rq::job_id(&f.site, "yearly", t);
    let mut job = RqJob::new(id.clone(), f.queue.clone(), "dead.daemon");
    job.kwargs = vec![("from".into(), PyValue::Str("dead".into()))];
    let claim = Claim { key: claim_key(&f.site, "yearly", t), ttl_secs: 600 };
    let run = PreparedRun::new(&job, claim, Utc::now()).expect("valid run");
    let writer = RqWriter::new(redis().await, &format!("{}rq", f.token));
    assert_eq!(writer.stage_many(&[run]).await.expect("stage"), vec![StageOutcome::Staged]);
    id
}

fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).expect("valid instant")
}

async fn field(conn: &mut redis::aio::ConnectionManager, key: &str, name: &str) -> Option<String> {
    conn.hget(key, name).await.expect("HGET")
}

/// Whether `key` is a staged job hash: status queued but no `enqueued_at` (rq/scripts.rs,
/// STAGED_LUA).
async fn staged(conn: &mut redis::aio::ConnectionManager, key: &str) -> bool {
    field(conn, key, "status").await.as_deref() == Some("queued") && field(conn, key, "enqueued_at").await.is_none()
}

#[tokio::test]
async fn a_dead_daemons_staged_run_is_released_once_at_its_instant() {
    let f = FileSite::new("btu-staging-test");
    let t = whole_second(Utc::now() + TimeDelta::seconds(5));
    f.write(&yearly(&f, t));
    let id = stage_as_dead_daemon(&f, t).await;
    let (handle, task) = start(&f.config("plain"));
    ready(&handle).await;
    let mut conn = redis().await;
    wait_for("the run at its instant", 15, async || !queued(&mut conn.clone(), &f.token, &f.queue).await.is_empty())
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let st = handle.status().await.expect("status");
    stop(handle, task).await;
    assert_eq!(queued(&mut conn, &f.token, &f.queue).await, vec![id.clone()], "released once");
    assert_eq!(st.runs_enqueued, 1);
    let key = format!("{}rq:job:{id}", f.token);
    assert_eq!(field(&mut conn, &key, "status").await.as_deref(), Some("queued"));
    assert!(field(&mut conn, &key, "enqueued_at").await.is_some());
    let ttl: i64 = conn.ttl(&key).await.expect("TTL");
    assert_eq!(ttl, -1, "released: no expiry");
    // Released as staged (the same run; the content is the stager's).
    let desc = field(&mut conn, &key, "description").await.unwrap_or_default();
    assert!(desc.contains("dead.daemon"), "{desc}");
    f.cleanup().await;
}

#[tokio::test]
async fn a_restarted_daemon_catches_a_staged_run_up_once_with_the_schedule_as_it_is() {
    let f = FileSite::new("btu-staging-test");
    let t = whole_second(Utc::now() - TimeDelta::seconds(20));
    f.write(&yearly(&f, t));
    // The previous daemon recorded t as the next run and staged it, then died before t.
    let rows = Source::all_from_config(&f.config("plain")).remove(0).load_all().await.expect("load");
    let RowOutcome::Loaded(spec) = &rows[0] else { panic!("{rows:?}") };
    let mut conn = redis().await;
    let _: () = conn.zadd(upcoming_key(&f.site), "yearly", t.timestamp()).await.expect("zadd");
    let stored = serde_json::to_string(&StoredSchedule::from_spec(spec)).expect("json");
    let _: () = conn.hset(schedules_key(&f.site), "yearly", stored).await.expect("hset");
    let id = stage_as_dead_daemon(&f, t).await;
    for round in 0..2 {
        let (handle, task) = start(&f.config("plain"));
        ready(&handle).await;
        if round == 0 {
            wait_for("the catch-up", 10, async || !queued(&mut conn.clone(), &f.token, &f.queue).await.is_empty())
                .await;
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        stop(handle, task).await;
        assert_eq!(queued(&mut conn, &f.token, &f.queue).await, vec![id.clone()], "round {round}");
    }
    let key = format!("{}rq:job:{id}", f.token);
    assert_eq!(field(&mut conn, &key, "status").await.as_deref(), Some("queued"));
    // The catch-up enqueues in full, which rewrites the staged hash with today's schedule.
    let desc = field(&mut conn, &key, "description").await.unwrap_or_default();
    assert!(desc.contains("demo_tasks.tick"), "{desc}");
    f.cleanup().await;
}

#[tokio::test]
async fn a_schedule_removed_after_staging_leaves_nothing_behind() {
    let f = FileSite::new("btu-staging-test");
    let t = whole_second(Utc::now() + TimeDelta::seconds(5));
    f.write(&yearly(&f, t));
    let (handle, task) = start(&f.config("plain"));
    ready(&handle).await;
    let id = btu::rq::job_id(&f.site, "yearly", t);
    let key = format!("{}rq:job:{id}", f.token);
    let mut conn = redis().await;
    wait_for("the run staged", 10, async || staged(&mut conn.clone(), &key).await).await;
    // Removed (disabled, cancelled) before its instant.
    f.write("");
    handle.rebuild(None).await.expect("rebuild");
    let wait = (t - Utc::now() + TimeDelta::milliseconds(1500)).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
    stop(handle, task).await;
    assert!(queued(&mut conn, &f.token, &f.queue).await.is_empty());
    let hash: bool = conn.exists(&key).await.expect("EXISTS");
    let claim: bool = conn.exists(claim_key(&f.site, "yearly", t)).await.expect("EXISTS");
    assert!(!hash && !claim, "staged hash and claim removed");
    f.cleanup().await;
}

/// Two schedules staged for the instant `t` (one batch), the daemon running: answers the
/// daemon and the job keys of `yearly` and `other`.
async fn two_staged(f: &FileSite, t: DateTime<Utc>) -> (EngineHandle, tokio::task::JoinHandle<()>, String, String) {
    f.write(&format!("{}{}", yearly_as(f, "yearly", t, 1), yearly_as(f, "other", t, 1)));
    let (handle, task) = start(&f.config("plain"));
    ready(&handle).await;
    let keys: Vec<String> =
        ["yearly", "other"].iter().map(|s| format!("{}rq:job:{}", f.token, btu::rq::job_id(&f.site, s, t))).collect();
    let conn = redis().await;
    wait_for("both runs staged", 10, async || {
        let mut c = conn.clone();
        staged(&mut c, &keys[0]).await && staged(&mut c, &keys[1]).await
    })
    .await;
    let [yearly, other] = <[String; 2]>::try_from(keys).expect("two keys");
    (handle, task, yearly, other)
}

/// Waits until `key` is gone, which must happen before the instant `t`.
async fn removed_before(conn: &redis::aio::ConnectionManager, key: &str, t: DateTime<Utc>) {
    wait_for("the staged run removed", 5, async || {
        let gone: bool = !conn.clone().exists::<_, bool>(key).await.expect("EXISTS");
        gone || Utc::now() >= t
    })
    .await;
    assert!(Utc::now() < t, "the staged run was not removed before its instant");
}

#[tokio::test]
async fn a_cancelled_schedules_staged_run_is_removed_at_once_and_its_batch_still_released() {
    let f = FileSite::new("btu-staging-test");
    let t = whole_second(Utc::now() + TimeDelta::seconds(5));
    let (handle, task, yearly, other) = two_staged(&f, t).await;
    let mut conn = redis().await;
    assert!(handle.cancel(None, "yearly").await.expect("cancel"));
    removed_before(&conn, &yearly, t).await;
    let claim: bool = conn.exists(claim_key(&f.site, "yearly", t)).await.expect("EXISTS");
    assert!(!claim, "its claim removed with it");
    wait_for("the other run at its instant", 10, async || {
        !queued(&mut conn.clone(), &f.token, &f.queue).await.is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop(handle, task).await;
    let other_id = other.rsplit(':').next().unwrap_or_default().to_string();
    assert_eq!(queued(&mut conn, &f.token, &f.queue).await, vec![other_id], "only the other run");
    assert_eq!(field(&mut conn, &other, "status").await.as_deref(), Some("queued"));
    assert!(!conn.exists::<_, bool>(&yearly).await.expect("EXISTS"), "the cancelled run never came back");
    f.cleanup().await;
}

#[tokio::test]
async fn an_edited_schedules_staged_run_is_removed_at_once_and_enqueued_as_edited() {
    let f = FileSite::new("btu-staging-test");
    let t = whole_second(Utc::now() + TimeDelta::seconds(5));
    let (handle, task, yearly, other) = two_staged(&f, t).await;
    let mut conn = redis().await;
    // Same instant, other arguments: the staged content is stale.
    f.write(&format!("{}{}", yearly_as(&f, "yearly", t, 2), yearly_as(&f, "other", t, 1)));
    handle.notify(None, &["yearly".to_string()]).await.expect("notify");
    removed_before(&conn, &yearly, t).await;
    wait_for("both runs at their instant", 10, async || queued(&mut conn.clone(), &f.token, &f.queue).await.len() == 2)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop(handle, task).await;
    assert_eq!(queued(&mut conn, &f.token, &f.queue).await.len(), 2, "each run once");
    for key in [&yearly, &other] {
        assert_eq!(field(&mut conn, key, "status").await.as_deref(), Some("queued"), "{key}");
    }
    // The call's kwargs, as the worker will see them: the edit's for `yearly`.
    for (key, n) in [(&yearly, 2), (&other, 1)] {
        let id = key.rsplit(':').next().unwrap_or_default();
        let data = job_hash(&mut conn, &f.token, id).await.remove("data").expect("job data");
        let call = format!("{:?}", unpickle(&data));
        assert!(call.contains(&format!("String(\"n\"): I64({n})")), "{key}: {call}");
    }
    f.cleanup().await;
}
