//! Daemon benchmarks against the real services (numbers go to docs/daemon.md):
//!
//! - full rebuild of N schedules from MariaDB (first load = plan everything, second = nothing
//!   changed), and peak RSS (VmHWM);
//! - lateness (enqueue done − due) with N schedules due in the same second;
//! - CPU used while idle (nothing due), extrapolated to an hour.
//!
//! - cold start: a fresh process starts the engine on an empty Redis and waits until every
//!   schedule of the database is planned (loaded, validated, next runs computed, plan written
//!   to Redis); `cold100k` runs it five times, each in its own process, and prints the median.
//!
//! `cargo bench -p btu-daemon --bench daemon_bench` (all), or pass `rebuild`, `rebuild10k`,
//! `rebuild100k`, `cold100k`, `lateness`, `idle` to run one part (`cold20k` only when named: small
//! enough for callgrind) (peak RSS is per process, so
//! run each rebuild size alone for its own VmHWM). Uses MariaDB database
//! `btu_test_daemon_bench$BTU_TEST_DB_TAG` and Redis db 11 on port `$BTU_TEST_REDIS_PORT`
//! (default 6379) under a private token; both are removed afterwards.

use std::path::Path;
use std::time::{Duration, Instant};

use btu::config::Config;
use btu::engine::{Engine, EngineHandle, EngineOptions};
use btu::source::Source;
use mysql_async::prelude::Queryable;
use redis::AsyncCommands;

/// Redis db 11 on 127.0.0.1, port `$BTU_TEST_REDIS_PORT` (default 6379), so that two
/// checkouts can run the benchmark side by side.
fn redis_url() -> String {
    let port: u16 = std::env::var("BTU_TEST_REDIS_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(6379);
    format!("redis://127.0.0.1:{port}/11")
}

/// The bench database, `$BTU_TEST_DB_TAG` appended (as the integration tests do).
fn bench_db() -> String {
    let tag: String = std::env::var("BTU_TEST_DB_TAG")
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    format!("btu_test_daemon_bench{tag}")
}

/// Counts live heap bytes and their peak, so the rebuild benchmark can tell memory the
/// program holds apart from what the allocator keeps (RSS − live heap = fragmentation and
/// allocator caches). Over jemalloc, the allocator of the `btu-daemon` binary.
mod heap {
    use std::alloc::{GlobalAlloc, Layout};
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use tikv_jemallocator::Jemalloc as System;

    pub struct Counting;
    static LIVE: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            let p = unsafe { System.alloc(l) };
            if !p.is_null() {
                let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
                PEAK.fetch_max(now, Relaxed);
            }
            p
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            unsafe { System.dealloc(p, l) };
            LIVE.fetch_sub(l.size(), Relaxed);
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
            let q = unsafe { System.realloc(p, l, new) };
            if !q.is_null() {
                if new >= l.size() {
                    let now = LIVE.fetch_add(new - l.size(), Relaxed) + new - l.size();
                    PEAK.fetch_max(now, Relaxed);
                } else {
                    LIVE.fetch_sub(l.size() - new, Relaxed);
                }
            }
            q
        }
    }

    /// (live, peak since the last reset) in MB.
    pub fn mb() -> (usize, usize) {
        (LIVE.load(Relaxed) >> 20, PEAK.load(Relaxed) >> 20)
    }
    pub fn reset_peak() {
        PEAK.store(LIVE.load(Relaxed), Relaxed);
    }
}

#[global_allocator]
static ALLOC: heap::Counting = heap::Counting;

/// Same jemalloc configuration as the `btu-daemon` binary (see there): one arena.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: MallocConf = MallocConf(c"narenas:1".as_ptr());
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);
// SAFETY: the pointer is to an immutable static C string.
unsafe impl Sync for MallocConf {}

