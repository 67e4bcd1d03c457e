//! Socket-server benchmarks against a RUNNING daemon (start it with
//! `tests/bench/server_bench.py`, which also runs this):
//!
//! - notify throughput: `BTU_BENCH_CONNS` connections (default 8), each sending notify requests
//!   back to back for `BTU_BENCH_SECS` seconds (default 5); every notify re-reads the schedule
//!   from its source (MariaDB in the driver script). Ping throughput alongside, for the
//!   server's own overhead. All connections name the same schedule (`BTU_BENCH_SCHEDULE`);
//!   with `BTU_BENCH_SCHEDULES` (comma-separated) once more, connection i naming the i-th, so
//!   that coalesced notifies read distinct ids (`IN (...)` of several) rather than one.
//! - `BTU_BENCH_HOLD` (default 1000) connections opened and held at once, each answered twice.
//!
//! ```sh
//! BTU_BENCH_SOCKET=/tmp/bench.sock BTU_BENCH_SCHEDULE=TS-000001 cargo bench -p btu-daemon --bench server_notify
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use btu_protocol::{self as proto, Request, RequestEnvelope, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn call(s: &mut UnixStream, id: u64, framed: &[u8]) -> Result<Response, String> {
    s.write_all(framed).await.map_err(|e| format!("write: {e}"))?;
    let mut header = [0u8; 4];
    s.read_exact(&mut header).await.map_err(|e| format!("read header: {e}"))?;
    let len = proto::decode_frame_len(header, proto::MAX_FRAME_LEN).map_err(|e| e.to_string())?;
    let mut body = vec![0; len];
    s.read_exact(&mut body).await.map_err(|e| format!("read body: {e}"))?;
    let env = proto::decode_response(&body).map_err(|e| e.to_string())?;
    if env.id != id {
        return Err(format!("id {} answered for {id}", env.id));
    }
    Ok(env.response)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `conns` connections sending requests back to back for `secs` (connection i sends
/// `requests[i % len]`); prints rate and latencies.
async fn throughput(socket: &Path, label: &str, requests: &[Request], conns: usize, secs: f64) {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for (_, request) in (0..conns).zip(requests.iter().cycle()) {
        let (socket, request) = (socket.to_path_buf(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = UnixStream::connect(&socket).await.map_err(|e| format!("connect: {e}"))?;
            let framed = proto::encode_request(&RequestEnvelope::new(1, request)).map_err(|e| e.to_string())?;
            let mut lat = Vec::with_capacity(100_000);
            while Instant::now() < deadline {
                let t = Instant::now();
                match call(&mut s, 1, &framed).await? {
                    Response::Error(e) => return Err(format!("daemon error: {}", e.message)),
                    _ => lat.push(t.elapsed()),
                }
            }
            Ok::<_, String>(lat)
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(lat)) => all.extend(lat),
            Ok(Err(e)) => {
                eprintln!("{label}: a client failed: {e}");
                std::process::exit(1);
            }
            Err(e) => {
                eprintln!("{label}: client task: {e}");
                std::process::exit(1);
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    println!(
        "{label}: {} requests over {conns} connections in {elapsed:.2} s = {:.0}/s; latency p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        all.len(),
        all.len() as f64 / elapsed,
        percentile(&all, 0.50).as_secs_f64() * 1e3,
        percentile(&all, 0.99).as_secs_f64() * 1e3,
        all.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

/// Opens `n` connections, pings on each, keeps them all open, pings on each again.
async fn hold(socket: &Path, n: usize) {
    let started = Instant::now();
    let ping = match proto::encode_request(&RequestEnvelope::new(1, Request::Ping)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("encode: {e}");
            std::process::exit(1);
        }
    };
    let mut conns = Vec::with_capacity(n);
    let mut failed = 0usize;
    // Open in batches of 100 concurrent connects (a burst bigger than the backlog is a client
    // problem, not what this measures).
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let mut tasks = Vec::new();
        for _ in chunk {
            let (socket, ping) = (socket.to_path_buf(), ping.clone());
            tasks.push(tokio::spawn(async move {
                let mut s = UnixStream::connect(&socket).await.map_err(|e| e.to_string())?;
                call(&mut s, 1, &ping).await?;
                Ok::<_, String>(s)
            }));
        }
        for t in tasks {
            match t.await {
                Ok(Ok(s)) => conns.push(s),
                Ok(Err(e)) => {
                    failed += 1;
                    if failed == 1 {
                        eprintln!("hold: first failure: {e}");
                    }
                }
                Err(_) => failed += 1,
            }
        }
    }
    let opened = started.elapsed();
    let t = Instant::now();
    let mut tasks = Vec::new();
    for mut s in conns {
        let ping = ping.clone();
        tasks.push(tokio::spawn(async move { call(&mut s, 1, &ping).await.map(|_| s) }));
    }
    let mut held = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(s)) => held.push(s),
            _ => failed += 1,
        }
    }
    println!(
        "hold: {} of {n} connections open at once and answered twice ({failed} failed); opened+pinged in {:.0} ms, all pinged again in {:.0} ms",
        held.len(),
        opened.as_secs_f64() * 1e3,
        t.elapsed().as_secs_f64() * 1e3
    );
    drop(held);
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let Some(socket) = std::env::var_os("BTU_BENCH_SOCKET").map(PathBuf::from) else {
        eprintln!(
            "server_notify: set BTU_BENCH_SOCKET to a running daemon's socket (tests/bench/server_bench.py does)"
        );
        return;
    };
    let schedule: String = env_or("BTU_BENCH_SCHEDULE", "TS-000001".to_string());
    let distinct: Vec<String> =
        env_or("BTU_BENCH_SCHEDULES", String::new()).split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
    let conns: usize = env_or("BTU_BENCH_CONNS", 8);
    let secs: f64 = env_or("BTU_BENCH_SECS", 5.0);
    let hold_n: usize = env_or("BTU_BENCH_HOLD", 1000);
    let threads: usize = env_or("BTU_BENCH_CLIENT_THREADS", 1);
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(threads.max(1)).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Ok((_, hard)) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    }
    rt.block_on(async {
        let notify = |id: &String| Request::Notify { schedules: vec![id.clone()], site: None };
        throughput(&socket, "ping", &[Request::Ping], conns, secs).await;
        throughput(&socket, "notify", &[notify(&schedule)], conns, secs).await;
        if !distinct.is_empty() {
            let requests: Vec<Request> = distinct.iter().map(notify).collect();
            throughput(&socket, "notify(distinct ids)", &requests, conns, secs).await;
        }
        throughput(&socket, "notify(1 conn)", &[notify(&schedule)], 1, secs).await;
        hold(&socket, hold_n).await;
    });
}
