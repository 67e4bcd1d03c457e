//! Staging runs ahead and releasing them at the instant, against a real Redis (db 9, keys
//! under a random token, deleted at the end): a staged hash is invisible (no queue, status
//! queued but no `enqueued_at`, expiring); the release queues it once, whoever releases and
//! however often; two stagers agree; a run staged under the other id form is found by its
//! claim and queued under the releaser's id; a full enqueue over a staged run releases it
//! with the fields it sends; a release of a run nobody staged enqueues it in full, and one
//! call answers each run by its state without creating a hash; unstaging removes only
//! staged hashes.

use btu::pyvalue::PyValue;
use btu::rq::{
    Claim, EnqueueOutcome, Gates, OverlapGate, PreparedRun, RqJob, RqWriter, STAGE_SLACK_SECS,
    STAGED_HASH_MIN_TTL_SECS, StageOutcome, Unstage, connect,
};
use chrono::Utc;
use redis::AsyncCommands;

mod test_token;

/// Redis db 9 on 127.0.0.1, port `$BTU_TEST_REDIS_PORT` (default 6379).
fn redis_url() -> String {
    let port: u16 = std::env::var("BTU_TEST_REDIS_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(6379);
    format!("redis://127.0.0.1:{port}/9")
}

fn token() -> String {
    test_token::token("rqstage")
}

async fn setup(prefix: &str) -> (RqWriter, redis::aio::ConnectionManager) {
    let conn = connect(&redis_url()).await.unwrap_or_else(|e| {
        panic!("Redis must run on {} for this test (scripts/bootstrap.sh starts it): {e}", redis_url())
    });
    (RqWriter::new(conn.clone(), prefix), conn)
}

async fn delete_all(conn: &mut redis::aio::ConnectionManager, token: &str) {
    let k: Vec<String> = conn.keys(format!("*{token}*")).await.expect("KEYS");
    if !k.is_empty() {
        let _: () = conn.del(k).await.expect("DEL");
    }
}

fn run(token: &str, id: &str, claim: &str, arg: i64) -> PreparedRun {
    let mut j = RqJob::new(format!("{token}-{id}"), format!("{token}:default"), "mod.func");
    j.kwargs = vec![("a".into(), PyValue::Int(arg))];
    PreparedRun::new(&j, Claim { key: format!("{token}:claim:{claim}"), ttl_secs: 30 }, Utc::now()).expect("valid run")
}

fn ok(outcomes: Vec<Result<EnqueueOutcome, btu::rq::RqError>>) -> Vec<EnqueueOutcome> {
    outcomes.into_iter().map(|o| o.expect("run answered")).collect()
}

async fn queued(conn: &mut redis::aio::ConnectionManager, w: &RqWriter, token: &str) -> Vec<String> {
    conn.lrange(w.queue_key(&format!("{token}:default")), 0, -1).await.expect("LRANGE")
}

async fn field(conn: &mut redis::aio::ConnectionManager, key: &str, name: &str) -> Option<String> {
    conn.hget(key, name).await.expect("HGET")
}

#[tokio::test]
async fn staged_runs_are_invisible_until_released_once() {
    let token = token();
    let (w, mut conn) = setup(&format!("{token}rq")).await;
    let runs: Vec<PreparedRun> = (0..3).map(|i| run(&token, &format!("s{i}"), &format!("s{i}"), i)).collect();
    assert_eq!(w.stage_many(&runs).await.expect("stage"), vec![StageOutcome::Staged; 3]);
    // Staging again (a retry, a second daemon) finds them there and writes nothing.
    assert_eq!(w.stage_many(&runs).await.expect("stage"), vec![StageOutcome::AlreadyThere; 3]);
    for r in &runs {
        let key = w.job_key(r.job_id());
        // Every field as queued but `enqueued_at`, whose absence marks the hash staged.
        assert_eq!(field(&mut conn, &key, "status").await.as_deref(), Some("queued"));
        assert_eq!(field(&mut conn, &key, "enqueued_at").await, None);
        let fields: i64 = conn.hlen(&key).await.expect("HLEN");
        assert_eq!(fields, 8, "every field but enqueued_at");
        let ttl: i64 = conn.ttl(&key).await.expect("TTL");
        let least = STAGED_HASH_MIN_TTL_SECS as i64;
        assert!(ttl > least - 10 && ttl <= least, "a staged hash expires after the least ttl: {ttl}");
        let ttl: i64 = conn.ttl(&r.claim().key).await.expect("TTL");
        assert!(ttl > 30 && ttl <= 30 + STAGE_SLACK_SECS as i64, "the claim expires after its own ttl: {ttl}");
        let claim: String = conn.get(&r.claim().key).await.expect("GET");
        assert_eq!(claim, r.job_id());
    }
    assert!(queued(&mut conn, &w, &token).await.is_empty(), "no staged id is in a queue");
    let queues: Vec<String> = conn.smembers(w.queues_key()).await.expect("SMEMBERS");
    assert!(queues.is_empty(), "rq:queues untouched by staging");

    assert_eq!(ok(w.release_many(&runs).await.expect("release")), vec![EnqueueOutcome::Enqueued; 3]);
    let ids: Vec<String> = runs.iter().map(|r| r.job_id().to_string()).collect();
    assert_eq!(queued(&mut conn, &w, &token).await, ids, "FIFO in batch order");
    for r in &runs {
        let key = w.job_key(r.job_id());
        assert_eq!(field(&mut conn, &key, "status").await.as_deref(), Some("queued"));
        let stamp = field(&mut conn, &key, "enqueued_at").await.expect("enqueued_at");
        assert_eq!(stamp.len(), 27, "rq's form: {stamp}");
        let ttl: i64 = conn.ttl(&key).await.expect("TTL");
        assert_eq!(ttl, -1, "a released job no longer expires");
    }
    // Released again (another daemon, a retry): nothing more is pushed; nor by a full enqueue.
    assert_eq!(ok(w.release_many(&runs).await.expect("release")), vec![EnqueueOutcome::AlreadyClaimed; 3]);
    assert_eq!(ok(w.enqueue_many(&runs).await.expect("enqueue")), vec![EnqueueOutcome::AlreadyClaimed; 3]);
    // A worker ran one and rq deleted its hash: the claim still stops a second release.
    let _: () = conn.del(w.job_key(runs[0].job_id())).await.expect("DEL");
    assert_eq!(ok(w.release_many(&runs[..1]).await.expect("release")), vec![EnqueueOutcome::AlreadyClaimed]);
    assert_eq!(queued(&mut conn, &w, &token).await.len(), 3);
    delete_all(&mut conn, &token).await;
}

/// One release call whose runs are in every state the fast path meets: staged, released
/// before, never staged (or expired: looked at one by one, enqueued in full), a job key of
/// another type. Each gets its own answer and nothing is written for another run.
#[tokio::test]
async fn a_release_call_answers_each_run_by_its_state_and_never_creates_a_hash() {
    let token = token();
    let (w, mut conn) = setup(&format!("{token}rq")).await;
    let runs: Vec<PreparedRun> = (0..5).map(|i| run(&token, &format!("m{i}"), &format!("m{i}"), i)).collect();
    w.stage_many(&runs[..3]).await.expect("stage");
    assert_eq!(ok(w.release_many(&runs[1..2]).await.expect("release")), vec![EnqueueOutcome::Enqueued]);
    let _: () = conn.set(w.job_key(runs[4].job_id()), "not a hash").await.expect("SET");
    let answers = w.release_many(&runs).await.expect("release");
    assert_eq!(answers[0].as_ref().ok(), Some(&EnqueueOutcome::Enqueued), "staged");
    assert_eq!(answers[1].as_ref().ok(), Some(&EnqueueOutcome::AlreadyClaimed), "released before");
    assert_eq!(answers[2].as_ref().ok(), Some(&EnqueueOutcome::Enqueued), "staged");
    assert_eq!(answers[3].as_ref().ok(), Some(&EnqueueOutcome::Enqueued), "never staged: in full");
    assert!(matches!(&answers[4], Err(btu::rq::RqError::WrongType(t)) if t.contains("WRONGTYPE")), "{:?}", answers[4]);
    let ids: Vec<String> = [1, 0, 2, 3].iter().map(|&i| runs[i].job_id().to_string()).collect();
    assert_eq!(queued(&mut conn, &w, &token).await, ids);
    for r in &runs[..4] {
        let key = w.job_key(r.job_id());
        let fields: i64 = conn.hlen(&key).await.expect("HLEN");
        assert_eq!(fields, 9, "every field and enqueued_at: {key}");
    }
    let kind: String = redis::cmd("TYPE").arg(w.job_key(runs[4].job_id())).query_async(&mut conn).await.expect("TYPE");
    assert_eq!(kind, "string", "the key of another type is left as it was");
    // A staged hash that expired or was removed by a cancel is not re-created by a release
    // whose other runs are all there.
    let more: Vec<PreparedRun> = (5..8).map(|i| run(&token, &format!("m{i}"), &format!("m{i}"), i)).collect();
    w.stage_many(&more).await.expect("stage");
    let removed = w.unstage_many(&[btu::rq::Unstage::of(&more[1])]).await.expect("unstage");
    assert_eq!(removed, 1);
    let _: () = conn.del(&more[1].claim().key).await.expect("DEL");
    let _: () = conn.set(&more[1].claim().key, "decided elsewhere").await.expect("SET");
    let answers = ok(w.release_many(&more).await.expect("release"));
    assert_eq!(answers, vec![EnqueueOutcome::Enqueued, EnqueueOutcome::AlreadyClaimed, EnqueueOutcome::Enqueued]);
    let exists: bool = conn.exists(w.job_key(more[1].job_id())).await.expect("EXISTS");
    assert!(!exists, "no hash created for a run that was not staged");
    // Staged by a daemon from before (status `scheduled`): staging it again makes it queued,
    // so the release leaves no job with status scheduled.
    let old = run(&token, "oldform", "oldform", 9);
    let key = w.job_key(old.job_id());
    let _: () = conn.hset_multiple(&key, &[("status", "scheduled"), ("origin", "x")]).await.expect("HSET");
    assert_eq!(w.stage_many(std::slice::from_ref(&old)).await.expect("stage"), vec![StageOutcome::AlreadyThere]);
    assert_eq!(field(&mut conn, &key, "status").await.as_deref(), Some("queued"));
    delete_all(&mut conn, &token).await;
}

#[tokio::test]
async fn two_daemons_staging_and_releasing_push_each_run_once() {
    let token = token();
    let prefix = format!("{token}rq");
    let (a, mut conn) = setup(&prefix).await;
    let (b, _) = setup(&prefix).await;
    let runs: Vec<PreparedRun> = (0..400).map(|i| run(&token, &format!("r{i}"), &format!("r{i}"), i)).collect();
    let (sa, sb) = tokio::join!(a.stage_many(&runs[..250]), b.stage_many(&runs[150..]));
    let staged = sa.expect("stage a").into_iter().chain(sb.expect("stage b")).filter(|o| *o == StageOutcome::Staged);
    assert_eq!(staged.count(), 400, "each run staged by exactly one");
    // Both release every run, in batches that interleave in Redis.
    let mut tasks = Vec::new();
    for w in [a.clone(), b.clone(), a.clone(), b.clone()] {
        let runs = runs.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for chunk in runs.chunks(64) {
                out.extend(ok(w.release_many(chunk).await.expect("release")));
            }
            out
        }));
    }
    let mut wins = vec![0; runs.len()];
    for t in tasks {
        for (i, o) in t.await.expect("task").into_iter().enumerate() {
            wins[i] += usize::from(o == EnqueueOutcome::Enqueued);
        }
    }
    assert!(wins.iter().all(|&n| n == 1), "each run released by exactly one: {wins:?}");
    assert_eq!(queued(&mut conn, &a, &token).await.len(), 400);
    delete_all(&mut conn, &token).await;
}

