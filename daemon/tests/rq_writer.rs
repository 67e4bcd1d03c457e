//! The atomic enqueue script against a real Redis (db 9, keys under a random
//! token, deleted at the end): all-or-nothing, once per claim, batches of runs
//! per call (new, mixed, invalid, wrong-typed, racing writers), the bounded
//! history written as a follow-up (a failing one is logged, the run stands),
//! and no password in connection errors.

use btu::pyvalue::PyValue;
use btu::rq::{
    Claim, EnqueueOutcome, HistoryAppend, PreparedRun, RqError, RqJob, RqWriter, STAMP_LUA, connect, rq_timestamp,
};
use chrono::Utc;
use redis::AsyncCommands;
use std::sync::{Arc, Mutex};

mod test_token;

/// Redis db 9 on 127.0.0.1, port `$BTU_TEST_REDIS_PORT` (default 6379), so that two
/// checkouts can run the suites side by side.
fn redis_url() -> String {
    let port: u16 = std::env::var("BTU_TEST_REDIS_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(6379);
    format!("redis://127.0.0.1:{port}/9")
}

fn token() -> String {
    test_token::token("rqtest")
}

async fn setup(prefix: &str) -> (RqWriter, redis::aio::ConnectionManager) {
    let conn = connect(&redis_url()).await.unwrap_or_else(|e| {
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
        Err(RqError::WrongType(e)) => assert!(e.contains("WRONGTYPE") && e.contains("stringq"), "{e}"),
        other => panic!("expected a WRONGTYPE error, got {other:?}"),
    }
    assert_eq!(keys(&mut conn, &token).await, before, "nothing written, not even the claim");

    // An invalid job is refused before Redis is touched.
    let invalid = RqJob { id: "site1.local||x:y".into(), ..bad.clone() };
    match w.enqueue_once(&invalid, &c, None, now).await {
        Err(RqError::Invalid { field: "id", .. }) => {}
        other => panic!("expected an invalid id, got {other:?}"),
    }
    let bad_claim = Claim { key: String::new(), ttl_secs: 30 };
    assert!(matches!(w.enqueue_once(&bad, &bad_claim, None, now).await, Err(RqError::Invalid { field: "claim", .. })));
    let zero_hist = HistoryAppend { max: 0, ..hist(9) };
    assert!(matches!(
        w.enqueue_once(&bad, &c, Some(&zero_hist), now).await,
        Err(RqError::Invalid { field: "history", .. })
    ));
    let bad_prefix = RqWriter::new(conn.clone(), "rq prefix");
    assert!(matches!(
        bad_prefix.enqueue_once(&bad, &c, None, now).await,
        Err(RqError::Invalid { field: "key_prefix", .. })
    ));
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

fn prepared(token: &str, name: &str) -> PreparedRun {
    let claim = Claim { key: format!("{token}:claim:{name}"), ttl_secs: 30 };
    PreparedRun::new(&job(token, name), claim, Utc::now()).expect("valid run")
}

fn hist_of(token: &str, name: &str) -> HistoryAppend {
    HistoryAppend { key: format!("{token}:hist:{name}"), entry: format!("e-{name}"), max: 5 }
}

fn enqueued(outcomes: Vec<Result<EnqueueOutcome, RqError>>) -> Vec<EnqueueOutcome> {
    outcomes.into_iter().map(|o| o.expect("run answered")).collect()
}

/// What the daemon does after a batch: the history of the runs it answered `Enqueued`.
async fn append_history_of_enqueued(w: &RqWriter, token: &str, names: &[&str], out: &[EnqueueOutcome]) {
    let hists: Vec<HistoryAppend> = names
        .iter()
        .zip(out)
        .filter(|(_, o)| **o == EnqueueOutcome::Enqueued)
        .map(|(name, _)| hist_of(token, name))
        .collect();
    let answers = w.append_history(&hists).await.expect("history");
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
}

#[tokio::test]
async fn batch_of_new_runs_is_written_in_one_call() {
    let token = token();
    let (w, mut conn) = setup(&format!("{token}rq")).await;
    let runs: Vec<PreparedRun> = (0..5).map(|i| prepared(&token, &format!("n{i}"))).collect();
    let redis_now = || async {
        let mut c = conn.clone();
        let (secs, usecs): (i64, u32) = redis::cmd("TIME").query_async(&mut c).await.expect("TIME");
        rq_timestamp(chrono::DateTime::from_timestamp(secs, usecs * 1000).expect("time")).expect("ts")
    };
    let before = redis_now().await;
    let out = enqueued(w.enqueue_many(&runs).await.expect("batch"));
    let after = redis_now().await;
    assert_eq!(out, vec![EnqueueOutcome::Enqueued; 5]);
    let queue = w.queue_key(&format!("{token}:default"));
    let queued: Vec<String> = conn.lrange(&queue, 0, -1).await.expect("LRANGE");
    assert_eq!(queued, runs.iter().map(|r| r.job_id().to_string()).collect::<Vec<_>>(), "FIFO in batch order");
    let queues: Vec<String> = conn.smembers(w.queues_key()).await.expect("SMEMBERS");
    assert_eq!(queues, vec![queue]);
    for run in &runs {
        let fields: Vec<(String, Vec<u8>)> = conn.hgetall(w.job_key(run.job_id())).await.expect("HGETALL");
        assert_eq!(fields.len(), 9, "{fields:?}");
        let get = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| String::from_utf8_lossy(v).into_owned());
        // Stamped by the script with Redis' clock, the moment the job was written (one
        // stamp per call); rq's fixed-width form compares as text.
        let stamp = get("enqueued_at").expect("enqueued_at");
        assert!(before <= stamp && stamp <= after, "{before} <= {stamp} <= {after}");
        assert_eq!(Some(&stamp), get("enqueued_at").as_ref());
        assert_eq!(get("status").as_deref(), Some("queued"));
        let claim: String = conn.get(&run.claim().key).await.expect("GET claim");
        assert_eq!(claim, run.job_id());
    }
    // The history follow-up of the enqueued runs: one round trip, bounded lists.
    let hists: Vec<HistoryAppend> =
        (0..5).map(|i| HistoryAppend { entry: format!("e{i}"), max: 2, ..hist_of(&token, "n") }).collect();
    let answers = w.append_history(&hists).await.expect("history");
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    let hist: Vec<String> = conn.lrange(format!("{token}:hist:n"), 0, -1).await.expect("LRANGE");
    assert_eq!(hist, ["e4", "e3"], "newest first, bounded");
    // The whole batch again: every run is already claimed, nothing more is written.
    let again = enqueued(w.enqueue_many(&runs).await.expect("batch"));
    assert_eq!(again, vec![EnqueueOutcome::AlreadyClaimed; 5]);
    let n: i64 = conn.llen(w.queue_key(&format!("{token}:default"))).await.expect("LLEN");
    assert_eq!(n, 5);
    delete_all(&mut conn, &token).await;
}

#[tokio::test]
async fn batch_mixing_claimed_and_new_runs_writes_only_the_new() {
    let token = token();
    let (w, mut conn) = setup(&format!("{token}rq")).await;
    let runs: Vec<PreparedRun> = (0..4).map(|i| prepared(&token, &format!("m{i}"))).collect();
    // Runs 0 and 2 were enqueued earlier (this daemon before a restart, or another one).
    let first = enqueued(w.enqueue_many(&[runs[0].clone(), runs[2].clone()]).await.expect("batch"));
    assert_eq!(first, vec![EnqueueOutcome::Enqueued; 2]);
    append_history_of_enqueued(&w, &token, &["m0", "m2"], &first).await;
    let out = enqueued(w.enqueue_many(&runs).await.expect("batch"));
    append_history_of_enqueued(&w, &token, &["m0", "m1", "m2", "m3"], &out).await;
    use EnqueueOutcome::{AlreadyClaimed, Enqueued};
    assert_eq!(out, vec![AlreadyClaimed, Enqueued, AlreadyClaimed, Enqueued]);
    let queued: Vec<String> = conn.lrange(w.queue_key(&format!("{token}:default")), 0, -1).await.expect("LRANGE");
    let ids: Vec<&str> = runs.iter().map(|r| r.job_id()).collect();
    assert_eq!(queued, [ids[0], ids[2], ids[1], ids[3]], "each run queued once");
    for i in 0..4 {
        let hist: Vec<String> = conn.lrange(format!("{token}:hist:m{i}"), 0, -1).await.expect("LRANGE");
        assert_eq!(hist, vec![format!("e-m{i}")], "one history entry per run");
    }
    delete_all(&mut conn, &token).await;
}

#[tokio::test]
async fn invalid_or_wrong_typed_run_in_a_batch_writes_nothing_for_it() {
    let token = token();
    let (w, mut conn) = setup(&format!("{token}rq")).await;
    // An invalid job never becomes a PreparedRun: the error names the field.
    let mut bad = job(&token, "bad");
    bad.timeout_secs = 0;
    let claim = Claim { key: format!("{token}:claim:bad"), ttl_secs: 30 };
    match PreparedRun::new(&bad, claim, Utc::now()) {
        Err(RqError::Invalid { field: "timeout", .. }) => {}
        other => panic!("expected an invalid timeout, got {other:?}"),
    }
    let zero = Claim { key: format!("{token}:claim:z"), ttl_secs: 0 };
    assert!(matches!(
        PreparedRun::new(&job(&token, "z"), zero, Utc::now()),
        Err(RqError::Invalid { field: "claim", .. })
    ));
    let empty = HistoryAppend { key: String::new(), entry: "e".into(), max: 5 };
    assert!(matches!(w.append_history(&[empty]).await, Err(RqError::Invalid { field: "history", .. })));

    // A run whose queue key holds a string: its answer is the WRONGTYPE text and none
    // of its keys are written; the runs around it are written.
    let mut runs: Vec<PreparedRun> = (0..3).map(|i| prepared(&token, &format!("w{i}"))).collect();
    let stringq = RqJob { queue: format!("{token}:stringq"), ..job(&token, "w1") };
    runs[1] = PreparedRun::new(&stringq, runs[1].claim().clone(), Utc::now()).expect("valid run");
    let _: () = conn.set(w.queue_key(&stringq.queue), "not a list").await.expect("SET");
    let out = w.enqueue_many(&runs).await.expect("batch");
    assert!(matches!(out[0], Ok(EnqueueOutcome::Enqueued)), "{out:?}");
    match &out[1] {
        Err(RqError::WrongType(text)) => assert!(text.contains("WRONGTYPE") && text.contains(":stringq"), "{text}"),
        other => panic!("expected WRONGTYPE, got {other:?}"),
    }
    assert!(matches!(out[2], Ok(EnqueueOutcome::Enqueued)), "{out:?}");
    let claim_exists: bool = conn.exists(&runs[1].claim().key).await.expect("EXISTS");
    let hash_exists: bool = conn.exists(w.job_key(runs[1].job_id())).await.expect("EXISTS");
    assert!(!claim_exists && !hash_exists, "nothing of the wrong-typed run is written");
    let queued: Vec<String> = conn.lrange(w.queue_key(&format!("{token}:default")), 0, -1).await.expect("LRANGE");
    assert_eq!(queued, [runs[0].job_id(), runs[2].job_id()]);
    delete_all(&mut conn, &token).await;
}

#[tokio::test]
async fn two_writers_racing_on_the_same_batch_enqueue_each_run_once() {
    let token = token();
    let prefix = format!("{token}rq");
    // Two connections, as two daemons would have.
    let (a, mut conn) = setup(&prefix).await;
    let (b, _) = setup(&prefix).await;
    let runs: Vec<PreparedRun> = (0..300).map(|i| prepared(&token, &format!("r{i}"))).collect();
    let names: Vec<String> = (0..300).map(|i| format!("r{i}")).collect();
    let mut tasks = Vec::new();
    for w in [a.clone(), b.clone(), a.clone(), b.clone()] {
        let (runs, names, token) = (runs.clone(), names.clone(), token.clone());
        // Four writers sending batches of 50 at once: their scripts interleave in Redis;
        // each appends the history of the runs it won, as the daemon does.
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for (chunk, names) in runs.chunks(50).zip(names.chunks(50)) {
                let got = enqueued(w.enqueue_many(chunk).await.expect("batch"));
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                append_history_of_enqueued(&w, &token, &names, &got).await;
                out.extend(got);
            }
            out
        }));
    }
    let mut wins = vec![0; runs.len()];
    for t in tasks {
        for (i, o) in t.await.expect("task").into_iter().enumerate() {
            if o == EnqueueOutcome::Enqueued {
                wins[i] += 1;
            }
        }
    }
    assert!(wins.iter().all(|&w| w == 1), "each run enqueued by exactly one writer: {wins:?}");
    let n: i64 = conn.llen(a.queue_key(&format!("{token}:default"))).await.expect("LLEN");
    assert_eq!(n, 300);
    for i in [0, 149, 299] {
        let hist: i64 = conn.llen(format!("{token}:hist:r{i}")).await.expect("LLEN");
        assert_eq!(hist, 1, "one history entry per run, from the writer that won it");
    }
    delete_all(&mut conn, &token).await;
}

