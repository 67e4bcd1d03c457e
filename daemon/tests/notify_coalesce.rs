//! Coalesced notifies against real MariaDB (+ Redis for the engine): many concurrent reads of
//! one site, a mix of runnable, disabled, draft-task, invalid-cron, unknown and odd-case ids
//! with duplicates, each answered exactly as the same read alone answers it, over fewer
//! database connections than callers.

mod daemon_support;

use std::collections::HashMap;

use btu::engine::ScheduleStatus;
use btu::source::{RowOutcome, Source};
use daemon_support::*;

/// Concurrent callers per test.
const CALLERS: usize = 400;

fn site_config(token: &str, db: &str) -> btu::config::Config {
    config(
        token,
        &format!(
            "[frappe]\nqueue_prefix = \"{token}:\"\n[mariadb]\nmax_connections = 8\n\
             [[sites]]\nname = \"{token}.local\"\nhost = \"127.0.0.1\"\nuser = \"root\"\ndatabase = \"{db}\"\n"
        ),
    )
}

/// The sample data's six rows, 40 more (every third disabled), unknown ids, an id in another
/// case (the column's collation finds the row), one with trailing spaces and one with a NUL.
async fn ids_for(db: &TestDb) -> Vec<String> {
    let mut ids: Vec<String> = (1..=6).map(|n| format!("TS-{n:06}")).collect();
    for n in 0..40 {
        let id = format!("TS-2{n:05}");
        db.exec(
            "INSERT INTO `tabBTU Task Schedule` (name, task, enabled, queue_name, cron_string) \
             VALUES (?, 'BTU-00002', ?, 'default', ?)",
            (&id, i64::from(n % 3 != 0), format!("{} 3 * * *", n % 60)),
        )
        .await;
        ids.push(id);
    }
    ids.extend(["TS-999999", "TS-888888", "ts-000002", "TS-000001  ", "TS-\u{0}1"].map(String::from));
    ids
}

/// `CALLERS` requests cycling over `ids` (so each id is asked several times, some in the same
/// batch), in a scrambled order.
fn requests(ids: &[String]) -> Vec<String> {
    (0..CALLERS).map(|i| ids[(i * 7 + i / ids.len()) % ids.len()].clone()).collect()
}

/// What a caller can compare: the row's schedule, and its fingerprint or why it does not run.
fn answer(row: &RowOutcome) -> String {
    match row {
        RowOutcome::Loaded(s) => format!("{} loaded {:?}", s.id, s.fingerprint),
        RowOutcome::Skipped { schedule, reason, .. } => format!("{schedule} {reason}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reads_of_a_site_each_get_their_own_answer_over_few_connections() {
    let token = token();
    let db = TestDb::create("coalesce_src").await;
    let ids = ids_for(&db).await;
    let cfg = site_config(&token, &db.name);

    // Each id alone, one after the other: the answers to match.
    let alone = Source::all_from_config(&cfg).remove(0);
    let mut expected = HashMap::new();
    for id in &ids {
        expected.insert(id.clone(), answer(&alone.load_one(id).await.expect("load alone")));
    }
    alone.close().await;
    assert!(expected["TS-000001"].contains("loaded"), "{expected:?}");
    assert!(expected["TS-000003"].contains("disabled"), "{expected:?}");
    assert_eq!(expected["TS-999999"], "TS-999999 no such schedule");
    assert!(expected["ts-000002"].starts_with("TS-000002 loaded"), "the collation's answer: {expected:?}");

    let source = Source::all_from_config(&cfg).remove(0);
    let tasks: Vec<_> = requests(&ids)
        .into_iter()
        .map(|id| {
            let source = source.clone();
            tokio::spawn(async move {
                let got = source.load_one(&id).await.map(|row| answer(&row));
                (id, got)
            })
        })
        .collect();
    for task in tasks {
        let (id, got) = task.await.expect("join");
        assert_eq!(got.as_ref().ok(), Some(&expected[&id]), "{id:?}: {got:?}");
    }
    let cap = source.conn_cap().expect("a MariaDB source has a cap");
    // One read in flight per site: the cap of 8 was never needed (before, 400 callers took 8).
    assert_eq!(cap.open(), 1, "{cap:?}");
    assert_eq!(cap.waits(), 0, "{cap:?}");
    source.close().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_notifies_through_the_engine_each_get_their_own_state() {
    let token = token();
    let db = TestDb::create("coalesce_engine").await;
    let ids = ids_for(&db).await;
    let cfg = site_config(&token, &db.name);
    let (handle, task) = start(&cfg);
    ready(&handle).await;

    // What each id's notify answers alone; runs compared by count (a minute may pass).
    let shape = |status: &ScheduleStatus| match status {
        ScheduleStatus::Planned { cron, zone, queue, next_runs, .. } => {
            format!("planned {cron} {zone} {queue} {}", next_runs.len())
        }
        ScheduleStatus::NotRunning(reason) => format!("not running: {reason}"),
    };
    let mut expected = HashMap::new();
    for id in &ids {
        let st = handle.notify(None, std::slice::from_ref(id)).await.expect("notify alone");
        assert_eq!(st.len(), 1, "{st:?}");
        expected.insert(id.clone(), (st[0].schedule.clone(), shape(&st[0].status)));
    }
    assert!(expected["TS-200001"].1.starts_with("planned 1 3 * * *"), "{expected:?}");
    assert!(expected["TS-200000"].1.contains("disabled"), "{expected:?}");
    assert!(expected["TS-000005"].1.starts_with("not running"), "invalid cron: {expected:?}");

    let tasks: Vec<_> = requests(&ids)
        .into_iter()
        .map(|id| {
            let handle = handle.clone();
            tokio::spawn(async move {
                let got = handle.notify(None, std::slice::from_ref(&id)).await;
                (id, got)
            })
        })
        .collect();
    for t in tasks {
        let (id, got) = t.await.expect("join");
        let st = got.unwrap_or_else(|e| panic!("{id:?}: {e}"));
        assert_eq!(st.len(), 1, "{id:?}: {st:?}");
        assert_eq!((st[0].schedule.clone(), shape(&st[0].status)), expected[&id], "{id:?}");
    }

    stop(handle, task).await;
    cleanup_redis(&token).await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_read_that_fails_gives_each_caller_the_error() {
    let token = token();
    let db = TestDb::create("coalesce_down").await;
    let cfg = site_config(&token, &db.name);
    let source = Source::all_from_config(&cfg).remove(0);
    assert!(matches!(source.load_one("TS-000001").await, Ok(RowOutcome::Loaded(_))));
    // The database goes away under the source: every concurrent caller gets the error.
    db.exec("DROP TABLE `tabBTU Task Schedule`", ()).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let source = source.clone();
            tokio::spawn(async move { source.load_one(&format!("TS-{:06}", i % 7)).await })
        })
        .collect();
    for t in tasks {
        match t.await.expect("join") {
            Err(btu::source::SourceError::Database { message, .. }) => {
                assert!(message.contains("tabBTU Task Schedule"), "{message}")
            }
            other => panic!("expected the database error, got {other:?}"),
        }
    }
    source.close().await;
    db.drop_db().await;
}
