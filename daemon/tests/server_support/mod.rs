//! Shared set-up for the socket-server tests: a real engine over a schedules file, real Redis
//! (db 12, every key under a per-test token, deleted at the end) and the real server on a
//! socket in a temporary directory. A missing Redis fails the test with a clear message.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use btu::config::Config;
use btu::engine::{Engine, EngineHandle, EngineOptions};
use btu::server::{self, Context, ServerOptions};
use btu::source::Source;
use btu_protocol::{self as proto, Request, RequestEnvelope, Response, ResponseEnvelope};
use redis::AsyncCommands;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[path = "../test_token/mod.rs"]
mod test_token;

/// Redis db 12 on 127.0.0.1, port `$BTU_TEST_REDIS_PORT` (default 6379), so that two
/// checkouts can run the suites side by side.
pub fn redis_url() -> String {
    let port: u16 = std::env::var("BTU_TEST_REDIS_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(6379);
    format!("redis://127.0.0.1:{port}/12")
}

pub fn token() -> String {
    test_token::token("srv")
}

/// A fresh temporary directory (removed by [`TestServer::stop`]).
pub fn temp_dir(token: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("btu_test_server_{token}"));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Three schedules: two firing every second (so "still fires" is quick to see), one daily.
pub const SCHEDULES: &str = r#"
[[schedule]]
id = "every-second"
function = "tasks.tick"
cron = "* * * * * *"
zone = "Europe/Berlin"

[[schedule]]
id = "every-second-b"
function = "tasks.tock"
cron = "* * * * * *"
zone = "UTC"

[[schedule]]
id = "daily"
function = "tasks.daily"
cron = "30 1 * * *"
zone = "Europe/Berlin"
task = "BTU-TASK-1"

[[schedule]]
id = "off"
function = "tasks.off"
cron = "* * * * *"
enabled = false

[[schedule]]
id = "broken"
function = "tasks.broken"
cron = "61 * * * *"
"#;

pub struct TestServer {
    pub token: String,
    pub site: String,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub schedules_path: PathBuf,
    pub handle: EngineHandle,
    stop_server: Option<oneshot::Sender<()>>,
    server_task: Option<JoinHandle<()>>,
    engine_task: Option<JoinHandle<()>>,
}

pub fn config_text(dir: &Path, token: &str) -> String {
    format!(
        r#"
[daemon]
socket_path = "{dir}/btu.sock"
[redis]
url = "{redis_url}"
key_prefix = "{token}rq"
[file]
path = "{dir}/schedules.toml"
site = "{token}.site"
mode = "plain"
"#,
        dir = dir.display(),
        redis_url = redis_url()
    )
}

impl TestServer {
    /// Starts engine + server with [`SCHEDULES`]; `tune` may change the server options.
    pub async fn start(tune: impl FnOnce(&mut ServerOptions)) -> TestServer {
        Self::start_with(SCHEDULES, tune).await
    }

    pub async fn start_with(schedules: &str, tune: impl FnOnce(&mut ServerOptions)) -> TestServer {
        check_redis().await;
        let token = token();
        let dir = temp_dir(&token);
        let schedules_path = dir.join("schedules.toml");
        std::fs::write(&schedules_path, schedules).expect("write schedules");
        let cfg_path = dir.join("btu.toml");
        let config = Config::parse(&config_text(&dir, &token), &cfg_path).expect("test config");
        let mut opts = ServerOptions::from_config(&config);
        tune(&mut opts);
        let bound = server::bind(opts).await.expect("bind the test socket");
        let socket = bound.socket_path().to_path_buf();
        let (engine, handle) = Engine::new(EngineOptions::from_config(&config), Source::all_from_config(&config));
        let engine_task = tokio::spawn(engine.run());
        let ctx = Arc::new(Context::from_config(handle.clone(), &config));
        let (stop_server, stopped) = oneshot::channel::<()>();
        let server_task = tokio::spawn(bound.run(ctx, async move {
            let _ = stopped.await;
        }));
        let server = TestServer {
            site: format!("{token}.site"),
            token,
            dir,
            socket,
            schedules_path,
            handle,
            stop_server: Some(stop_server),
            server_task: Some(server_task),
            engine_task: Some(engine_task),
        };
        server.wait_loaded().await;
        server
    }

    /// Waits until the engine planned the schedules file (Redis connected, first load done).
    pub async fn wait_loaded(&self) {
        for _ in 0..200 {
            if let Ok(s) = self.handle.status().await
                && s.redis_up
                && s.sites.iter().all(|x| x.source_ok == Some(true) && x.planned > 0)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the engine did not load the test schedules within 10 s");
    }

    pub async fn call(&self, request: Request) -> Response {
        call(&self.socket, request).await
    }

    /// Stops server and engine, deletes the test's Redis keys and files.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop_server.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.server_task.take() {
            t.await.expect("server task");
        }
        self.handle.shutdown().await;
        if let Some(t) = self.engine_task.take() {
            t.await.expect("engine task");
        }
        cleanup_redis(&self.token).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub async fn check_redis() {
    if let Err(e) = btu::rq::connect(&redis_url()).await {
        panic!("Redis must run on 127.0.0.1:6379 for the server tests: {e}");
    }
}

pub async fn cleanup_redis(token: &str) {
    let mut conn = btu::rq::connect(&redis_url()).await.expect("redis");
    let keys: Vec<String> = conn.keys(format!("*{token}*")).await.expect("KEYS");
    if !keys.is_empty() {
        let _: () = conn.del(keys).await.expect("DEL");
    }
}

/// One request on a fresh connection.
pub async fn call(socket: &Path, request: Request) -> Response {
    let mut stream = UnixStream::connect(socket).await.unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
    call_on(&mut stream, 1, request).await
}

/// One request on an open connection; checks the envelope.
pub async fn call_on(stream: &mut UnixStream, id: u64, request: Request) -> Response {
    let framed = proto::encode_request(&RequestEnvelope::new(id, request)).expect("encode");
    stream.write_all(&framed).await.expect("write request");
    let reply = read_response(stream).await.expect("a response frame");
    assert_eq!(reply.id, id, "response id");
    reply.response
}

/// Reads one response frame (10 s at most); `None` when the daemon closed the connection.
pub async fn read_response(stream: &mut UnixStream) -> Option<ResponseEnvelope> {
    let read = async {
        let mut header = [0u8; 4];
        if stream.read_exact(&mut header).await.is_err() {
            return None;
        }
        let len = proto::decode_frame_len(header, proto::MAX_FRAME_LEN).expect("daemon frame header");
        let mut body = vec![0; len];
        stream.read_exact(&mut body).await.expect("daemon frame body");
        Some(proto::decode_response(&body).expect("daemon response decodes"))
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.expect("the daemon answers within 10 s")
}

/// True when the daemon closed the connection (EOF within 10 s).
pub async fn closed_by_daemon(stream: &mut UnixStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await, Ok(Ok(0)) | Ok(Err(_)))
}

pub fn vector(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors").join(format!("{name}.hex"));
    let hex = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let hex = hex.trim();
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect()
}

/// Number of runs the engine recorded for a schedule (its history list).
pub async fn fired(handle: &EngineHandle, schedule: &str) -> usize {
    handle.history(None, schedule, 1000).await.map(|h| h.len()).unwrap_or(0)
}
