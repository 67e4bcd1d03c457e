//! The gates of the enqueue script against a real Redis (db 9, keys under a random token,
//! deleted at the end): pause, skip-by-request and the overlap policy (skip, replace) are
//! decided atomically with the claim — once, also with two writers —; keys of another type
//! answer WRONGTYPE and write nothing; a job replaced while queued is canceled the way stock
//! rq 1.15, 2.6 and 3.0 read it (`Job.get_status()`, `CanceledJobRegistry`); `claim_many` (the
//! claim of a span of missed runs) takes each claim once.

use btu::pyvalue::PyValue;
use btu::rq::{Claim, EnqueueOutcome, GateIndex, Gates, OverlapGate, PreparedRun, RqError, RqJob, RqWriter, connect};
use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use std::path::PathBuf;
use std::sync::Arc;

mod test_token;

fn redis_url() -> String {
    let port: u16 = std::env::var("BTU_TEST_REDIS_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(6379);
    format!("redis://127.0.0.1:{port}/9")
}

fn token() -> String {
    test_token::token("gatetest")
}

async fn setup(prefix: &str) -> (RqWriter, ConnectionManager) {
    let conn = connect(&redis_url()).await.unwrap_or_else(|e| {
        panic!("Redis must run on 127.0.0.1:$BTU_TEST_REDIS_PORT (default 6379) for this test: {e}")
    });
    (RqWriter::new(conn.clone(), prefix), conn)
}

async fn cleanup(conn: &mut ConnectionManager, token: &str) {
    let k: Vec<String> = conn.keys(format!("*{token}*")).await.expect("KEYS");
    if !k.is_empty() {
        let _: () = conn.del(k).await.expect("DEL");
    }
    let _: () = conn.srem("rq:queues", format!("rq:queue:{token}:default")).await.expect("SREM");
}

/// One schedule's keys (`sched`) under `token`, the layout the daemon uses.
struct Sched {
    token: String,
    name: &'static str,
}

impl Sched {
    fn pause(&self) -> String {
        format!("{}:pause:{}", self.token, self.name)
    }
    fn skip(&self) -> String {
        format!("{}:skip:{}", self.token, self.name)
    }
    fn lastjob(&self) -> String {
        format!("{}:lastjob:{}", self.token, self.name)
    }
    fn job_id(&self, due: DateTime<Utc>) -> String {
        format!("{}-{}-{}", self.token, self.name, due.timestamp())
    }
    /// The run due at `due` with every gate and the given overlap policy.
    fn run(&self, due: DateTime<Utc>, overlap: OverlapGate) -> PreparedRun {
        let mut j = RqJob::new(self.job_id(due), format!("{}:default", self.token), "mod.func");
        j.kwargs = vec![("a".into(), PyValue::Int(1))];
        let claim = Claim { key: format!("{}:claim:{}", self.token, self.job_id(due)), ttl_secs: 60 };
        let gates = Gates {
            pause_key: Some(self.pause()),
            skip: Some((self.skip(), due.timestamp())),
            lastjob_key: Some(self.lastjob()),
            overlap,
            index: None,
        };
        PreparedRun::new(&j, claim, Utc::now()).expect("valid run").with_gates(gates)
    }
}

impl Sched {
    /// [`Sched::run`] with the site's gate index, as the daemon's runs carry it.
    fn indexed_run(&self, due: DateTime<Utc>, overlap: OverlapGate, index: &Arc<GateIndex>) -> PreparedRun {
        let r = self.run(due, overlap);
        let mut gates = r.gates().clone();
        gates.index = Some(index.clone());
        r.with_gates(gates)
    }
}

/// The gate index of the sites under `token`, in the daemon's key layout.
fn gate_index(token: &str) -> Arc<GateIndex> {
    Arc::new(GateIndex {
        pauses: format!("{token}:pauses"),
        pause_prefix: format!("{token}:pause:"),
        skips: format!("{token}:skips"),
        skip_prefix: format!("{token}:skip:"),
        lastjob_prefix: format!("{token}:lastjob:"),
    })
}

fn due(minute: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_900_000_000 + minute * 60, 0).expect("instant")
}

async fn one(w: &RqWriter, run: PreparedRun) -> Result<EnqueueOutcome, RqError> {
    let mut out = w.enqueue_many(&[run]).await.expect("script call");
    out.pop().expect("one answer")
}