#[tokio::test]
async fn a_run_staged_under_its_other_id_form_is_queued_under_the_releasers_id() {
    let token = token();
    let (w, mut conn) = setup(&format!("{token}rq")).await;
    // The same run (same claim) with two ids: one daemon staged the portable form, the other
    // (which sees other workers) releases the Frappe-like one.
    let staged = run(&token, "portable", "one", 1);
    let other = run(&token, "frappe", "one", 1);
    assert_eq!(w.stage_many(std::slice::from_ref(&staged)).await.expect("stage"), vec![StageOutcome::Staged]);
    assert_eq!(w.stage_many(std::slice::from_ref(&other)).await.expect("stage"), vec![StageOutcome::AlreadyThere]);
    let other_exists: bool = conn.exists(w.job_key(other.job_id())).await.expect("EXISTS");
    assert!(!other_exists, "the claim stopped the second form");
    assert_eq!(
        ok(w.release_many(std::slice::from_ref(&other)).await.expect("release")),
        vec![EnqueueOutcome::Enqueued]
    );
    // Queued under the releaser's id, with its payload (which carries that id in Frappe
    // mode); the hash staged under the other form is gone, and the claim names the new id.
    assert_eq!(queued(&mut conn, &w, &token).await, vec![other.job_id().to_string()]);
    let staged_exists: bool = conn.exists(w.job_key(staged.job_id())).await.expect("EXISTS");
    assert!(!staged_exists, "the other form's staged hash was removed");
    let claim: Option<String> = conn.get(format!("{token}:claim:one")).await.expect("GET");
    assert_eq!(claim.as_deref(), Some(other.job_id()));
    for r in [&staged, &other] {
        assert_eq!(
            ok(w.release_many(std::slice::from_ref(r)).await.expect("release")),
            vec![EnqueueOutcome::AlreadyClaimed]
        );
        assert_eq!(
            ok(w.enqueue_many(std::slice::from_ref(r)).await.expect("enqueue")),
            vec![EnqueueOutcome::AlreadyClaimed]
        );
    }
    assert_eq!(queued(&mut conn, &w, &token).await.len(), 1);
    delete_all(&mut conn, &token).await;
}

