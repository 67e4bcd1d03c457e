//! The atomic enqueue script against a real Redis (db 9, keys under a random
//! token, deleted at the end): all-or-nothing, once per claim, bounded history,
//! and no password in connection errors.

use btu::pyliteral::PyValue;
use btu::rq::{Claim, EnqueueOutcome, HistoryAppend, RqError, RqJob, RqWriter, connect};
use chrono::Utc;
use redis::AsyncCommands;
use std::time::{SystemTime, UNIX_EPOCH};

const REDIS_URL: &str = "redis://127.0.0.1:6379/9";

fn token() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("rqtest{:x}{:x}", std::process::id(), nanos % 0xffff_ffff)
}

async fn setup(prefix: &str) -> (RqWriter, redis::aio::ConnectionManager) {
    let conn = connect(REDIS_URL).await.unwrap_or_else(|e| {
        panic!("Redis must run on 127.0.0.1:6379 for this test (scripts/bootstrap.sh starts it): {e}")
    });
    (RqWriter::new(conn.clone(), prefix), conn)
}

async fn keys(conn: &mut redis::aio::ConnectionManager, token: &str) -> Vec<String> {
    let mut k: Vec<String> = conn.keys(format!("*{token}*")).await.expect("KEYS");
    k.sort();
    k
}

async fn delete_all(conn: &mut redis::aio::ConnectionManager, token: &str) {
    let k = keys(conn, token).await;
    if !k.is_empty() {
        let _: () = conn.del(k).await.expect("DEL");
    }
}

fn job(token: &str, id: &str) -> RqJob {
    let mut j = RqJob::new(format!("{token}-{id}"), format!("{token}:default"), "mod.func");
    j.kwargs = vec![("a".into(), PyValue::Int(1))];
    j
}

#[tokio::test]
async fn enqueue_is_atomic_and_once() {
    let token = token();
    // A private key prefix keeps even `<prefix>:queues` inside this test's token.
    let prefix = format!("{token}rq");
    let (w, mut conn) = setup(&prefix).await;
    let now = Utc::now();

    // Written once; the second attempt with the same claim writes nothing.
    let j = job(&token, "one");
    let claim = Claim { key: format!("{token}:claim:one"), ttl_secs: 30 };
    let hist = |n: usize| HistoryAppend { key: format!("{token}:hist"), entry: format!("e{n}"), max: 3 };
    assert_eq!(w.enqueue_once(&j, &claim, Some(&hist(0)), now).await.expect("enqueue"), EnqueueOutcome::Enqueued);
    assert_eq!(w.enqueue_once(&j, &claim, Some(&hist(1)), now).await.expect("enqueue"), EnqueueOutcome::AlreadyClaimed);
    let queued: Vec<String> = conn.lrange(w.queue_key(&j.queue), 0, -1).await.expect("LRANGE");
    assert_eq!(queued, vec![j.id.clone()]);
    let queues: Vec<String> = conn.smembers(w.queues_key()).await.expect("SMEMBERS");
    assert_eq!(queues, vec![w.queue_key(&j.queue)], "rq:queues holds the queue KEY");
    let claim_val: String = conn.get(&claim.key).await.expect("GET");
    assert_eq!(claim_val, j.id);
    let ttl: i64 = conn.ttl(&claim.key).await.expect("TTL");
    assert!(ttl > 0 && ttl <= 30, "claim expires: {ttl}");
    let fields: Vec<String> = conn.hkeys(w.job_key(&j.id)).await.expect("HKEYS");
    assert_eq!(fields.len(), 9, "{fields:?}");

    // An expired claim does not resurrect a run whose job hash still exists.
    let _: () = conn.del(&claim.key).await.expect("DEL");
    assert_eq!(w.enqueue_once(&j, &claim, None, now).await.expect("enqueue"), EnqueueOutcome::AlreadyClaimed);

    // History: newest first, bounded.
    for n in 2..6 {
        let jn = job(&token, &format!("h{n}"));
        let c = Claim { key: format!("{token}:claim:h{n}"), ttl_secs: 30 };
        w.enqueue_once(&jn, &c, Some(&hist(n)), now).await.expect("enqueue");
    }
    let h: Vec<String> = conn.lrange(format!("{token}:hist"), 0, -1).await.expect("LRANGE");
    assert_eq!(h, ["e5", "e4", "e3"]);

    // A wrong-typed queue key fails the script BEFORE anything is written.
    let bad = job(&token, "bad");
    let bad_queue = RqJob { queue: format!("{token}:stringq"), ..bad.clone() };
    let _: () = conn.set(w.queue_key(&bad_queue.queue), "not a list").await.expect("SET");
    let c = Claim { key: format!("{token}:claim:bad"), ttl_secs: 30 };
    let before = keys(&mut conn, &token).await;
    match w.enqueue_once(&bad_queue, &c, None, now).await {
        Err(RqError::Redis(e)) => assert!(e.to_string().contains("WRONGTYPE"), "{e}"),
        other => panic!("expected a WRONGTYPE error, got {other:?}"),
    }
    assert_eq!(keys(&mut conn, &token).await, before, "nothing written, not even the claim");

    // An invalid job is refused before Redis is touched.
    let invalid = RqJob { id: "site1.local||x".into(), ..bad.clone() };
    match w.enqueue_once(&invalid, &c, None, now).await {
        Err(RqError::Invalid { field: "id", .. }) => {}
        other => panic!("expected an invalid id, got {other:?}"),
    }
    let bad_claim = Claim { key: String::new(), ttl_secs: 30 };
    assert!(matches!(w.enqueue_once(&bad, &bad_claim, None, now).await, Err(RqError::Invalid { field: "claim", .. })));
    let zero_hist = HistoryAppend { max: 0, ..hist(9) };
    assert!(matches!(w.enqueue_once(&bad, &c, Some(&zero_hist), now).await, Err(RqError::Invalid { field: "history", .. })));
    let bad_prefix = RqWriter::new(conn.clone(), "rq prefix");
    assert!(matches!(bad_prefix.enqueue_once(&bad, &c, None, now).await, Err(RqError::Invalid { field: "key_prefix", .. })));
    assert_eq!(keys(&mut conn, &token).await, before);

    delete_all(&mut conn, &token).await;
    assert!(keys(&mut conn, &token).await.is_empty());
}

