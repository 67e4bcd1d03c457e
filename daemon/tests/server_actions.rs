//! The operator actions over the socket against a real engine + Redis: what pause, resume,
//! skip-next, backfill and audit answer, and the state they leave in Redis (the keys the step
//! at the due instant reads). That a paused or skipped run is then not enqueued is the due
//! instant's check, tested end to end in tests/e2e/test_operator_actions.py.

mod server_support;

use btu_protocol::{BackfillStatus, ErrorCode, Request, Response};
use chrono::{SecondsFormat, TimeDelta, Utc};
use redis::AsyncCommands;
use server_support::{TestServer, redis_url};

fn rfc(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn redis() -> redis::aio::ConnectionManager {
    btu::rq::connect(&redis_url()).await.expect("redis")
}

fn pause(schedule: &str, until: Option<String>, note: Option<&str>) -> Request {
    Request::Pause { schedule: schedule.into(), site: None, until, note: note.map(str::to_string) }
}

fn error_code(r: &Response) -> Option<ErrorCode> {
    match r {
        Response::Error(e) => Some(e.code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_resume_write_the_agreed_key_and_show_in_status_and_upcoming() {
    let srv = TestServer::start(|_| {}).await;
    let mut conn = redis().await;
    let until = Utc::now() + TimeDelta::days(3);
    let Response::Paused(p) = srv.call(pause("daily", Some(rfc(until)), Some("holidays"))).await else {
        panic!("pause")
    };
    assert_eq!((p.site.as_str(), p.schedule.as_str()), (srv.site.as_str(), "daily"));
    assert_eq!((p.pause.until, p.pause.note.as_deref()), (Some(rfc(until)), Some("holidays")));
    assert_eq!(p.pause.uid, Some(nix::unistd::getuid().as_raw()));
    assert_eq!(p.pause.pid, Some(std::process::id() as i32));

    let key = format!("btu:{}:pause:daily", srv.site);
    let json: String = conn.get(&key).await.expect("pause key");
    let v: serde_json::Value = serde_json::from_str(&json).expect("pause JSON");
    assert_eq!(v["until"], rfc(until));
    assert_eq!(v["note"], "holidays");
    assert!(v["at"].as_str().is_some_and(|a| a.ends_with('Z')));
    let expire_at: i64 = redis::cmd("EXPIRETIME").arg(&key).query_async(&mut conn).await.expect("EXPIRETIME");
    assert_eq!(expire_at, until.timestamp(), "the pause ends by expiry at until");

    let Response::Status(s) = srv.call(Request::Status).await else { panic!("status") };
    assert_eq!(s.sites[0].paused.len(), 1);
    assert_eq!(s.sites[0].paused[0].schedule, "daily");
    let upcoming = Request::Upcoming { schedule: Some("daily".into()), site: None, count: 5 };
    let Response::Upcoming(u) = srv.call(upcoming.clone()).await else { panic!("upcoming") };
    for r in &u.runs {
        assert_eq!(r.paused, r.utc < rfc(until), "{} paused while before until", r.utc);
    }

    let Response::Resumed(r) = srv.call(Request::Resume { schedule: "daily".into(), site: None }).await else {
        panic!("resume")
    };
    assert!(r.was_paused);
    assert!(!conn.exists::<_, bool>(&key).await.expect("EXISTS"));
    let Response::Resumed(r) = srv.call(Request::Resume { schedule: "daily".into(), site: None }).await else {
        panic!("resume again")
    };
    assert!(!r.was_paused);
    let Response::Status(s) = srv.call(Request::Status).await else { panic!("status") };
    assert!(s.sites[0].paused.is_empty());
    let Response::Upcoming(u) = srv.call(upcoming).await else { panic!("upcoming") };
    assert!(u.runs.iter().all(|r| !r.paused));

    // Refusals: a past until, an unreadable one, an unknown schedule.
    let past = srv.call(pause("daily", Some(rfc(Utc::now() - TimeDelta::hours(1))), None)).await;
    assert_eq!(error_code(&past), Some(ErrorCode::InvalidArgument), "{past:?}");
    let bad = srv.call(pause("daily", Some("tomorrow".into()), None)).await;
    assert_eq!(error_code(&bad), Some(ErrorCode::InvalidArgument), "{bad:?}");
    let unknown = srv.call(pause("nope", None, None)).await;
    assert_eq!(error_code(&unknown), Some(ErrorCode::UnknownSchedule), "{unknown:?}");
    // A known schedule that does not run may be paused (its next enable is then paused too).
    assert!(matches!(srv.call(pause("off", None, None)).await, Response::Paused(_)));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_next_takes_the_next_planned_runs_after_those_skipped() {
    let srv = TestServer::start(|_| {}).await;
    let mut conn = redis().await;
    let Response::Upcoming(u) =
        srv.call(Request::Upcoming { schedule: Some("daily".into()), site: None, count: 4 }).await
    else {
        panic!("upcoming")
    };
    let skip = |count| Request::SkipNext { schedule: "daily".into(), site: None, count };
    let Response::Skipped(k) = srv.call(skip(2)).await else { panic!("skip") };
    let utcs = |v: &[btu_protocol::NextRun]| v.iter().map(|r| r.utc.clone()).collect::<Vec<_>>();
    assert_eq!(utcs(&k.added), vec![u.runs[0].utc.clone(), u.runs[1].utc.clone()]);
    let Response::Skipped(k) = srv.call(skip(1)).await else { panic!("skip") };
    assert_eq!(utcs(&k.added), vec![u.runs[2].utc.clone()]);
    assert_eq!(utcs(&k.pending), u.runs[..3].iter().map(|r| r.utc.clone()).collect::<Vec<_>>());

    let members: Vec<(String, f64)> =
        conn.zrange_withscores(format!("btu:{}:skip:daily", srv.site), 0, -1).await.expect("ZRANGE");
    assert_eq!(members.len(), 3);
    for (m, score) in &members {
        assert_eq!(m.parse::<f64>().ok(), Some(*score), "member and score are the unix seconds");
    }
    let Response::Upcoming(marked) =
        srv.call(Request::Upcoming { schedule: Some("daily".into()), site: None, count: 4 }).await
    else {
        panic!("upcoming")
    };
    assert_eq!(marked.runs.iter().map(|r| r.skipped).collect::<Vec<_>>(), vec![true, true, true, false]);
    let Response::Status(s) = srv.call(Request::Status).await else { panic!("status") };
    assert_eq!(s.sites[0].skipped.len(), 3);

    assert_eq!(error_code(&srv.call(skip(0)).await), Some(ErrorCode::InvalidArgument));
    let off = srv.call(Request::SkipNext { schedule: "off".into(), site: None, count: 1 }).await;
    assert_eq!(error_code(&off), Some(ErrorCode::InvalidSchedule), "{off:?}");
    srv.stop().await;
}

/// Only the daily schedule of `server_support::SCHEDULES`: the every-second ones would write jobs of their own
/// (staged 2 s ahead of each run) while the backfill's jobs are counted.
const DAILY_ONLY: &str = r#"
[[schedule]]
id = "daily"
function = "tasks.daily"
cron = "30 1 * * *"
zone = "Europe/Berlin"
task = "BTU-TASK-1"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_enqueues_each_missing_run_once_and_dry_run_writes_nothing() {
    let srv = TestServer::start_with(DAILY_ONLY, |_| {}).await;
    let mut conn = redis().await;
    let now = Utc::now();
    let backfill = |dry_run, max| Request::Backfill {
        schedule: "daily".into(),
        site: None,
        start: rfc(now - TimeDelta::days(3)),
        end: rfc(now + TimeDelta::days(2)), // the future part is the plan's
        max,
        dry_run,
    };
    let job_keys = format!("{}rq:job:*", srv.token);
    let Response::Backfilled(dry) = srv.call(backfill(true, 1000)).await else { panic!("dry run") };
    assert!(dry.dry_run);
    assert_eq!(dry.runs.len(), 3, "{dry:?}");
    assert!(dry.runs.iter().all(|r| r.status == BackfillStatus::WouldEnqueue));
    assert!(dry.runs.iter().all(|r| r.due < rfc(now)), "only past instants");
    assert!(conn.keys::<_, Vec<String>>(&job_keys).await.expect("KEYS").is_empty(), "dry run wrote a job");

    let Response::Backfilled(done) = srv.call(backfill(false, 1000)).await else { panic!("backfill") };
    assert!(done.runs.iter().all(|r| r.status == BackfillStatus::Enqueued), "{done:?}");
    assert_eq!(
        done.runs.iter().map(|r| &r.job_id).collect::<Vec<_>>(),
        dry.runs.iter().map(|r| &r.job_id).collect::<Vec<_>>()
    );
    assert_eq!(conn.keys::<_, Vec<String>>(&job_keys).await.expect("KEYS").len(), 3);
    let queued: usize = conn.llen(format!("{}rq:queue:default", srv.token)).await.expect("LLEN");
    assert_eq!(queued, 3);

    let Response::Backfilled(again) = srv.call(backfill(false, 1000)).await else { panic!("backfill again") };
    assert!(again.runs.iter().all(|r| r.status == BackfillStatus::Exists), "{again:?}");
    let queued: usize = conn.llen(format!("{}rq:queue:default", srv.token)).await.expect("LLEN");
    assert_eq!(queued, 3, "no duplicate");
    let Response::History(h) = srv.call(Request::History { schedule: "daily".into(), site: None, count: 10 }).await
    else {
        panic!("history")
    };
    assert_eq!(h.runs.len(), 3);

    // An instant a gate skipped (claimed, history says skipped_paused, no job) is backfilled:
    // its claim is released and it goes through the atomic step.
    let skipped_due = (now - TimeDelta::days(4)).date_naive().and_hms_opt(0, 30, 0).expect("time").and_utc();
    let skipped = btu::rq::job_id(&srv.site, "daily", skipped_due);
    let claim = format!("btu:{}:claim:{skipped}", srv.site);
    let _: () = conn.set(&claim, &skipped).await.expect("SET claim");
    let entry = serde_json::json!({"job_id": skipped, "due": rfc(skipped_due), "enqueued_at": null,
        "outcome": "skipped_paused", "lateness_ms": null});
    let _: () = conn.rpush(format!("btu:{}:history:daily", srv.site), entry.to_string()).await.expect("RPUSH");
    let four_days = Request::Backfill {
        schedule: "daily".into(),
        site: None,
        start: rfc(now - TimeDelta::days(5)),
        end: rfc(now),
        max: 10,
        dry_run: false,
    };
    let Response::Backfilled(more) = srv.call(four_days).await else { panic!("backfill 5 days") };
    let status_of = |due: &str| more.runs.iter().find(|r| r.due == due).map(|r| r.status);
    assert_eq!(status_of(&rfc(skipped_due)), Some(BackfillStatus::Enqueued), "{more:?}");
    assert_eq!(more.runs.iter().filter(|r| r.status == BackfillStatus::Exists).count(), 3, "{more:?}");

    let too_many = srv.call(backfill(false, 2)).await;
    assert_eq!(error_code(&too_many), Some(ErrorCode::InvalidArgument), "{too_many:?}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operator_action_is_audited_with_the_callers_uid_and_pid() {
    let srv = TestServer::start(|_| {}).await;
    let now = Utc::now();
    assert!(matches!(srv.call(pause("daily", None, Some("why not"))).await, Response::Paused(_)));
    assert!(matches!(srv.call(Request::Resume { schedule: "daily".into(), site: None }).await, Response::Resumed(_)));
    let skip = Request::SkipNext { schedule: "every-second".into(), site: None, count: 1 };
    assert!(matches!(srv.call(skip).await, Response::Skipped(_)));
    let range = |dry_run| Request::Backfill {
        schedule: "daily".into(),
        site: None,
        start: rfc(now - TimeDelta::days(1)),
        end: rfc(now),
        max: 10,
        dry_run,
    };
    assert!(matches!(srv.call(range(true)).await, Response::Backfilled(_)));
    assert!(matches!(srv.call(range(false)).await, Response::Backfilled(_)));
    assert!(matches!(srv.call(Request::RunNow { schedule: "daily".into(), site: None }).await, Response::RanNow(_)));
    assert!(matches!(
        srv.call(Request::Cancel { schedule: "every-second-b".into(), site: None }).await,
        Response::Cancelled(_)
    ));
    assert!(matches!(srv.call(Request::Rebuild { site: None }).await, Response::Rebuilt(_)));

    let Response::Audited(a) = srv.call(Request::Audit { schedule: None, site: None, count: 50 }).await else {
        panic!("audit")
    };
    let actions: Vec<&str> = a.entries.iter().map(|e| e.action.as_str()).collect();
    // Newest first; the dry run wrote nothing.
    assert_eq!(actions, ["rebuild", "cancel", "run_now", "backfill", "skip", "resume", "pause"]);
    let (uid, pid) = (nix::unistd::getuid().as_raw(), std::process::id() as i32);
    assert!(a.entries.iter().all(|e| e.uid == Some(uid) && e.pid == Some(pid)), "{a:?}");
    assert_eq!(a.entries[6].note.as_deref(), Some("why not"));
    assert_eq!(a.entries[6].schedule.as_deref(), Some("daily"));
    let args: serde_json::Value = serde_json::from_str(&a.entries[4].args).expect("args JSON");
    assert_eq!(args["count"], 1);

    let Response::Audited(one) =
        srv.call(Request::Audit { schedule: Some("daily".into()), site: None, count: 2 }).await
    else {
        panic!("audit one")
    };
    assert_eq!(one.entries.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["run_now", "backfill"]);
    srv.stop().await;
}