/// One line of memory figures at a phase of the rebuild benchmark.
fn phase(name: &str) {
    let (live, peak) = heap::mb();
    println!(
        "  {name}: VmRSS {} MB, VmHWM {} MB, live heap {live} MB, heap peak {peak} MB",
        status_kb("VmRSS:") / 1024,
        status_kb("VmHWM:") / 1024
    );
    heap::reset_peak();
}

fn token() -> String {
    format!("bench{:x}", std::process::id())
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// User + system CPU seconds of this process.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat (utime, stime) are at 11, 12 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

fn config(token: &str, body: &str) -> Config {
    let text = format!("[redis]\nurl = \"{}\"\nkey_prefix = \"{token}rq\"\n{body}", redis_url());
    Config::parse(&text, Path::new("/tmp/bench.toml")).expect("bench config")
}

async fn cleanup_redis(token: &str) {
    let mut conn = btu::rq::connect(&redis_url()).await.expect("redis");
    let mut iter: redis::AsyncIter<String> = conn.scan_match(format!("*{token}*")).await.expect("scan");
    let mut keys = Vec::new();
    while let Some(k) = iter.next_item().await {
        keys.push(k.expect("scan item"));
    }
    drop(iter);
    for chunk in keys.chunks(1000) {
        let _: () = conn.del(chunk).await.expect("del");
    }
}

fn start(cfg: &Config, record: bool) -> (EngineHandle, tokio::task::JoinHandle<()>) {
    let mut opts = EngineOptions::from_config(cfg);
    opts.record_lateness = record;
    let (engine, handle) = Engine::new(opts, Source::all_from_config(cfg));
    (handle, tokio::spawn(engine.run()))
}

async fn ready(handle: &EngineHandle) {
    loop {
        let st = handle.status().await.expect("status");
        if st.redis_up && st.sites.iter().all(|s| s.source_ok.is_some() && s.planned + s.skipped > 0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Creates database `db` afresh with `n` schedules of one task (five cron strings, a distinct
/// override per schedule).
async fn fill(pool: &mysql_async::Pool, db: &str, n: usize) {
    let mut conn = pool.get_conn().await.expect("MariaDB must run on 127.0.0.1:3306");
    conn.query_drop(format!("DROP DATABASE IF EXISTS `{db}`")).await.expect("drop");
    conn.query_drop(format!("CREATE DATABASE `{db}`")).await.expect("create");
    conn.query_drop(format!("USE `{db}`")).await.expect("use");
    let schema = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/sql/schema.sql"))
        .expect("schema.sql");
    conn.query_drop(schema).await.expect("schema");
    conn.exec_drop(
        "INSERT INTO `tabBTU Task` (name, docstatus, function_string, arguments, max_task_duration) VALUES (?, 1, ?, ?, 600)",
        ("BTU-00001", "app.tasks.run", "{'days': 7, 'tags': ['a', 'b']}"),
    )
    .await
    .expect("task");
    conn.exec_drop(
        "INSERT INTO tabSingles (doctype, field, value) VALUES (?, ?, ?)",
        ("BTU Configuration", "cron_time_zone", "America/New_York"),
    )
    .await
    .expect("singles");
    let crons = ["30 2 * * *", "0 19 * * MON-FRI", "*/15 * * * *", "0 0 1 * *", "15 8,12,16 * * 1-5"];
    for start in (0..n).step_by(1000) {
        let end = (start + 1000).min(n);
        let mut sql = String::from(
            "INSERT INTO `tabBTU Task Schedule` (name, task, enabled, queue_name, cron_string, argument_overrides) VALUES ",
        );
        let mut params: Vec<mysql_async::Value> = Vec::new();
        for i in start..end {
            if i > start {
                sql.push(',');
            }
            sql.push_str("(?, 'BTU-00001', 1, 'default', ?, ?)");
            params.push(format!("TS-{i:07}").into());
            params.push(crons[i % crons.len()].into());
            params.push(format!("{{'n': {i}}}").into());
        }
        conn.exec_drop(sql, params).await.expect("insert");
    }
}

async fn rebuild(n: usize) {
    let token = token();
    let db = &bench_db();
    let pool = mysql_async::Pool::new("mysql://root@127.0.0.1:3306");
    fill(&pool, db, n).await;

    let cfg = config(&token, &format!("[[sites]]\nname = \"{token}.site\"\ndatabase = \"{db}\"\n"));
    phase("before the engine");
    let t0 = Instant::now();
    let (handle, task) = start(&cfg, false);
    ready(&handle).await;
    let first = t0.elapsed();
    println!("cold start: all planned {:.3} s ({n} schedules, in-process)", first.as_secs_f64());
    phase("after the first rebuild (everything planned)");
    let t1 = Instant::now();
    let report = handle.rebuild(None).await.expect("rebuild");
    let unchanged = t1.elapsed();
    assert_eq!(report.sites[0].unchanged, n);
    phase("after an unchanged rebuild");
    // One task edit changes every schedule of that task (here: all of them).
    let mut conn = pool.get_conn().await.expect("conn");
    conn.exec_drop(format!("UPDATE `{db}`.`tabBTU Task` SET max_task_duration = ? WHERE name = ?"), (900, "BTU-00001"))
        .await
        .expect("update task");
    drop(conn);
    let t2 = Instant::now();
    let report = handle.rebuild(None).await.expect("rebuild");
    let changed = t2.elapsed();
    assert_eq!(report.sites[0].changed, n);
    phase("after a rebuild that replans everything");
    handle.shutdown().await;
    let _ = task.await;
    // Peak of the engine alone (the load-only measurement below holds a second copy).
    let engine_hwm = status_kb("VmHWM:");
    // A restarted daemon takes over the plan the previous one left in Redis: measured in a
    // fresh process, as a restart is (here the freed plan of the first engine would count).
    let child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["restart-child", &token, db])
        .output()
        .expect("restart child");
    print!("{}", String::from_utf8_lossy(&child.stdout));
    assert!(child.status.success(), "restart child: {}", String::from_utf8_lossy(&child.stderr));
    let source = Source::all_from_config(&cfg).remove(0);
    let t4 = Instant::now();
    let rows = source.load_all().await.expect("load");
    let load_only = t4.elapsed();
    assert_eq!(rows.len(), n);
    drop(rows);
    source.close().await;
    println!(
        "rebuild n={n}: first (load + plan + write Redis) {:.3} s, unchanged {:.3} s, all changed {:.3} s, \
         load+validate only {:.3} s, VmHWM of the engine through these rebuilds {} MB",
        first.as_secs_f64(),
        unchanged.as_secs_f64(),
        changed.as_secs_f64(),
        load_only.as_secs_f64(),
        engine_hwm / 1024,
    );
    cleanup_redis(&token).await;
    let mut conn = pool.get_conn().await.expect("conn");
    conn.query_drop(format!("DROP DATABASE IF EXISTS `{db}`")).await.expect("drop");
    drop(conn);
    let _ = pool.disconnect().await;
}

/// The restart part of the rebuild benchmark, in its own process: an engine starts over the
/// plan a previous one left in Redis (`restart-child TOKEN DB`).
async fn restart_child(token: &str, db: &str) {
    let cfg = config(token, &format!("[[sites]]\nname = \"{token}.site\"\ndatabase = \"{db}\"\n"));
    phase("restart: before the engine");
    let t0 = Instant::now();
    let (handle, task) = start(&cfg, false);
    ready(&handle).await;
    let took = t0.elapsed();
    let st = handle.status().await.expect("status");
    phase("restart: after taking over the stored plan");
    println!(
        "restart takeover of {} schedules (fresh process): {:.3} s, VmHWM {} MB",
        st.sites[0].planned,
        took.as_secs_f64(),
        status_kb("VmHWM:") / 1024
    );
    handle.shutdown().await;
    let _ = task.await;
}

/// Cold starts of `n` schedules, each in a fresh process on an empty Redis (`runs` of them):
/// the time from starting the engine until every schedule is planned.
async fn cold(n: usize, runs: usize) {
    let db = &format!("{}_cold{n}", bench_db());
    let pool = mysql_async::Pool::new("mysql://root@127.0.0.1:3306");
    // BTU_BENCH_KEEP_DB=1 keeps the database afterwards and reuses one of the right size, so
    // `cold-child` can be run alone (e.g. under callgrind) on it.
    let keep = std::env::var("BTU_BENCH_KEEP_DB").is_ok_and(|v| v == "1");
    let mut conn = pool.get_conn().await.expect("MariaDB must run on 127.0.0.1:3306");
    let have: Option<u64> =
        conn.query_first(format!("SELECT COUNT(*) FROM `{db}`.`tabBTU Task Schedule`")).await.unwrap_or(None);
    drop(conn);
    if !keep || have != Some(n as u64) {
        fill(&pool, db, n).await;
    }
    let mut times = Vec::new();
    for run in 0..runs {
        let token = format!("{}c{run}", token());
        let child = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args(["cold-child", &token, db, &n.to_string()])
            .output()
            .expect("cold child");
        let out = String::from_utf8_lossy(&child.stdout);
        print!("{out}");
        assert!(child.status.success(), "cold child: {}", String::from_utf8_lossy(&child.stderr));
        let secs = out
            .lines()
            .find_map(|l| l.strip_prefix("cold start: all planned "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .expect("cold start line");
        times.push(secs);
        cleanup_redis(&token).await;
    }
    times.sort_by(f64::total_cmp);
    println!(
        "cold start n={n}: median {:.3} s of {runs} runs (each a fresh process on an empty Redis) {times:?}",
        times[times.len() / 2]
    );
    if keep {
        return;
    }
    let mut conn = pool.get_conn().await.expect("conn");
    conn.query_drop(format!("DROP DATABASE IF EXISTS `{db}`")).await.expect("drop");
    drop(conn);
    let _ = pool.disconnect().await;
}

/// One cold start (`cold-child TOKEN DB N`): the engine starts on an empty Redis and every
/// schedule of `DB` gets planned. Also run alone (e.g. under callgrind) on a database that
/// [`cold`] or [`rebuild`] filled.
async fn cold_child(token: &str, db: &str, n: usize) {
    let cfg = config(token, &format!("[[sites]]\nname = \"{token}.site\"\ndatabase = \"{db}\"\n"));
    let t0 = Instant::now();
    let (handle, task) = start(&cfg, false);
    ready(&handle).await;
    let took = t0.elapsed();
    let st = handle.status().await.expect("status");
    assert_eq!(st.sites[0].planned, n, "every schedule planned");
    println!(
        "cold start: all planned {:.3} s ({n} schedules, fresh process), VmHWM {} MB",
        took.as_secs_f64(),
        status_kb("VmHWM:") / 1024
    );
    handle.shutdown().await;
    let _ = task.await;
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Microseconds Redis has spent so far (all clients) in EVALSHA — the enqueue scripts' share
/// of a burst's lateness, which no client-side change can remove — and in LPUSH + LTRIM, the
/// history follow-up written after the scripts answered (counted so that moving work out of
/// the script cannot hide it).
async fn redis_usec(conn: &mut redis::aio::ConnectionManager) -> (u64, u64) {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(conn).await.unwrap_or_default();
    let usec = |cmd: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:")))
            .and_then(|l| l.split(',').find_map(|kv| kv.strip_prefix("usec=")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (usec("evalsha"), usec("lpush") + usec("ltrim"))
}

async fn lateness(n: usize) {
    let token = format!("{}l{n}", token());
    let dir = std::env::temp_dir().join(format!("btu-bench-{token}"));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!(
            "[[schedule]]\nid = \"s{i}\"\nfunction = \"bench.f\"\ncron = \"*/5 * * * * *\"\nqueue = \"{token}q\"\nkwargs = {{ i = {i} }}\n"
        ));
    }
    std::fs::write(dir.join("s.toml"), text).expect("write");
    let cfg = config(&token, &format!("[file]\npath = \"{}\"\nsite = \"{token}\"\n", dir.join("s.toml").display()));
    let (handle, task) = start(&cfg, true);
    ready(&handle).await;
    // Three bursts of n runs each (every 5 s); the first may be partial, so use the last two.
    let mut redis = btu::rq::connect(&redis_url()).await.expect("redis");
    let mut samples = Vec::new();
    let mut usec0 = (0, 0);
    for round in 0..3 {
        let target = (round + 1) * n;
        let _ = target;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let got = handle.take_lateness().await.expect("lateness");
        if round == 0 {
            usec0 = redis_usec(&mut redis).await;
        } else {
            samples.extend(got);
        }
    }
    let usec1 = redis_usec(&mut redis).await;
    let (script_usec, history_usec) = (usec1.0.saturating_sub(usec0.0), usec1.1.saturating_sub(usec0.1));
    samples.sort();
    let runs = samples.len().max(1) as f64;
    println!(
        "lateness n={n} per second-burst ({} runs): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; Redis script time {:.1} ms per burst ({:.1} us per run); history follow-up {:.1} us per run",
        samples.len(),
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        script_usec as f64 / 1e3 / 2.0,
        script_usec as f64 / runs,
        history_usec as f64 / runs
    );
    handle.shutdown().await;
    let _ = task.await;
    cleanup_redis(&token).await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn idle(n: usize, secs: u64) {
    let token = format!("{}i", token());
    let dir = std::env::temp_dir().join(format!("btu-bench-{token}"));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut text = String::new();
    for i in 0..n {
        // 29 February at 03:00 + i seconds: nothing is due during the measurement.
        text.push_str(&format!(
            "[[schedule]]\nid = \"s{i}\"\nfunction = \"bench.f\"\ncron = \"{} {} 3 29 2 *\"\n",
            i % 60,
            (i / 60) % 60
        ));
    }
    std::fs::write(dir.join("s.toml"), text).expect("write");
    let cfg = config(&token, &format!("[file]\npath = \"{}\"\nsite = \"{token}\"\n", dir.join("s.toml").display()));
    let (handle, task) = start(&cfg, false);
    ready(&handle).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let c0 = cpu_secs();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let used = cpu_secs() - c0;
    println!(
        "idle n={n}: {:.3} CPU s over {secs} s → {:.1} CPU s per hour (rebuild_interval 300 s not reached)",
        used,
        used * 3600.0 / secs as f64
    );
    handle.shutdown().await;
    let _ = task.await;
    cleanup_redis(&token).await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let want = |part: &str| args.is_empty() || args.iter().any(|a| a == part);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    if let [child, token, db] = &args[..]
        && child == "restart-child"
    {
        rt.block_on(restart_child(token, db));
        return;
    }
    if let [child, token, db, n] = &args[..]
        && child == "cold-child"
    {
        rt.block_on(cold_child(token, db, n.parse().expect("N")));
        return;
    }
    rt.block_on(async {
        if want("idle") {
            idle(10_000, 60).await;
        }
        if want("lateness") {
            lateness(1_000).await;
            lateness(10_000).await;
        }
        if want("rebuild") || want("rebuild10k") {
            rebuild(10_000).await;
        }
        if want("rebuild") || want("rebuild100k") {
            rebuild(100_000).await;
        }
        if want("cold100k") {
            cold(100_000, 5).await;
        }
        // Small enough for callgrind: under valgrind a load of 100k outlasts the source's
        // 30 s load timeout.
        if args.iter().any(|a| a == "cold20k") {
            cold(20_000, 5).await;
        }
    });
}