async fn queue(conn: &mut ConnectionManager, prefix: &str, token: &str) -> Vec<String> {
    conn.lrange(format!("{prefix}:queue:{token}:default"), 0, -1).await.expect("LRANGE")
}

async fn status(conn: &mut ConnectionManager, prefix: &str, id: &str) -> Option<String> {
    conn.hget(format!("{prefix}:job:{id}"), "status").await.expect("HGET")
}

#[tokio::test]
async fn paused_run_is_claimed_and_not_enqueued_once_for_two_writers() {
    let token = token();
    let prefix = format!("{token}rq");
    let (w, mut conn) = setup(&prefix).await;
    let (w2, _) = setup(&prefix).await;
    let s = Sched { token: token.clone(), name: "p" };
    let _: () = conn.set(s.pause(), r#"{"until":null,"note":"holidays"}"#).await.expect("SET");

    // Two writers race on the same run: one decides it (skipped_paused), the other finds the
    // claim; nothing is enqueued and the last job stays unset.
    let (a, b) = tokio::join!(one(&w, s.run(due(0), OverlapGate::Allow)), one(&w2, s.run(due(0), OverlapGate::Allow)));
    let mut got = vec![a.expect("answer"), b.expect("answer")];
    got.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(got, vec![EnqueueOutcome::AlreadyClaimed, EnqueueOutcome::SkippedPaused]);
    assert!(queue(&mut conn, &prefix, &token).await.is_empty());
    assert_eq!(status(&mut conn, &prefix, &s.job_id(due(0))).await, None);
    assert!(!conn.exists::<_, bool>(s.lastjob()).await.expect("EXISTS"));

    // Resumed: the paused instant stays decided (no replay); the next one is enqueued.
    let _: () = conn.del(s.pause()).await.expect("DEL");
    assert_eq!(one(&w, s.run(due(0), OverlapGate::Allow)).await.expect("answer"), EnqueueOutcome::AlreadyClaimed);
    assert_eq!(one(&w, s.run(due(1), OverlapGate::Allow)).await.expect("answer"), EnqueueOutcome::Enqueued);
    assert_eq!(queue(&mut conn, &prefix, &token).await, vec![s.job_id(due(1))]);
    let last: String = conn.get(s.lastjob()).await.expect("GET");
    assert_eq!(last, s.job_id(due(1)));
    cleanup(&mut conn, &token).await;
}

#[tokio::test]
async fn skipped_instant_is_removed_from_the_set_and_not_enqueued() {
    let token = token();
    let prefix = format!("{token}rq");
    let (w, mut conn) = setup(&prefix).await;
    let s = Sched { token: token.clone(), name: "s" };
    let members = [(due(0).timestamp(), due(0).timestamp()), (due(2).timestamp(), due(2).timestamp())];
    let _: () = conn.zadd_multiple(s.skip(), &members).await.expect("ZADD");

    assert_eq!(one(&w, s.run(due(0), OverlapGate::Allow)).await.expect("answer"), EnqueueOutcome::SkippedByRequest);
    assert_eq!(one(&w, s.run(due(1), OverlapGate::Allow)).await.expect("answer"), EnqueueOutcome::Enqueued);
    let left: Vec<String> = conn.zrange(s.skip(), 0, -1).await.expect("ZRANGE");
    assert_eq!(left, vec![due(2).timestamp().to_string()], "only the honoured member is removed");
    // Decided once: a retry of the skipped instant finds its claim.
    assert_eq!(one(&w, s.run(due(0), OverlapGate::Allow)).await.expect("answer"), EnqueueOutcome::AlreadyClaimed);
    assert_eq!(queue(&mut conn, &prefix, &token).await, vec![s.job_id(due(1))]);
    // Paused and skipped: the pause decides, the member stays for the writers to trim.
    let _: () = conn.set(s.pause(), "{}").await.expect("SET");
    assert_eq!(one(&w, s.run(due(2), OverlapGate::Allow)).await.expect("answer"), EnqueueOutcome::SkippedPaused);
    let left: Vec<String> = conn.zrange(s.skip(), 0, -1).await.expect("ZRANGE");
    assert_eq!(left.len(), 1);
    cleanup(&mut conn, &token).await;
}

#[tokio::test]
async fn overlap_skip_waits_for_the_previous_job_to_finish() {
    let token = token();
    let prefix = format!("{token}rq");
    let (w, mut conn) = setup(&prefix).await;
    let s = Sched { token: token.clone(), name: "o" };
    assert_eq!(one(&w, s.run(due(0), OverlapGate::Skip)).await.expect("answer"), EnqueueOutcome::Enqueued);
    let first = s.job_id(due(0));
    let job0 = format!("{prefix}:job:{first}");
    // queued, then each busy status a worker or rq's scheduler may set: skipped.
    for (minute, st) in [(1, "queued"), (2, "started"), (3, "deferred"), (4, "scheduled")] {
        let _: () = conn.hset(&job0, "status", st).await.expect("HSET");
        assert_eq!(
            one(&w, s.run(due(minute), OverlapGate::Skip)).await.expect("answer"),
            EnqueueOutcome::SkippedOverlap { running: first.clone() },
            "{st}"
        );
    }
    // Finished (or failed, canceled, or its hash expired): the next run goes.
    let _: () = conn.hset(&job0, "status", "finished").await.expect("HSET");
    assert_eq!(one(&w, s.run(due(5), OverlapGate::Skip)).await.expect("answer"), EnqueueOutcome::Enqueued);
    let _: () = conn.del(format!("{prefix}:job:{}", s.job_id(due(5)))).await.expect("DEL");
    assert_eq!(one(&w, s.run(due(6), OverlapGate::Skip)).await.expect("answer"), EnqueueOutcome::Enqueued);
    // Allow enqueues whatever the previous job does.
    assert_eq!(one(&w, s.run(due(7), OverlapGate::Allow)).await.expect("answer"), EnqueueOutcome::Enqueued);
    assert_eq!(
        queue(&mut conn, &prefix, &token).await,
        vec![first, s.job_id(due(5)), s.job_id(due(6)), s.job_id(due(7))]
    );
    let last: String = conn.get(s.lastjob()).await.expect("GET");
    assert_eq!(last, s.job_id(due(7)));
    cleanup(&mut conn, &token).await;
}

#[tokio::test]
async fn overlap_replace_cancels_a_queued_job_and_leaves_a_taken_one() {
    let token = token();
    let prefix = format!("{token}rq");
    let (w, mut conn) = setup(&prefix).await;
    let s = Sched { token: token.clone(), name: "r" };
    let canceled_key = format!("{prefix}:canceled:{token}:default");
    assert_eq!(one(&w, s.run(due(0), OverlapGate::Replace)).await.expect("answer"), EnqueueOutcome::Enqueued);
    let (a, b, c) = (s.job_id(due(0)), s.job_id(due(1)), s.job_id(due(2)));

    // Still queued: removed from the queue, canceled, in the canceled registry.
    let before = Utc::now().timestamp();
    let out = one(&w, s.run(due(1), OverlapGate::Replace)).await.expect("answer");
    assert_eq!(out, EnqueueOutcome::Replaced { canceled: a.clone() });
    assert_eq!(queue(&mut conn, &prefix, &token).await, vec![b.clone()]);
    assert_eq!(status(&mut conn, &prefix, &a).await.as_deref(), Some("canceled"));
    let score: Option<f64> = conn.zscore(&canceled_key, &a).await.expect("ZSCORE");
    let score = score.expect("in the canceled registry") as i64;
    assert!((before..=Utc::now().timestamp() + 1).contains(&score), "{score}");

    // Started (a worker runs it): left to finish, the new run is enqueued beside it.
    let _: () = conn.lpop(format!("{prefix}:queue:{token}:default"), None).await.expect("LPOP");
    let _: () = conn.hset(format!("{prefix}:job:{b}"), "status", "started").await.expect("HSET");
    assert_eq!(one(&w, s.run(due(2), OverlapGate::Replace)).await.expect("answer"), EnqueueOutcome::Enqueued);
    assert_eq!(status(&mut conn, &prefix, &b).await.as_deref(), Some("started"));

    // Still `queued` but no longer in the queue (a worker took it, rq >= 1.15's intermediate
    // queue): left alone too.
    let _: () = conn.lpop(format!("{prefix}:queue:{token}:default"), None).await.expect("LPOP");
    assert_eq!(one(&w, s.run(due(3), OverlapGate::Replace)).await.expect("answer"), EnqueueOutcome::Enqueued);
    assert_eq!(status(&mut conn, &prefix, &c).await.as_deref(), Some("queued"));
    let canceled: Vec<String> = conn.zrange(&canceled_key, 0, -1).await.expect("ZRANGE");
    assert_eq!(canceled, vec![a]);
    cleanup(&mut conn, &token).await;
}

#[tokio::test]
async fn replace_within_one_batch_cancels_the_run_before_it_is_pushed() {
    let token = token();
    let prefix = format!("{token}rq");
    let (w, mut conn) = setup(&prefix).await;
    let s = Sched { token: token.clone(), name: "b" };
    let runs = [s.run(due(0), OverlapGate::Replace), s.run(due(1), OverlapGate::Replace)];
    let out: Vec<EnqueueOutcome> =
        w.enqueue_many(&runs).await.expect("batch").into_iter().map(|o| o.expect("answer")).collect();
    assert_eq!(out, vec![EnqueueOutcome::Enqueued, EnqueueOutcome::Replaced { canceled: s.job_id(due(0)) }]);
    assert_eq!(queue(&mut conn, &prefix, &token).await, vec![s.job_id(due(1))]);
    assert_eq!(status(&mut conn, &prefix, &s.job_id(due(0))).await.as_deref(), Some("canceled"));
    cleanup(&mut conn, &token).await;
}

#[tokio::test]
async fn gate_keys_of_another_type_answer_wrongtype_and_write_nothing() {
    let token = token();
    let prefix = format!("{token}rq");
    let (w, mut conn) = setup(&prefix).await;
    let s = Sched { token: token.clone(), name: "t" };
    let claim_of = |d| format!("{token}:claim:{}", s.job_id(d));

    // Skip set of another type.
    let _: () = conn.set(s.skip(), "not a zset").await.expect("SET");
    let out = one(&w, s.run(due(0), OverlapGate::Allow)).await;
    assert!(matches!(&out, Err(RqError::WrongType(t)) if t.contains(&s.skip())), "{out:?}");
    assert!(!conn.exists::<_, bool>(claim_of(due(0))).await.expect("EXISTS"), "not even claimed");
    let _: () = conn.del(s.skip()).await.expect("DEL");

    // A last-job key of another type: read by skip/replace (refused), overwritten by allow.
    let _: () = conn.hset(s.lastjob(), "f", "v").await.expect("HSET");
    let out = one(&w, s.run(due(1), OverlapGate::Skip)).await;
    assert!(matches!(&out, Err(RqError::WrongType(t)) if t.contains(&s.lastjob())), "{out:?}");
    assert!(!conn.exists::<_, bool>(claim_of(due(1))).await.expect("EXISTS"));
    assert_eq!(one(&w, s.run(due(2), OverlapGate::Allow)).await.expect("answer"), EnqueueOutcome::Enqueued);
    let last: String = conn.get(s.lastjob()).await.expect("GET");
    assert_eq!(last, s.job_id(due(2)));

    // The previous job's canceled registry of another type: replace refuses before writing.
    let _: () = conn.set(format!("{prefix}:canceled:{token}:default"), "x").await.expect("SET");
    let out = one(&w, s.run(due(3), OverlapGate::Replace)).await;
    assert!(matches!(&out, Err(RqError::WrongType(t)) if t.contains(":canceled:")), "{out:?}");
    assert!(!conn.exists::<_, bool>(claim_of(due(3))).await.expect("EXISTS"));
    assert_eq!(status(&mut conn, &prefix, &s.job_id(due(2))).await.as_deref(), Some("queued"));
    assert_eq!(queue(&mut conn, &prefix, &token).await, vec![s.job_id(due(2))]);
    cleanup(&mut conn, &token).await;
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A job replaced while queued reads as canceled to stock rq of every release: its status,
/// the queue's canceled registry, and not in the queue.
#[tokio::test]
async fn replaced_job_reads_as_canceled_in_stock_rq() {
    let token = token();
    let (w, mut conn) = setup("rq").await;
    let s = Sched { token: token.clone(), name: "rq" };
    assert_eq!(one(&w, s.run(due(0), OverlapGate::Replace)).await.expect("answer"), EnqueueOutcome::Enqueued);
    let out = one(&w, s.run(due(1), OverlapGate::Replace)).await.expect("answer");
    assert_eq!(out, EnqueueOutcome::Replaced { canceled: s.job_id(due(0)) });
    let port: u16 = std::env::var("BTU_TEST_REDIS_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(6379);
    let probe = r#"
import sys
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import CanceledJobRegistry
port, queue, old, new = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
conn = Redis(port=int(port), db=9)
q = Queue(queue, connection=conn)
print(Job.fetch(old, connection=conn).get_status(), Job.fetch(new, connection=conn).get_status(),
      CanceledJobRegistry(queue, connection=conn).get_job_ids(), q.get_job_ids())
"#;
    for release in ["rq-1.15.1", "rq-2.6.1", "rq-3.0.x"] {
        let python = repo().join("tests/.venvs").join(release).join("bin/python");
        assert!(python.exists(), "{} is missing: run tests/setup-rq-venvs.sh", python.display());
        let out = std::process::Command::new(&python)
            .args(["-c", probe, &port.to_string(), &format!("{token}:default"), &s.job_id(due(0)), &s.job_id(due(1))])
            .output()
            .expect("python");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{release}: {}", String::from_utf8_lossy(&out.stderr));
        let want = format!("canceled queued ['{}'] ['{}']", s.job_id(due(0)), s.job_id(due(1)));
        assert_eq!(text.trim().replace("JobStatus.", "").to_lowercase(), want.to_lowercase(), "{release}");
    }
    cleanup(&mut conn, &token).await;
}

/// The claims of decisions that write no job (a span of missed runs): taken once, in order.
#[tokio::test]
async fn claim_many_takes_each_free_claim_once() {
    let token = token();
    let (w, mut conn) = setup(&format!("{token}rq")).await;
    let c = |n: &str| (Claim { key: format!("{token}:claim:{n}"), ttl_secs: 60 }, "skipped_missed".to_string());
    let (w2, _) = setup(&format!("{token}rq")).await;
    let both = [c("a"), c("b")];
    let (x, y) = tokio::join!(w.claim_many(&both), w2.claim_many(&both));
    let (x, y) = (x.expect("claims"), y.expect("claims"));
    assert_eq!(x.iter().zip(&y).map(|(a, b)| u8::from(*a) + u8::from(*b)).collect::<Vec<_>>(), vec![1, 1]);
    assert_eq!(w.claim_many(&[c("b"), c("c")]).await.expect("claims"), vec![false, true]);
    let ttl: i64 = conn.ttl(format!("{token}:claim:c")).await.expect("TTL");
    assert!((1..=60).contains(&ttl), "{ttl}");
    assert!(w.claim_many(&[]).await.expect("none").is_empty());
    let zero = (Claim { key: format!("{token}:claim:z"), ttl_secs: 0 }, String::new());
    assert!(matches!(w.claim_many(&[zero]).await, Err(RqError::Invalid { field: "claim", .. })));
    cleanup(&mut conn, &token).await;
}

/// With the site's gate index (the daemon's runs always carry it), pause and skip keys are
/// looked at only for schedules in the index: an indexed pause and skip are honoured in the
/// enqueue and in the release; a pause key written without its index member is not (the
/// index is the contract, docs/rq.md "Gates"); an index of another type makes every key count.
#[tokio::test]
async fn indexed_gates_look_at_members_only() {
    let token = token();
    let prefix = format!("{token}rq");
    let (w, mut conn) = setup(&prefix).await;
    let index = gate_index(&token);
    let run = |name: &'static str, minute: i64| {
        let s = Sched { token: token.clone(), name };
        let r = s.indexed_run(due(minute), OverlapGate::Allow, &index);
        (s, r)
    };
    // Indexed pause and skip, as `btu pause` / `btu skip` write them.
    let (p, _) = run("p", 0);
    let _: () = conn.set(p.pause(), "{}").await.expect("SET");
    let _: () = conn.sadd(&index.pauses, "p").await.expect("SADD");
    let (s, _) = run("s", 0);
    let _: () = conn.zadd(s.skip(), due(0).timestamp(), due(0).timestamp()).await.expect("ZADD");
    let _: () = conn.sadd(&index.skips, "s").await.expect("SADD");
    // A pause key nobody indexed.
    let (u, _) = run("u", 0);
    let _: () = conn.set(u.pause(), "{}").await.expect("SET");

    let runs = vec![run("p", 0).1, run("s", 0).1, run("u", 0).1, run("e", 0).1];
    let out: Vec<EnqueueOutcome> =
        w.enqueue_many(&runs).await.expect("call").into_iter().map(|o| o.expect("run")).collect();
    assert_eq!(
        out,
        [
            EnqueueOutcome::SkippedPaused,
            EnqueueOutcome::SkippedByRequest,
            EnqueueOutcome::Enqueued,
            EnqueueOutcome::Enqueued
        ]
    );
    assert!(!conn.exists::<_, bool>(s.skip()).await.expect("EXISTS"), "the honoured skip member is removed");

    // The release reads the index the same way (runs staged, then a pause indexed before the
    // instant).
    let staged = vec![run("p", 1).1, run("q", 1).1, run("e", 1).1];
    w.stage_many(&staged).await.expect("stage");
    let (q, _) = run("q", 1);
    let _: () = conn.set(q.pause(), "{}").await.expect("SET");
    let _: () = conn.sadd(&index.pauses, "q").await.expect("SADD");
    let out: Vec<EnqueueOutcome> =
        w.release_many(&staged).await.expect("call").into_iter().map(|o| o.expect("run")).collect();
    assert_eq!(out, [EnqueueOutcome::SkippedPaused, EnqueueOutcome::SkippedPaused, EnqueueOutcome::Enqueued]);

    // An index of another type: every key is looked at, so the unindexed pause counts.
    let _: () = conn.del(&index.pauses).await.expect("DEL");
    let _: () = conn.set(&index.pauses, "not a set").await.expect("SET");
    assert_eq!(one(&w, run("u", 2).1).await.expect("answer"), EnqueueOutcome::SkippedPaused);
    assert_eq!(one(&w, run("e", 2).1).await.expect("answer"), EnqueueOutcome::Enqueued);
    cleanup(&mut conn, &token).await;
}

/// The release of the daemon's runs sends only their schedules (the escaped one for `allow`
/// runs, with the job id for the others; the script derives the gate keys from the site
/// index's prefixes): an `allow` run's last job is recorded right
/// after the release (its follow-up, which also drops the staged hash's expiry), and the next
/// runs' overlap gates read it — `skip` while it is queued, then `replace` cancels it and
/// records its own inside the release.
#[tokio::test]
async fn release_by_schedule_id_records_last_jobs_for_the_overlap_gates() {
    let token = token();
    let prefix = format!("{token}rq");
    let (w, mut conn) = setup(&prefix).await;
    let index = gate_index(&token);
    let s = Sched { token: token.clone(), name: "o" };
    let run = |minute: i64, overlap: OverlapGate| s.indexed_run(due(minute), overlap, &index);
    let release = |r: PreparedRun| {
        let w = w.clone();
        async move {
            w.stage_many(std::slice::from_ref(&r)).await.expect("stage");
            w.release_many(std::slice::from_ref(&r)).await.expect("release").pop().expect("answer").expect("run")
        }
    };
    let first = s.job_id(due(0));
    assert_eq!(release(run(0, OverlapGate::Allow)).await, EnqueueOutcome::Enqueued);
    let last: Option<String> = conn.get(s.lastjob()).await.expect("GET");
    assert_eq!(last.as_deref(), Some(first.as_str()), "an allow run's last job is recorded after its release");
    let ttl: i64 = conn.ttl(format!("{prefix}:job:{first}")).await.expect("TTL");
    assert_eq!(ttl, -1, "the released hash no longer expires");

    assert_eq!(release(run(1, OverlapGate::Skip)).await, EnqueueOutcome::SkippedOverlap { running: first.clone() });
    assert_eq!(status(&mut conn, &prefix, &s.job_id(due(1))).await, None, "the skipped run's staged hash is gone");

    assert_eq!(release(run(2, OverlapGate::Replace)).await, EnqueueOutcome::Replaced { canceled: first.clone() });
    assert_eq!(status(&mut conn, &prefix, &first).await.as_deref(), Some("canceled"));
    let last: Option<String> = conn.get(s.lastjob()).await.expect("GET");
    assert_eq!(last, Some(s.job_id(due(2))), "a replace run records its last job inside the release");
    assert_eq!(queue(&mut conn, &prefix, &token).await, vec![s.job_id(due(2))]);
    cleanup(&mut conn, &token).await;
}

/// The release sends an `allow` run of the daemon's ids by its schedule as the id carries it,
/// escaped, and finds paused and skipped schedules by their escaped form: schedules with
/// quotes, `%`, `|`, `_`, NUL, non-ASCII and `-` are each gated as their own and released
/// under their exact id — also when an index of another type makes the script unescape them.
#[tokio::test]
async fn release_by_escaped_schedule_gates_and_ids_hostile_schedules_exactly() {
    let token = token();
    let prefix = format!("{token}rq");
    let (w, mut conn) = setup(&prefix).await;
    let index = gate_index(&token);
    let names = ["TS|1", "it's 100%", "na\u{ef}ve-\u{20ac}", "a_2db", "a-b", "nul\u{0}x", "plain"];
    let keys = |name: &str| (format!("{token}:pause:{name}"), format!("{token}:skip:{name}"));
    let run = |name: &str, minute: i64| {
        let id = btu::rq::job_id("site.local", name, due(minute));
        let mut j = RqJob::new(id.clone(), format!("{token}:default"), "mod.func");
        j.kwargs = vec![("a".into(), PyValue::Int(1))];
        let (pause, skip) = keys(name);
        let gates = Gates {
            pause_key: Some(pause),
            skip: Some((skip, due(minute).timestamp())),
            lastjob_key: Some(format!("{token}:lastjob:{name}")),
            overlap: OverlapGate::Allow,
            index: Some(index.clone()),
        };
        let claim = Claim { key: format!("{token}:claim:{id}"), ttl_secs: 60 };
        PreparedRun::new(&j, claim, Utc::now()).expect("valid run").with_gates(gates)
    };
    // "TS|1" paused, "a_2db" skipped at minute 0; the look-alikes "a-b" ("a_2db" escaped is
    // "a_5f2db", "a-b" is "a_2db") and the rest are not.
    let (pause, _) = keys("TS|1");
    let _: () = conn.set(&pause, "{}").await.expect("SET");
    let _: () = conn.sadd(&index.pauses, "TS|1").await.expect("SADD");
    let (_, skip) = keys("a_2db");
    let _: () = conn.zadd(&skip, due(0).timestamp(), due(0).timestamp()).await.expect("ZADD");
    let _: () = conn.sadd(&index.skips, "a_2db").await.expect("SADD");

    // Every schedule's run at `minute`, staged, then released: the runs and their answers.
    let stage_and_release = |minute: i64| {
        let staged: Vec<PreparedRun> = names.iter().map(|n| run(n, minute)).collect();
        let w = w.clone();
        async move {
            w.stage_many(&staged).await.expect("stage");
            let out: Vec<EnqueueOutcome> =
                w.release_many(&staged).await.expect("call").into_iter().map(|o| o.expect("run")).collect();
            (staged, out)
        }
    };
    let (staged, out) = stage_and_release(0).await;
    let mut want = vec![EnqueueOutcome::Enqueued; names.len()];
    want[0] = EnqueueOutcome::SkippedPaused;
    want[3] = EnqueueOutcome::SkippedByRequest;
    assert_eq!(out, want);
    let released: Vec<String> = [1, 2, 4, 5, 6].iter().map(|&i| staged[i].job_id().to_string()).collect();
    assert_eq!(queue(&mut conn, &prefix, &token).await, released);

    // An index of another type: each run's keys come from its unescaped schedule.
    let _: () = conn.del(&index.pauses).await.expect("DEL");
    let _: () = conn.set(&index.pauses, "not a set").await.expect("SET");
    let (pause, _) = keys("na\u{ef}ve-\u{20ac}");
    let _: () = conn.set(&pause, "{}").await.expect("SET");
    let (_, out) = stage_and_release(1).await;
    let mut want = vec![EnqueueOutcome::Enqueued; names.len()];
    want[0] = EnqueueOutcome::SkippedPaused;
    want[2] = EnqueueOutcome::SkippedPaused;
    assert_eq!(out, want);
    cleanup(&mut conn, &token).await;
}
