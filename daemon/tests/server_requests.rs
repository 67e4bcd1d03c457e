//! Socket server against a real engine + Redis: every request type round trip, legacy JSON
//! requests answered in text, and the socket's life cycle (stale file, live daemon, mode, group).

mod server_support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use btu::server::{self, ServerError, ServerOptions};
use btu_protocol::{ErrorCode, Request, Response};
use server_support::{TestServer, call, fired};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_type_round_trips() {
    let srv = TestServer::start(|_| {}).await;

    let Response::Pong(p) = srv.call(Request::Ping).await else { panic!("ping") };
    assert_eq!(p.protocol_version, btu_protocol::PROTOCOL_VERSION);
    assert_eq!(p.daemon_version, env!("CARGO_PKG_VERSION"));

    let Response::Status(s) = srv.call(Request::Status).await else { panic!("status") };
    assert_eq!(s.sites.len(), 1);
    assert_eq!(s.sites[0].site, srv.site);
    assert_eq!(s.sites[0].schedules, 3);
    assert!(s.sites[0].redis_ok && s.sites[0].source_ok);
    assert!(s.source.contains("toml:"), "{}", s.source);

    // notify: one running (with next runs in UTC and local time), disabled, invalid, unknown.
    let ids = ["daily", "off", "broken", "nope"].map(String::from).to_vec();
    let Response::Notified(n) = srv.call(Request::Notify { schedules: ids, site: None }).await else {
        panic!("notify")
    };
    assert_eq!(n.results.len(), 4);
    let daily = &n.results[0];
    assert!(daily.runs);
    assert_eq!(daily.site, srv.site);
    assert_eq!(daily.time_zone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(daily.next_runs.len(), 5);
    for r in &daily.next_runs {
        assert!(r.utc.ends_with('Z'), "{}", r.utc);
        assert!(r.local.contains("T01:30:00+0"), "local time keeps the Berlin offset: {}", r.local);
    }
    assert_eq!((n.results[1].runs, n.results[1].reason.as_deref()), (false, Some("disabled")));
    assert!(!n.results[2].runs);
    assert!(n.results[2].reason.as_deref().is_some_and(|r| r.contains("invalid cron")), "{:?}", n.results[2].reason);
    assert_eq!((n.results[3].runs, n.results[3].reason.as_deref()), (false, Some("unknown schedule")));

    let Response::Upcoming(u) = srv.call(Request::Upcoming { schedule: None, site: None, count: 4 }).await else {
        panic!("upcoming")
    };
    assert_eq!(u.runs.len(), 4);
    assert!(u.runs.windows(2).all(|w| w[0].utc <= w[1].utc), "soonest first");
    let Response::Upcoming(u) =
        srv.call(Request::Upcoming { schedule: Some("daily".into()), site: None, count: 2 }).await
    else {
        panic!("upcoming one")
    };
    assert_eq!(u.runs.len(), 2);
    assert_eq!(u.runs[0].task.as_deref(), Some("BTU-TASK-1"));
    assert!(u.runs[0].local.ends_with("+01:00") || u.runs[0].local.ends_with("+02:00"), "{}", u.runs[0].local);

    let r = srv.call(Request::Upcoming { schedule: Some("off".into()), site: None, count: 2 }).await;
    assert!(
        matches!(&r, Response::Error(e) if e.code == ErrorCode::InvalidSchedule && e.message.contains("disabled")),
        "{r:?}"
    );

    let Response::RanNow(ran) = srv.call(Request::RunNow { schedule: "daily".into(), site: None }).await else {
        panic!("run_now")
    };
    assert_eq!(ran.schedule, "daily");
    assert!(!ran.job_id.is_empty());
    let Response::History(h) = srv.call(Request::History { schedule: "daily".into(), site: None, count: 5 }).await
    else {
        panic!("history")
    };
    assert!(h.runs.iter().any(|r| r.job_id == ran.job_id), "{h:?}");
    // A schedule nobody knows is an error, not an empty history.
    let r = srv.call(Request::History { schedule: "nope".into(), site: None, count: 5 }).await;
    assert!(matches!(&r, Response::Error(e) if e.code == ErrorCode::UnknownSchedule), "{r:?}");

    let r = srv.call(Request::RunNow { schedule: "nope".into(), site: None }).await;
    assert!(
        matches!(&r, Response::Error(e) if e.code == ErrorCode::UnknownSchedule && e.schedule.as_deref() == Some("nope")),
        "{r:?}"
    );
    let r = srv.call(Request::RunNow { schedule: "broken".into(), site: None }).await;
    assert!(matches!(&r, Response::Error(e) if e.code == ErrorCode::InvalidSchedule), "{r:?}");
    let r = srv.call(Request::RunNow { schedule: "daily".into(), site: Some("elsewhere".into()) }).await;
    assert!(matches!(&r, Response::Error(e) if e.code == ErrorCode::UnknownSchedule), "{r:?}");

    let Response::Cancelled(c) = srv.call(Request::Cancel { schedule: "daily".into(), site: None }).await else {
        panic!("cancel")
    };
    assert!(c.removed);
    assert_eq!(c.site, srv.site);
    let Response::Cancelled(c) = srv.call(Request::Cancel { schedule: "daily".into(), site: None }).await else {
        panic!("cancel again")
    };
    assert!(!c.removed, "nothing left to cancel");

    let Response::Rebuilt(rb) = srv.call(Request::Rebuild { site: None }).await else { panic!("rebuild") };
    assert_eq!(rb.sites, vec![srv.site.clone()]);
    assert_eq!((rb.schedules, rb.skipped), (3, 2), "the rebuild plans the cancelled schedule again");
    let r = srv.call(Request::Rebuild { site: Some("elsewhere".into()) }).await;
    assert!(
        matches!(&r, Response::Error(e) if e.code == ErrorCode::Malformed && e.message.contains("elsewhere")),
        "{r:?}"
    );

    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_rereads_the_source_and_replans_at_once() {
    let srv = TestServer::start(|_| {}).await;
    let before = srv.call(Request::Notify { schedules: vec!["daily".into()], site: None }).await;
    let Response::Notified(before) = before else { panic!("notify") };
    assert!(before.results[0].next_runs[0].local.contains("T01:30:00"));

    let edited = server_support::SCHEDULES.replace("cron = \"30 1 * * *\"", "cron = \"15 23 * * *\"");
    std::fs::write(&srv.schedules_path, edited).expect("edit schedules file");
    let Response::Notified(after) = srv.call(Request::Notify { schedules: vec!["daily".into()], site: None }).await
    else {
        panic!("notify")
    };
    assert!(after.results[0].next_runs[0].local.contains("T23:15:00"), "{:?}", after.results[0]);
    let Response::Upcoming(u) =
        srv.call(Request::Upcoming { schedule: Some("daily".into()), site: None, count: 1 }).await
    else {
        panic!("upcoming")
    };
    assert_eq!(u.runs[0].utc, after.results[0].next_runs[0].utc, "the plan itself changed, not only the reply");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_requests_on_one_connection() {
    let srv = TestServer::start(|_| {}).await;
    let mut stream = UnixStream::connect(&srv.socket).await.expect("connect");
    for id in 1..=20u64 {
        let r =
            server_support::call_on(&mut stream, id, if id % 2 == 0 { Request::Ping } else { Request::Status }).await;
        assert!(matches!(r, Response::Pong(_) | Response::Status(_)));
    }
    srv.stop().await;
}

async fn legacy(socket: &std::path::Path, json: &str) -> String {
    let mut s = UnixStream::connect(socket).await.expect("connect");
    // Like the BTU app: send without terminator or half-close, then read the answer.
    s.write_all(json.as_bytes()).await.expect("send");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("answer in time")
        .expect("read");
    String::from_utf8(out).expect("utf-8 answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_json_requests_are_answered_in_text() {
    let srv = TestServer::start(|_| {}).await;
    let sock = &srv.socket;
    assert_eq!(legacy(sock, r#"{"request_type": "ping", "request_content": null}"#).await, "pong");
    assert_eq!(
        legacy(sock, r#"{"request_type": "create_task_schedule", "request_content": "daily"}"#).await,
        "BTU Scheduler now re-processing Task Schedule daily in Python RQ."
    );
    assert_eq!(
        legacy(sock, r#"{"request_type": "cancel_task_schedule", "request_content": "daily"}"#).await,
        "Successfully cancelled BTU Task Schedule daily in Python RQ."
    );
    // Both are in the audit trail with the peer's uid/pid and the answer given (a ping is not
    // an action).
    let Response::Audited(a) = srv.call(Request::Audit { schedule: None, site: None, count: 10 }).await else {
        panic!("audit")
    };
    let seen: Vec<_> = a.entries.iter().map(|e| (e.action.as_str(), e.schedule.as_deref())).collect();
    assert_eq!(seen, [("legacy_cancel", Some("daily")), ("legacy_create", Some("daily"))]);
    assert!(
        a.entries
            .iter()
            .all(|e| e.uid == Some(nix::unistd::getuid().as_raw()) && e.pid == Some(std::process::id() as i32))
    );
    assert!(a.entries[0].args.contains("Successfully cancelled"), "{}", a.entries[0].args);
    let Response::Upcoming(u) = srv.call(Request::Upcoming { schedule: None, site: None, count: 100 }).await else {
        panic!("upcoming")
    };
    assert!(u.runs.iter().all(|r| r.schedule != "daily"), "the legacy cancel dropped the plan");
    assert_eq!(
        legacy(sock, r#"{"request_type": "reboot", "request_content": null}"#).await,
        "Client message has an unhandled 'request_type': reboot"
    );
    let unknown = legacy(sock, r#"{"request_type": "create_task_schedule", "request_content": "nope"}"#).await;
    assert!(unknown.contains("nope") && unknown.contains("unknown schedule"), "{unknown}");
    // Broken JSON: the original closed without a word.
    assert_eq!(legacy(sock, r#"{"request_type": 7}"#).await, "");
    // Sent in pieces: parsed once the object is complete.
    let mut s = UnixStream::connect(sock).await.expect("connect");
    s.write_all(br#"{"request_type": "pi"#).await.expect("send");
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.write_all(br#"ng", "request_content": null}"#).await.expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    assert_eq!(out, "pong");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_life_cycle_stale_live_mode_group() {
    let srv = TestServer::start(|_| {}).await;
    let meta = std::fs::metadata(&srv.socket).expect("socket exists");
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);

    // A live daemon answers on the path: a second one refuses to start.
    let second = server::bind(ServerOptions::new(&srv.socket)).await;
    assert!(matches!(&second, Err(ServerError::AlreadyRunning { .. })), "{second:?}");
    assert!(second.err().map(|e| e.to_string()).unwrap_or_default().contains("already listening"));
    // ... and the first still serves.
    assert!(matches!(srv.call(Request::Ping).await, Response::Pong(_)));
    let dir = srv.dir.clone();

    // A stale socket file (its listener gone) is replaced.
    let stale = dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind a listener and drop it"));
    assert!(stale.exists());
    let bound = server::bind(ServerOptions::new(&stale)).await.expect("stale socket replaced");
    drop(bound);

    // A regular file is never deleted.
    let plain = dir.join("plain.sock");
    std::fs::write(&plain, "not a socket").expect("write");
    let r = server::bind(ServerOptions::new(&plain)).await;
    assert!(matches!(r, Err(ServerError::NotASocket { .. })), "{r:?}");
    assert_eq!(std::fs::read_to_string(&plain).ok().as_deref(), Some("not a socket"));

    // Unknown group: a clear error, and no socket file left behind.
    let g = dir.join("group.sock");
    let mut opts = ServerOptions::new(&g);
    opts.group = Some("no_such_group_btu_test".into());
    let r = server::bind(opts).await;
    assert!(matches!(&r, Err(ServerError::UnknownGroup { group }) if group == "no_such_group_btu_test"), "{r:?}");
    assert!(!g.exists());
    // A known group (the daemon's own primary group) is applied.
    let own = nix::unistd::Group::from_gid(nix::unistd::getgid()).ok().flatten().expect("own group");
    let mut opts = ServerOptions::new(&g);
    opts.group = Some(own.name.clone());
    let bound = server::bind(opts).await.expect("bind with group");
    assert_eq!(std::fs::metadata(&g).expect("socket").gid(), own.gid.as_raw());
    drop(bound);

    // At shutdown the server removes its socket file.
    let own = dir.join("own.sock");
    let bound = server::bind(ServerOptions::new(&own)).await.expect("bind");
    assert!(own.exists());
    let ctx = std::sync::Arc::new(btu::server::Context::new(srv.handle.clone(), "test"));
    bound.run(ctx, async {}).await;
    assert!(!own.exists(), "the socket file is removed at shutdown");

    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_fire_while_the_server_runs() {
    let srv = TestServer::start(|_| {}).await;
    let before = fired(&srv.handle, "every-second").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(fired(&srv.handle, "every-second").await > before);
    let r = call(&srv.socket, Request::History { schedule: "every-second".into(), site: None, count: 3 }).await;
    assert!(matches!(r, Response::History(h) if !h.runs.is_empty()));
    srv.stop().await;
}
