//! Shared set-up for the daemon integration tests: real MariaDB (databases
//! `btu_test_daemon_*`, created from tests/sql/schema.sql + sample-data.sql and dropped at the end)
//! and real Redis (db 11, every key under a per-test token). A missing service fails the test.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::time::Duration;

use btu::config::Config;
use btu::engine::{Engine, EngineHandle, EngineOptions};
use btu::source::Source;
use mysql_async::prelude::Queryable;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

#[path = "../test_token/mod.rs"]
mod test_token;

/// Redis db 11 on 127.0.0.1, port `$BTU_TEST_REDIS_PORT` (default 6379).
pub fn redis_url() -> String {
    format!("redis://127.0.0.1:{}/11", test_redis_port())
}

/// `$BTU_TEST_REDIS_PORT`, default 6379: lets two checkouts run the suites side by side.
pub fn test_redis_port() -> u16 {
    std::env::var("BTU_TEST_REDIS_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(6379)
}

/// `$BTU_TEST_DB_TAG` (default empty), appended to test database names for the same reason.
pub fn db_tag() -> String {
    std::env::var("BTU_TEST_DB_TAG")
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}
pub const MARIADB_URL: &str = "mysql://root@127.0.0.1:3306";

pub fn token() -> String {
    test_token::token("t")
}

/// A Redis connection to db 11 (panics with a clear message when Redis is down).
pub async fn redis() -> ConnectionManager {
    let url = redis_url();
    btu::rq::connect(&url).await.unwrap_or_else(|e| panic!("Redis must run at {url} for the daemon tests: {e}"))
}

pub async fn keys(conn: &mut ConnectionManager, pattern: &str) -> Vec<String> {
    let mut k: Vec<String> = conn.keys(pattern).await.expect("KEYS");
    k.sort();
    k
}

/// Deletes every key containing `token`.
pub async fn cleanup_redis(token: &str) {
    let mut conn = redis().await;
    let k = keys(&mut conn, &format!("*{token}*")).await;
    if !k.is_empty() {
        let _: () = conn.del(k).await.expect("DEL");
    }
}

/// Job ids queued on `queue` (with the test's private rq key prefix `<token>rq`).
pub async fn queued(conn: &mut ConnectionManager, token: &str, queue: &str) -> Vec<String> {
    conn.lrange(format!("{token}rq:queue:{queue}"), 0, -1).await.expect("LRANGE")
}

pub async fn job_hash(
    conn: &mut ConnectionManager,
    token: &str,
    id: &str,
) -> std::collections::HashMap<String, Vec<u8>> {
    conn.hgetall(format!("{token}rq:job:{id}")).await.expect("HGETALL")
}

/// A job's `data` field (zlib + pickle) → serde_pickle value.
pub fn unpickle(data: &[u8]) -> serde_pickle::Value {
    use std::io::Read;
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(data).read_to_end(&mut raw).expect("zlib");
    serde_pickle::value_from_slice(&raw, serde_pickle::DeOptions::new()).expect("pickle")
}

/// A MariaDB database `btu_test_daemon_<name>` holding the BTU schema + sample data.
pub struct TestDb {
    pub name: String,
    pool: mysql_async::Pool,
}

impl TestDb {
    pub async fn create(name: &str) -> TestDb {
        let db = format!("btu_test_daemon_{name}{}", db_tag());
        let pool = mysql_async::Pool::new(MARIADB_URL);
        let mut conn = pool
            .get_conn()
            .await
            .unwrap_or_else(|e| panic!("MariaDB must run on 127.0.0.1:3306 (root, no password): {e}"));
        conn.query_drop(format!("DROP DATABASE IF EXISTS `{db}`")).await.expect("drop db");
        conn.query_drop(format!("CREATE DATABASE `{db}` CHARACTER SET utf8mb4")).await.expect("create db");
        conn.query_drop(format!("USE `{db}`")).await.expect("use db");
        let sql_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/sql");
        for file in ["schema.sql", "sample-data.sql"] {
            let sql = std::fs::read_to_string(sql_dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            conn.query_drop(sql).await.unwrap_or_else(|e| panic!("{file}: {e}"));
        }
        drop(conn);
        TestDb { name: db, pool }
    }

    /// Runs statements in this database.
    pub async fn exec(&self, sql: &str, params: impl Into<mysql_async::Params> + Send) {
        let mut conn = self.pool.get_conn().await.expect("conn");
        conn.query_drop(format!("USE `{}`", self.name)).await.expect("use");
        conn.exec_drop(sql, params).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub async fn drop_db(self) {
        let mut conn = self.pool.get_conn().await.expect("conn");
        conn.query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.name)).await.expect("drop");
        drop(conn);
        let _ = self.pool.disconnect().await;
    }
}

/// A schedules-file site in a temp dir of its own: the Redis keys under `token`, the site
/// `<token>-file`, the queue `<token>q`.
pub struct FileSite {
    pub token: String,
    pub dir: PathBuf,
    pub site: String,
    pub queue: String,
}

impl FileSite {
    /// A fresh site whose temp dir is named `<dir_prefix>-<token>`.
    pub fn new(dir_prefix: &str) -> FileSite {
        let token = token();
        let dir = std::env::temp_dir().join(format!("{dir_prefix}-{token}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        FileSite { site: format!("{token}-file"), queue: format!("{token}q"), token, dir }
    }

    /// Replaces the schedules file.
    pub fn write(&self, schedules: &str) {
        std::fs::write(self.dir.join("schedules.toml"), schedules).expect("write schedules");
    }

    /// A daemon configuration reading this site's file in `mode` (`plain` or `frappe`).
    pub fn config(&self, mode: &str) -> Config {
        config(
            &self.token,
            &format!(
                "[file]\npath = \"{}\"\nsite = \"{}\"\nmode = \"{mode}\"\n",
                self.dir.join("schedules.toml").display(),
                self.site
            ),
        )
    }

    pub async fn cleanup(self) {
        cleanup_redis(&self.token).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Configuration text with a private rq key prefix and Redis db 11.
pub fn config(token: &str, body: &str) -> Config {
    let text = format!(
        "[daemon]\nmissed_run_grace_secs = 300\n[redis]\nurl = \"{}\"\nkey_prefix = \"{token}rq\"\n{body}",
        redis_url()
    );
    Config::parse(&text, Path::new("/tmp/btu-daemon-test.toml")).expect("test config")
}

pub fn start(config: &Config) -> (EngineHandle, tokio::task::JoinHandle<()>) {
    let (engine, handle) = Engine::new(EngineOptions::from_config(config), Source::all_from_config(config));
    (handle, tokio::spawn(engine.run()))
}

pub async fn stop(handle: EngineHandle, task: tokio::task::JoinHandle<()>) {
    handle.shutdown().await;
    tokio::time::timeout(Duration::from_secs(30), task).await.expect("engine stops").expect("engine task");
}

/// Waits (bounded) until `check` is true.
pub async fn wait_for<F: AsyncFnMut() -> bool>(what: &str, secs: u64, mut check: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out after {secs} s waiting for {what}");
}

/// Waits until the engine has connected to Redis and loaded every source.
pub async fn ready(handle: &EngineHandle) {
    wait_for("engine ready", 20, async || {
        let st = handle.status().await.expect("status");
        st.redis_up && st.sites.iter().all(|s| s.source_ok.is_some()) && st.last_rebuild.is_some()
    })
    .await;
}