#[tokio::test]
async fn full_enqueue_releases_a_staged_run_with_its_own_fields_and_unstaged_runs_fall_back() {
    let token = token();
    let (w, mut conn) = setup(&format!("{token}rq")).await;
    // Staged by a daemon that died; a restarted daemon catches the run up in full, with the
    // schedule as it is now (edited: another argument) — the staged hash is released with it.
    let old = run(&token, "edited", "edited", 1);
    let new = run(&token, "edited", "edited", 2);
    w.stage_many(std::slice::from_ref(&old)).await.expect("stage");
    assert_eq!(ok(w.enqueue_many(std::slice::from_ref(&new)).await.expect("enqueue")), vec![EnqueueOutcome::Enqueued]);
    let data: Vec<u8> = conn.hget(w.job_key(new.job_id()), "data").await.expect("HGET");
    let call = btu::rq::decode_job_data(&data).expect("decode");
    assert_eq!(format!("{:?}", call.kwargs), format!("{:?}", vec![("a".to_string(), PyValue::Int(2))]));
    assert_eq!(field(&mut conn, &w.job_key(new.job_id()), "status").await.as_deref(), Some("queued"));
    // Released without ever being staged (staging failed, or the staged run expired): the
    // release enqueues it in full.
    let fresh = run(&token, "fresh", "fresh", 3);
    assert_eq!(
        ok(w.release_many(std::slice::from_ref(&fresh)).await.expect("release")),
        vec![EnqueueOutcome::Enqueued]
    );
    let fields: i64 = conn.hlen(w.job_key(fresh.job_id())).await.expect("HLEN");
    assert_eq!(fields, 9);
    assert_eq!(queued(&mut conn, &w, &token).await, vec![new.job_id().to_string(), fresh.job_id().to_string()]);
    delete_all(&mut conn, &token).await;
}