/// The log lines written while the returned guard lives (tokio::test runs on this thread).
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink(buf.clone());
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || sink.clone()).finish();
    (buf, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn failed_history_follow_up_is_logged_and_the_run_stays_enqueued_once() {
    let token = token();
    let (w, mut conn) = setup(&format!("{token}rq")).await;
    let (logs, _guard) = capture_logs();
    let hist = hist_of(&token, "f");
    let _: () = conn.set(&hist.key, "not a list").await.expect("SET");

    // enqueue_once: the run is written, the history append fails and is logged.
    let j = job(&token, "f");
    let claim = Claim { key: format!("{token}:claim:f"), ttl_secs: 30 };
    let now = Utc::now();
    assert_eq!(w.enqueue_once(&j, &claim, Some(&hist), now).await.expect("enqueue"), EnqueueOutcome::Enqueued);
    let text = String::from_utf8_lossy(&logs.lock().expect("log buffer")).into_owned();
    assert!(
        text.contains("WARN")
            && text.contains("history entry not written")
            && text.contains(&j.id)
            && text.contains(&hist.key),
        "{text}"
    );
    // Trying again (a restart, a second daemon) finds it claimed: queued exactly once.
    assert_eq!(w.enqueue_once(&j, &claim, Some(&hist), now).await.expect("enqueue"), EnqueueOutcome::AlreadyClaimed);
    let queued: Vec<String> = conn.lrange(w.queue_key(&j.queue), 0, -1).await.expect("LRANGE");
    assert_eq!(queued, vec![j.id.clone()]);
    let fields: i64 = conn.hlen(w.job_key(&j.id)).await.expect("HLEN");
    assert_eq!(fields, 9);

    // append_history in a batch: the wrong-typed entry answers WRONGTYPE naming its key,
    // the entries around it are written.
    let entries = [hist_of(&token, "g0"), hist.clone(), hist_of(&token, "g2")];
    let answers = w.append_history(&entries).await.expect("history");
    assert!(answers[0].is_ok() && answers[2].is_ok(), "{answers:?}");
    match &answers[1] {
        Err(RqError::WrongType(text)) => assert!(text.contains(&hist.key), "{text}"),
        other => panic!("expected WRONGTYPE, got {other:?}"),
    }
    for name in ["g0", "g2"] {
        let h: Vec<String> = conn.lrange(format!("{token}:hist:{name}"), 0, -1).await.expect("LRANGE");
        assert_eq!(h, vec![format!("e-{name}")]);
    }
    delete_all(&mut conn, &token).await;
}

/// The scripts' Lua stamp (from Redis' `TIME`) is the text `rq_timestamp` makes, for dates
/// across leap years, century rules, month ends and the ends of Python's year range.
#[tokio::test]
async fn lua_stamp_matches_rq_timestamp() {
    let (_, mut conn) = setup("rq").await;
    let script = redis::Script::new(&format!("{STAMP_LUA}\nreturn rq_stamp(tonumber(ARGV[1]), tonumber(ARGV[2]))"));
    let mut secs: Vec<i64> = vec![
        0,
        951_782_400,     // 2000-02-29 00:00:00
        951_868_799,     // 2000-02-29 23:59:59
        4_107_542_400,   // 2100-02-28 -> 03-01 (no leap day)
        -62_135_596_800, // 0001-01-01
        253_402_300_799, // 9999-12-31 23:59:59
        1_796_182_652,
    ];
    // A pseudo-random walk over 1970-2300 (deterministic: no rand dependency needed here).
    let mut x: i64 = 88_172_645_463_325_252;
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        secs.push(x.rem_euclid(10_413_792_000));
    }
    for s in secs {
        let usec = (s.rem_euclid(1_000_000)) as u32;
        let want = rq_timestamp(chrono::DateTime::from_timestamp(s, usec * 1000).expect("time")).expect("ts");
        let got: String = script.arg(s).arg(usec).invoke_async(&mut conn).await.expect("EVAL");
        assert_eq!(got, want, "secs {s}");
    }
}

#[tokio::test]
async fn connection_errors_hide_the_password() {
    // This Redis has no password: AUTH is refused, and the error must not echo it.
    let secret = "hunter2-do-not-log";
    match connect(&format!("redis://someone:{secret}@{}", redis_url().trim_start_matches("redis://"))).await {
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
