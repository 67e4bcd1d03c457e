//! Jobs written by `btu::rq` run on real, stock `rq worker` processes of every
//! release we support (1.15.1, 2.6.1, 3.0.x).
//!
//! Needs Redis on 127.0.0.1:6379 (db 9 is used, only keys containing this
//! run's random token are touched and deleted) and the virtualenvs from
//! `tests/setup-rq-venvs.sh`. Nothing is skipped: a missing piece fails.

use btu::pyvalue::{Kwargs, PyValue, kwargs_repr, parse_kwargs};
use btu::rq::{
    Claim, EnqueueOutcome, HistoryAppend, IdForm, PreparedRun, RqJob, RqWriter, StageOutcome, choose_form, connect,
    describe, job_id, job_id_in, read_workers,
};
use chrono::{TimeZone, Utc};
use redis::AsyncCommands;
use std::path::{Path, PathBuf};

mod test_token;

/// Redis db 9 on 127.0.0.1, port `$BTU_TEST_REDIS_PORT` (default 6379), so that two
/// checkouts can run the suites side by side.
fn redis_url() -> String {
    let port: u16 = std::env::var("BTU_TEST_REDIS_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(6379);
    format!("redis://127.0.0.1:{port}/9")
}
const RELEASES: [&str; 3] = ["rq-1.15.1", "rq-2.6.1", "rq-3.0.x"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn token() -> String {
    test_token::token("rqtest")
}

fn rq_bin(release: &str) -> PathBuf {
    let bin = repo().join("tests/.venvs").join(release).join("bin/rq");
    assert!(
        bin.exists(),
        "{} is missing: run tests/setup-rq-venvs.sh (creates the stock rq virtualenvs)",
        bin.display()
    );
    bin
}

async fn make_writer(prefix: &str) -> (RqWriter, redis::aio::ConnectionManager) {
    let conn = connect(&redis_url()).await.unwrap_or_else(|e| {
        panic!("Redis must run on 127.0.0.1:6379 for this test (scripts/bootstrap.sh starts it): {e}")
    });
    (RqWriter::new(conn.clone(), prefix), conn)
}

/// Deletes every key of db 9 that contains `token` (jobs, queues, registries,
/// results, workers named after it) and its members of the shared sets.
async fn cleanup(conn: &mut redis::aio::ConnectionManager, token: &str) {
    let keys: Vec<String> = {
        let mut iter: redis::AsyncIter<String> = conn.scan_match(format!("*{token}*")).await.expect("SCAN");
        let mut keys = Vec::new();
        while let Some(k) = iter.next_item().await {
            keys.push(k.expect("scan item"));
        }
        keys
    };
    if !keys.is_empty() {
        let _: () = conn.del(&keys).await.expect("DEL");
    }
    for set in ["rq:queues", "rq:workers"] {
        let members: Vec<String> = conn.smembers(set).await.expect("SMEMBERS");
        let mine: Vec<&String> = members.iter().filter(|m| m.contains(token)).collect();
        if !mine.is_empty() {
            let _: () = conn.srem(set, mine).await.expect("SREM");
        }
    }
}

struct Case {
    job: RqJob,
    /// `repr((args, kwargs))` the probe must record; None = must not run.
    expect_line: Option<String>,
    expect_status: &'static str,
}

fn probe_job(id: String, queue: &str, args: Vec<PyValue>, kwargs: Kwargs) -> RqJob {
    let mut job = RqJob::new(id, queue, "btu_rq_probe.record");
    job.description = describe(&job.func, &args, &kwargs);
    job.args = args;
    job.kwargs = kwargs;
    job.timeout_secs = 60;
    job
}

fn expected_line(args: &[PyValue], kwargs: &Kwargs) -> String {
    format!("({}, {})", PyValue::Tuple(args.to_vec()).to_python_repr(), kwargs_repr(kwargs))
}

const TRICKY: [&str; 4] = [
    "{'uni': 'héllo wörld ✓ 😀 日本', 'esc': 'tab\\tnl\\ncr\\r\\x00\\'\"\\\\', 'empty': ''}",
    "{'nested': {'list': [1, [2, (3, (4,))], {'k': ()}], 'tuple': (None, [], {}), 5: 'int key', (1, 'a'): 'tuple key'}}",
    "{'big': 123456789012345678901234567890, 'neg': -98765432109876543210987, 'i64min': -9223372036854775808, 'edge': [255, 256, 65535, 65536, -1, 2147483648, -2147483649], 'f': [0.1, 1e16, 1e-05, -0.0, 3.141592653589793, 1.5e300]}",
    "{'none': None, 'yes': True, 'no': False, 'bytes': b'\\x00\\xff', 'order_z': 1, 'order_a': 2}",
];

async fn run_worker(
    release: String,
    queue: String,
    token: String,
    probe_dir: PathBuf,
    key_prefix: Option<String>,
) -> String {
    let release = release.as_str();
    let mut cmd = tokio::process::Command::new(rq_bin(release));
    cmd.args(["worker", "--burst", "--url", &redis_url(), "--name"])
        .arg(format!("w-{token}-{release}-{}", key_prefix.as_deref().unwrap_or("rq")))
        .arg(&queue)
        .env("PYTHONPATH", repo().join("tests/rq"))
        .env("BTU_RQ_PROBE_DIR", &probe_dir)
        .kill_on_drop(true);
    if let Some(p) = key_prefix {
        cmd.env("RQ_KEY_PREFIX", p);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{release}: rq worker --burst did not finish within 120 s"))
        .unwrap_or_else(|e| panic!("{release}: cannot start rq worker: {e}"));
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{release}: worker exited with {}:\n{log}", out.status);
    assert!(
        !log.to_lowercase().contains("unhandled exception"),
        "{release}: the worker died on one of our jobs:\n{log}"
    );
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_workers_run_our_jobs() {
    let token = token();
    let _guard = CleanupOnPanic(token.clone());
    let (writer, mut conn) = make_writer("rq").await;
    let probe_dir = std::env::temp_dir().join(format!("btu-{token}"));
    std::fs::create_dir_all(&probe_dir).expect("probe dir");
    let now = Utc::now();
    let mut per_release = Vec::new();

    for (r, release) in RELEASES.iter().enumerate() {
        let queue = format!("bench-{token}-{r}:default"); // Frappe-style, with a colon
        let site = format!("{token}-{r}.example.local"); // dots: escaped in the job id
        let mut cases: Vec<Case> = Vec::new();
        let due = |minute: u32| Utc.with_ymd_and_hms(2027, 3, 14, 10, minute, 0).single().expect("date");
        let history = HistoryAppend { key: format!("btu:{token}:{r}:history"), entry: String::new(), max: 2 };

        for (n, text) in TRICKY.iter().enumerate() {
            let kwargs = parse_kwargs(Some(text)).expect("tricky literal parses");
            let args = vec![PyValue::Str("pos ✓".into()), PyValue::Tuple(vec![PyValue::Int(1)])];
            let job =
                probe_job(job_id(&site, &format!("SCH-{n}"), due(n as u32)), &queue, args.clone(), kwargs.clone());
            cases.push(Case { expect_line: Some(expected_line(&args, &kwargs)), job, expect_status: "finished" });
        }
        // Outlives its 1 s timeout: failed, and the worker goes on to the next job.
        let mut slow = probe_job(job_id(&site, "SLOW", due(30)), &queue, vec![PyValue::Int(5)], Vec::new());
        slow.func = "btu_rq_probe.sleep_then_record".into();
        slow.timeout_secs = 1;
        cases.push(Case { job: slow, expect_line: None, expect_status: "failed" });
        let after =
            probe_job(job_id(&site, "AFTER-SLOW", due(31)), &queue, vec![], vec![("k".into(), PyValue::Int(1))]);
        cases.push(Case {
            expect_line: Some(expected_line(&[], &after.kwargs)),
            job: after,
            expect_status: "finished",
        });

        if *release != "rq-3.0.x" {
            // Frappe's form `<site>||…` (docs/rq.md W9): runs on every release before 2.8.
            let id = job_id_in(IdForm::SitePrefixed, &site, "FRAPPE-FORM", due(40));
            assert!(id.starts_with(&format!("{site}||btu-")), "{id}");
            let job = probe_job(id, &queue, vec![], vec![("form".into(), PyValue::Str("site||".into()))]);
            cases.push(Case { expect_line: Some(expected_line(&[], &job.kwargs)), job, expect_status: "finished" });
        }

        for (n, case) in cases.iter().enumerate() {
            let claim = Claim { key: format!("btu:{token}:claim:{}", case.job.id), ttl_secs: 600 };
            let h = HistoryAppend { entry: format!("{n}"), ..history.clone() };
            if n % 2 == 1 {
                // Staged ahead and released at the instant, as the daemon does: the worker
                // must read the released hash exactly as a job written in full.
                let run = PreparedRun::new(&case.job, claim, now).expect("valid run");
                let staged = writer.stage_many(std::slice::from_ref(&run)).await.expect("stage");
                assert_eq!(staged, vec![StageOutcome::Staged], "{}", case.job.id);
                let out = writer.release_many(std::slice::from_ref(&run)).await.expect("release");
                assert!(matches!(out[..], [Ok(EnqueueOutcome::Enqueued)]), "{}: {out:?}", case.job.id);
                writer.append_history(std::slice::from_ref(&h)).await.expect("history");
            } else {
                let first = writer.enqueue_once(&case.job, &claim, Some(&h), now).await.expect("enqueue");
                assert_eq!(first, EnqueueOutcome::Enqueued, "{}", case.job.id);
            }
        }
        // The same run again (a rebuild, a restart, a second daemon): nothing written.
        let again = &cases[0];
        let claim = Claim { key: format!("btu:{token}:claim:{}", again.job.id), ttl_secs: 600 };
        let h = HistoryAppend { entry: "dup".into(), ..history.clone() };
        assert_eq!(
            writer.enqueue_once(&again.job, &claim, Some(&h), now).await.expect("enqueue"),
            EnqueueOutcome::AlreadyClaimed
        );
        let hist: Vec<String> = conn.lrange(&history.key, 0, -1).await.expect("LRANGE");
        assert_eq!(hist, vec![format!("{}", cases.len() - 1), format!("{}", cases.len() - 2)], "bounded, newest first");
        let queued: Vec<String> = conn.lrange(writer.queue_key(&queue), 0, -1).await.expect("LRANGE");
        assert_eq!(queued.len(), cases.len(), "the duplicate was not pushed");
        per_release.push((release, queue, cases));
    }

    // Three workers in parallel, one per release.
    let logs = futures_join(per_release.iter().map(|(release, queue, _)| {
        run_worker(release.to_string(), queue.clone(), token.clone(), probe_dir.clone(), None)
    }))
    .await;

    for ((release, queue, cases), log) in per_release.iter().zip(&logs) {
        println!("---- {release} worker log ----\n{log}"); // shown with --nocapture or on failure
        for case in cases {
            let status: Option<String> = conn.hget(writer.job_key(&case.job.id), "status").await.expect("HGET");
            assert_eq!(status.as_deref(), Some(case.expect_status), "{release}: job {} status\n{log}", case.job.id);
            let marker = std::fs::read_to_string(probe_dir.join(&case.job.id)).ok();
            match &case.expect_line {
                Some(line) => {
                    let got = marker.unwrap_or_else(|| panic!("{release}: job {} did not run\n{log}", case.job.id));
                    assert_eq!(
                        got,
                        format!("{line}\n"),
                        "{release}: job {} ran once with exactly our arguments",
                        case.job.id
                    );
                }
                None => assert!(marker.is_none(), "{release}: timed-out job {} should not have finished", case.job.id),
            }
        }
        assert!(log.contains("JobTimeoutException"), "{release}: timeout not reported\n{log}");
        let left: i64 = conn.llen(format!("rq:queue:{queue}:intermediate")).await.expect("LLEN");
        assert_eq!(left, 0, "{release}: ids left in the intermediate queue (origin mismatch?)");
    }

    // rq 3.0 honours RQ_KEY_PREFIX: the writer's prefix must match the workers'.
    let prefix = format!("{token}pfx");
    let (pwriter, _) = make_writer(&prefix).await;
    let queue = format!("plain-{token}");
    let job = probe_job(
        job_id(&format!("{token}.local"), "PREFIXED", now),
        &queue,
        vec![],
        vec![("x".into(), PyValue::Float(2.5))],
    );
    let claim = Claim { key: format!("btu:{token}:claim:prefixed"), ttl_secs: 60 };
    assert_eq!(pwriter.enqueue_once(&job, &claim, None, now).await.expect("enqueue"), EnqueueOutcome::Enqueued);
    let log =
        run_worker("rq-3.0.x".into(), queue.clone(), token.clone(), probe_dir.clone(), Some(prefix.clone())).await;
    let status: Option<String> = conn.hget(pwriter.job_key(&job.id), "status").await.expect("HGET");
    assert_eq!(status.as_deref(), Some("finished"), "rq 3.0 with RQ_KEY_PREFIX\n{log}");

    cleanup(&mut conn, &token).await;
    let _ = std::fs::remove_dir_all(&probe_dir);
    let left: Vec<String> = conn.keys(format!("*{token}*")).await.expect("KEYS");
    assert!(left.is_empty(), "keys left behind: {left:?}");
}

/// The registered workers are read from `rq:workers` and their hashes as stock rq writes them;
/// a worker of rq >= 2.8 among them keeps the portable form. The hashes carry the fields stock
/// rq writes (`version`, `queues` comma-separated, `birth`; docs/rq.md W6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_workers_decide_the_id_form() {
    let token = token();
    let _guard = CleanupOnPanic(token.clone());
    let prefix = format!("{token}reg");
    let (_, mut conn) = make_writer(&prefix).await;
    let set = format!("{prefix}:workers");
    assert!(read_workers(&mut conn, &prefix).await.expect("read").is_empty());
    assert_eq!(choose_form(&[]).form, IdForm::Portable);
    let add = |name: &str, version: &str, queues: &str| {
        let key = format!("{prefix}:worker:{name}");
        redis::pipe()
            .sadd(&set, &key)
            .hset_multiple(&key, &[("version", version), ("queues", queues), ("birth", "2027-01-01T00:00:00Z")])
            .clone()
    };
    let _: () = add("old1", "1.15.1", "bench-x:default,bench-x:short").query_async(&mut conn).await.expect("add");
    let _: () = add("old2", "2.6.1", "bench-x:long").query_async(&mut conn).await.expect("add");
    // A member whose hash expired (a dead worker) is not counted.
    let _: () = conn.sadd(&set, format!("{prefix}:worker:gone")).await.expect("SADD");
    let workers = read_workers(&mut conn, &prefix).await.expect("read");
    assert_eq!(workers.len(), 2, "{workers:?}");
    assert_eq!(workers[0].queues, ["bench-x:default", "bench-x:short"]);
    assert_eq!(choose_form(&workers).form, IdForm::SitePrefixed);
    let _: () = add("new", "3.0.0", "bench-x:default").query_async(&mut conn).await.expect("add");
    let workers = read_workers(&mut conn, &prefix).await.expect("read");
    let choice = choose_form(&workers);
    assert_eq!(choice.form, IdForm::Portable);
    assert!(choice.reason.contains("worker new runs rq 3.0.0"), "{}", choice.reason);
    cleanup(&mut conn, &token).await;
}

/// Awaits all futures concurrently (tokio has no join_all; this avoids a
/// `futures` dependency just for a test).
async fn futures_join<F: std::future::Future<Output = String> + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<String> {
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("worker task panicked"));
    }
    out
}

/// Deletes this run's keys if an assertion failed half-way (the normal path
/// cleans up itself and checks nothing is left).
struct CleanupOnPanic(String);

impl Drop for CleanupOnPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let Ok(client) = redis::Client::open(redis_url()) else { return };
        let Ok(mut c) = client.get_connection() else { return };
        let keys: Vec<String> = redis::cmd("KEYS").arg(format!("*{}*", self.0)).query(&mut c).unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&keys).query(&mut c);
        }
        for set in ["rq:queues", "rq:workers"] {
            let members: Vec<String> = redis::cmd("SMEMBERS").arg(set).query(&mut c).unwrap_or_default();
            let mine: Vec<&String> = members.iter().filter(|m| m.contains(&self.0)).collect();
            if !mine.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("SREM").arg(set).arg(mine).query(&mut c);
            }
        }
    }
}