#[tokio::test]
async fn two_writers_racing_enqueue_one_job() {
    let token = token();
    let prefix = format!("{token}rq");
    let (w, mut conn) = setup(&prefix).await;
    let j = job(&token, "race");
    let claim = Claim { key: format!("{token}:claim:race"), ttl_secs: 30 };
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (w, j, claim) = (w.clone(), j.clone(), claim.clone());
        tasks.push(tokio::spawn(async move { w.enqueue_once(&j, &claim, None, Utc::now()).await }));
    }
    let mut enqueued = 0;
    for t in tasks {
        if t.await.expect("task").expect("enqueue") == EnqueueOutcome::Enqueued {
            enqueued += 1;
        }
    }
    assert_eq!(enqueued, 1);
    let n: i64 = conn.llen(w.queue_key(&j.queue)).await.expect("LLEN");
    assert_eq!(n, 1);
    delete_all(&mut conn, &token).await;
}

#[tokio::test]
async fn connection_errors_hide_the_password() {
    // This Redis has no password: AUTH is refused, and the error must not echo it.
    let secret = "hunter2-do-not-log";
    match connect(&format!("redis://someone:{secret}@127.0.0.1:6379/9")).await {
        Ok(_) => panic!("AUTH with a password should fail on the passwordless test Redis"),
        Err(e) => {
            let text = format!("{e} {e:?}");
            assert!(!text.contains(secret), "password leaked: {text}");
            assert!(text.contains("someone:***@127.0.0.1"), "{text}");
        }
    }
    match connect(&format!("redis+unix:///nonexistent/redis.sock?pass={secret}")).await {
        Ok(_) => panic!("no such socket"),
        Err(e) => {
            let text = format!("{e}");
            assert!(!text.contains(secret), "password leaked: {text}");
        }
    }
}