#[tokio::test]
async fn unstaging_removes_only_staged_runs() {
    let token = token();
    let (w, mut conn) = setup(&format!("{token}rq")).await;
    let runs: Vec<PreparedRun> = (0..2).map(|i| run(&token, &format!("u{i}"), &format!("u{i}"), i)).collect();
    w.stage_many(&runs).await.expect("stage");
    // Run 1 is released; run 0's schedule was cancelled before its instant.
    ok(w.release_many(&runs[1..]).await.expect("release"));
    let unstage: Vec<Unstage> =
        runs.iter().map(|r| Unstage { claim_key: r.claim().key.clone(), job_id: r.job_id().to_string() }).collect();
    assert_eq!(w.unstage_many(&unstage).await.expect("unstage"), 1);
    let gone: bool = conn.exists(w.job_key(runs[0].job_id())).await.expect("EXISTS");
    let claim_gone: bool = conn.exists(&runs[0].claim().key).await.expect("EXISTS");
    assert!(!gone && !claim_gone, "the cancelled run's staged hash and claim are removed");
    assert_eq!(field(&mut conn, &w.job_key(runs[1].job_id()), "status").await.as_deref(), Some("queued"));
    let claim: String = conn.get(&runs[1].claim().key).await.expect("GET");
    assert_eq!(claim, runs[1].job_id(), "a released run keeps its claim");
    assert_eq!(queued(&mut conn, &w, &token).await, vec![runs[1].job_id().to_string()]);
    delete_all(&mut conn, &token).await;
}

