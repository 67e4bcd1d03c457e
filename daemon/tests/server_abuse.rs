//! Bad input against the running server (real engine + Redis): garbage, truncated frames, absurd
//! length prefixes, wrong versions, unknown requests, slow and silent clients, 500 concurrent
//! clients. Each gets a typed error or a timeout, and afterwards the daemon still answers and
//! every schedule still fires.

mod server_support;

use std::sync::Arc;
use std::time::Duration;

use btu_protocol::{self as proto, ErrorCode, Request, Response};
use server_support::{TestServer, call, call_on, closed_by_daemon, fired, read_response, vector};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

/// A tiny deterministic generator (xorshift64*): reproducible garbage without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn error_of(r: &proto::ResponseEnvelope) -> (ErrorCode, String) {
    match &r.response {
        Response::Error(e) => (e.code, e.message.clone()),
        other => panic!("expected an error answer, got {other:?}"),
    }
}

async fn still_fires(srv: &TestServer) {
    let a = fired(&srv.handle, "every-second").await;
    let b = fired(&srv.handle, "every-second-b").await;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if fired(&srv.handle, "every-second").await > a && fired(&srv.handle, "every-second-b").await > b {
            return;
        }
    }
    panic!("the every-second schedules stopped firing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_typed_errors_and_the_daemon_keeps_serving() {
    let srv = TestServer::start(|_| {}).await;

    // Wrong version: answered in the daemon's version with the frozen error shape; the frame was
    // read whole, so the same connection keeps working.
    let mut s = UnixStream::connect(&srv.socket).await.expect("connect");
    s.write_all(&vector("request_ping_v3")).await.expect("send");
    let r = read_response(&mut s).await.expect("answer");
    assert_eq!((r.v, r.id), (proto::PROTOCOL_VERSION, 11));
    assert_eq!(
        error_of(&r),
        (ErrorCode::UnsupportedVersion, "protocol version mismatch: client speaks 3, daemon speaks 2".into())
    );
    assert!(matches!(call_on(&mut s, 12, Request::Ping).await, Response::Pong(_)));
    // A client of the previous version (1) is refused the same way, never misread.
    s.write_all(&vector("request_ping_v1")).await.expect("send");
    let r = read_response(&mut s).await.expect("answer");
    assert_eq!(
        error_of(&r),
        (ErrorCode::UnsupportedVersion, "protocol version mismatch: client speaks 1, daemon speaks 2".into())
    );
    assert!(matches!(call_on(&mut s, 13, Request::Ping).await, Response::Pong(_)));

    // Unknown request type, a non-map body, garbage msgpack: malformed, connection still usable.
    #[derive(serde::Serialize)]
    struct Odd {
        v: u32,
        id: u64,
        r#type: &'static str,
    }
    let odd = proto::frame_body(
        &proto::encode_body(&Odd { v: proto::PROTOCOL_VERSION, id: 5, r#type: "reboot" }).expect("enc"),
        1 << 20,
    )
    .expect("frame");
    s.write_all(&odd).await.expect("send");
    let r = read_response(&mut s).await.expect("answer");
    assert_eq!(r.id, 5, "the id is echoed even when the type is unknown");
    assert_eq!(error_of(&r).0, ErrorCode::Malformed);
    for body in [vec![0xc1u8], vec![0x93, 1, 2, 3], vec![0x81, 0xa1, b'v', 0x01, 0xff]] {
        s.write_all(&proto::frame_body(&body, 1 << 20).expect("frame")).await.expect("send");
        let r = read_response(&mut s).await.expect("answer");
        assert_eq!(error_of(&r).0, ErrorCode::Malformed, "{body:?}");
    }
    assert!(matches!(call_on(&mut s, 13, Request::Status).await, Response::Status(_)));

    // Absurd length prefix: frame_too_large, then closed without reading the body.
    let mut s = UnixStream::connect(&srv.socket).await.expect("connect");
    s.write_all(&[0x7f, 0xff, 0xff, 0xff, 1, 2, 3]).await.expect("send");
    let r = read_response(&mut s).await.expect("answer");
    let (code, message) = error_of(&r);
    assert_eq!(code, ErrorCode::FrameTooLarge);
    assert!(message.contains("1048576"), "{message}");
    assert!(closed_by_daemon(&mut s).await);

    // Zero length: malformed, closed.
    let mut s = UnixStream::connect(&srv.socket).await.expect("connect");
    s.write_all(&[0, 0, 0, 0]).await.expect("send");
    assert_eq!(error_of(&read_response(&mut s).await.expect("answer")).0, ErrorCode::Malformed);
    assert!(closed_by_daemon(&mut s).await);

    // Truncated frame (body cut short, then the client half-closes) and truncated header.
    for bytes in [vec![0, 0, 0, 100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], vec![0, 0]] {
        let mut s = UnixStream::connect(&srv.socket).await.expect("connect");
        s.write_all(&bytes).await.expect("send");
        s.shutdown().await.expect("half-close");
        let r = read_response(&mut s).await.expect("answer");
        let (code, message) = error_of(&r);
        assert_eq!(code, ErrorCode::Malformed);
        assert!(message.contains("closed inside a frame"), "{message}");
    }

    // Random bytes, 300 rounds: every connection ends (answer or close), nothing hangs.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..300 {
        let len = 1 + (rng.next() % 96) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if round % 3 == 0 {
            // A plausible small header in front of random bytes reaches the body decoder.
            let body_len = (rng.next() % 64) as u32 + 1;
            bytes.splice(0..0, body_len.to_be_bytes());
        }
        let mut s = UnixStream::connect(&srv.socket).await.expect("connect");
        s.write_all(&bytes).await.expect("send");
        s.shutdown().await.expect("half-close");
        let mut sink = Vec::new();
        let end =
            tokio::time::timeout(Duration::from_secs(10), tokio::io::AsyncReadExt::read_to_end(&mut s, &mut sink))
                .await;
        assert!(end.is_ok(), "round {round}: the daemon neither answered nor closed for {bytes:02x?}");
    }

    assert!(matches!(call(&srv.socket, Request::Ping).await, Response::Pong(_)));
    still_fires(&srv).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_clients_time_out_without_blocking_others() {
    let srv = TestServer::start(|o| {
        o.frame_timeout = Duration::from_secs(1);
        o.idle_timeout = Duration::from_secs(2);
    })
    .await;

    // Slow: one header byte, then nothing. Silent: connects, sends nothing.
    let mut slow = UnixStream::connect(&srv.socket).await.expect("connect");
    slow.write_all(&[0]).await.expect("send");
    let mut silent = UnixStream::connect(&srv.socket).await.expect("connect");
    // Dribbling: a valid frame, one byte every 300 ms — too slow for a 1 s frame timeout.
    let ping = proto::encode_request(&proto::RequestEnvelope::new(1, Request::Ping)).expect("enc");
    let mut dribble = UnixStream::connect(&srv.socket).await.expect("connect");
    let dribbler = tokio::spawn(async move {
        for b in ping {
            if dribble.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        dribble
    });

    // Others are served meanwhile.
    for _ in 0..20 {
        assert!(matches!(call(&srv.socket, Request::Ping).await, Response::Pong(_)));
    }

    let r = read_response(&mut slow).await.expect("an answer to the slow client");
    let (code, message) = error_of(&r);
    assert_eq!(code, ErrorCode::Malformed);
    assert!(message.contains("not complete within"), "{message}");
    assert!(closed_by_daemon(&mut slow).await);
    assert!(closed_by_daemon(&mut silent).await, "idle connection closed");
    let mut dribble = dribbler.await.expect("dribbler");
    let r = read_response(&mut dribble).await.expect("an answer to the dribbler");
    assert!(error_of(&r).1.contains("not complete within"));

    assert!(matches!(call(&srv.socket, Request::Ping).await, Response::Pong(_)));
    still_fires(&srv).await;
    srv.stop().await;
}

/// Raises the soft open-files limit: 500 clients + 500 server ends exceed a 1024 default.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_clients() {
    raise_fd_limit();
    let srv = TestServer::start(|_| {}).await;
    const CLIENTS: usize = 500;
    // Every client connects first, then all ask at once: 500 connections open together.
    let barrier = Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let mut tasks = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let (socket, barrier) = (srv.socket.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = UnixStream::connect(&socket).await.map_err(|e| format!("client {i}: connect: {e}"))?;
            barrier.wait().await;
            let schedule = if i % 2 == 0 { "daily" } else { "every-second" };
            let r = call_on(&mut s, 1, Request::Notify { schedules: vec![schedule.into()], site: None }).await;
            let Response::Notified(n) = r else { return Err(format!("client {i}: notify answered {r:?}")) };
            if !n.results[0].runs {
                return Err(format!("client {i}: {:?}", n.results[0]));
            }
            match call_on(&mut s, 2, Request::Ping).await {
                Response::Pong(_) => Ok(()),
                other => Err(format!("client {i}: ping answered {other:?}")),
            }
        }));
    }
    let mut failures = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e),
            Err(e) => failures.push(format!("client task: {e}")),
        }
    }
    assert!(failures.is_empty(), "{} of {CLIENTS} clients failed, first: {:?}", failures.len(), failures.first());

    assert!(matches!(call(&srv.socket, Request::Ping).await, Response::Pong(_)));
    let Response::Status(s) = call(&srv.socket, Request::Status).await else { panic!("status") };
    assert_eq!(s.sites[0].schedules, 3);
    still_fires(&srv).await;
    srv.stop().await;
}
