//! Redis outages, with a private `redis-server` (no persistence) on its own port that the test
//! starts late, kills and restarts: the engine keeps running, reconnects with backoff,
//! rewrites its plan into the empty Redis and fires what is due under the missed-run rule.

mod daemon_support;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use daemon_support::*;
use redis::AsyncCommands;

fn start_redis(port: u16) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed for the outage test")
}

async fn private_conn(url: &str) -> redis::aio::ConnectionManager {
    for _ in 0..50 {
        if let Ok(c) = btu::rq::connect(url).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("private redis-server did not come up at {url}");
}

#[tokio::test]
async fn engine_survives_redis_outages() {
    let token = token();
    let port = 20000 + (std::process::id() % 20000) as u16;
    let url = format!("redis://127.0.0.1:{port}/0");
    let dir = std::env::temp_dir().join(format!("btu-daemon-test-{token}"));
    std::fs::create_dir_all(&dir).expect("dir");
    let queue = format!("{token}q");
    std::fs::write(
        dir.join("schedules.toml"),
        format!(
            "[[schedule]]\nid = \"tick\"\nfunction = \"demo_tasks.tick\"\ncron = \"* * * * * *\"\nqueue = \"{queue}\"\n"
        ),
    )
    .expect("write");
    let mut cfg =
        config(&token, &format!("[file]\npath = \"{}\"\nsite = \"{token}-x\"\n", dir.join("schedules.toml").display()));
    cfg.redis.url = btu::config::Secret::new(url.clone());

    // Redis is down when the daemon starts: it loads the file and waits.
    let (handle, task) = start(&cfg);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let st = handle.status().await.expect("status");
    assert!(!st.redis_up);
    let mut redis_proc = start_redis(port);
    let conn = private_conn(&url).await;
    ready(&handle).await;
    let qkey = format!("{token}rq:queue:{queue}");
    wait_for("runs after the late start", 15, async || conn.clone().llen::<_, usize>(&qkey).await.unwrap_or(0) >= 2)
        .await;

    // Outage: kill Redis (its data goes with it), the engine notices and waits.
    redis_proc.kill().expect("kill redis");
    let _ = redis_proc.wait();
    wait_for("redis marked down", 15, async || !handle.status().await.expect("status").redis_up).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let enqueued_before = handle.status().await.expect("status").runs_enqueued;

    // Back: the plan is rewritten, one catch-up fires, then the per-second runs continue.
    let mut redis_proc = start_redis(port);
    let mut conn = private_conn(&url).await;
    wait_for("redis marked up", 20, async || handle.status().await.expect("status").redis_up).await;
    wait_for("runs after recovery", 15, async || conn.clone().llen::<_, usize>(&qkey).await.unwrap_or(0) >= 2).await;
    let described: Vec<String> = conn.hkeys(format!("btu:{token}-x:schedules")).await.expect("hkeys");
    assert_eq!(described, vec!["tick"]);
    let planned: Vec<String> = conn.zrange(format!("btu:{token}-x:upcoming"), 0, -1).await.expect("zrange");
    assert_eq!(planned, vec!["tick"]);
    let st = handle.status().await.expect("status");
    assert!(st.runs_enqueued > enqueued_before);
    // The history says what happened to each instant: the runs missed during the outage
    // (skipped_missed, one entry per instant, no lateness), then enqueued ones with lateness.
    let history: Vec<String> = conn.lrange(format!("btu:{token}-x:history:tick"), 0, -1).await.expect("lrange");
    let entries: Vec<serde_json::Value> = history.iter().map(|e| serde_json::from_str(e).expect("json")).collect();
    let missed: Vec<&serde_json::Value> = entries.iter().filter(|e| e["outcome"] == "skipped_missed").collect();
    assert!(!missed.is_empty(), "{history:?}");
    assert!(missed.iter().all(|e| e["lateness_ms"].is_null() && e["enqueued_at"].is_null()), "{history:?}");
    let dues: HashSet<&str> = missed.iter().filter_map(|e| e["due"].as_str()).collect();
    assert_eq!(dues.len(), missed.len(), "one entry per missed instant: {history:?}");
    assert!(
        entries.iter().any(|e| e["outcome"] == "enqueued" && e["lateness_ms"].as_i64().is_some_and(|l| l >= 0)),
        "{history:?}"
    );
    stop(handle, task).await;
    let ids: Vec<String> = conn.lrange(&qkey, 0, -1).await.expect("lrange");
    assert_eq!(ids.len(), ids.iter().collect::<HashSet<_>>().len(), "{ids:?}");
    redis_proc.kill().expect("kill redis");
    let _ = redis_proc.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