#[tokio::test]
async fn gates_are_checked_at_the_release_once() {
    let token = token();
    let (w, mut conn) = setup(&format!("{token}rq")).await;
    let pause = format!("{token}:pause");
    let skip = format!("{token}:skip");
    let gated = |name: &str, due: i64| {
        run(&token, name, name, due).with_gates(Gates {
            pause_key: Some(pause.clone()),
            skip: Some((skip.clone(), due)),
            lastjob_key: Some(format!("{token}:last")),
            overlap: OverlapGate::Allow,
            index: None,
        })
    };
    let runs = [gated("p", 100), gated("s", 200), gated("e", 300)];
    w.stage_many(&runs).await.expect("stage");
    // Paused after staging, before the instant: the release sees it. Run "s" was asked to be
    // skipped; run "e" is enqueued, as the release of a batch decides each run on its own.
    let _: () = conn.set(&pause, "{}").await.expect("SET");
    let _: () = conn.zadd(&skip, 200, 200).await.expect("ZADD");
    let out = ok(w.release_many(&runs[..1]).await.expect("release"));
    assert_eq!(out, vec![EnqueueOutcome::SkippedPaused]);
    let _: () = conn.del(&pause).await.expect("DEL");
    let out = ok(w.release_many(&runs).await.expect("release"));
    assert_eq!(out, vec![EnqueueOutcome::AlreadyClaimed, EnqueueOutcome::SkippedByRequest, EnqueueOutcome::Enqueued]);
    for r in &runs[..2] {
        let staged: bool = conn.exists(w.job_key(r.job_id())).await.expect("EXISTS");
        let claim: bool = conn.exists(&r.claim().key).await.expect("EXISTS");
        assert!(!staged && claim, "a skipped run's staged hash is gone, its claim stays (decided)");
    }
    assert_eq!(queued(&mut conn, &w, &token).await, vec![runs[2].job_id().to_string()]);
    let last: String = conn.get(format!("{token}:last")).await.expect("GET");
    assert_eq!(last, runs[2].job_id());
    // Decided once: releasing or enqueueing again changes nothing.
    assert_eq!(ok(w.release_many(&runs).await.expect("release")), vec![EnqueueOutcome::AlreadyClaimed; 3]);
    assert_eq!(ok(w.enqueue_many(&runs).await.expect("enqueue")), vec![EnqueueOutcome::AlreadyClaimed; 3]);
    delete_all(&mut conn, &token).await;
}
