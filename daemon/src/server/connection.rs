//! One client connection, and all of its socket I/O: reads bytes under an idle and a frame
//! timeout, splits them into frames with `btu_protocol::FrameReader` — or, when the first byte
//! is `{`, reads one legacy JSON request whole — gets the answer from [`super::handler`] (a
//! frame) or [`super::legacy`] (a legacy request) and writes it back.
//!
//! Every way a connection can go wrong ends in one log line (fields: peer, requests served,
//! error) and, when the stream still allows it, a typed error answer — never a panic, and never
//! anything that affects other connections.

use std::sync::Arc;
use std::time::Duration;

use btu_protocol::{
    self as proto, ErrorCode, FrameReader, LegacyRequest, ProtocolError, RequestEnvelope, ResponseEnvelope,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::time::{Instant, timeout, timeout_at};
use tracing::{debug, info, warn};

use super::handler::Context;
use super::legacy;
use super::options::ServerOptions;
use crate::engine::Caller;

/// The connecting process, from SO_PEERCRED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Peer {
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) pid: Option<i32>,
}

impl Peer {
    /// The peer as the audit trail records it.
    pub(super) fn caller(&self) -> Caller {
        Caller { uid: Some(self.uid), pid: self.pid }
    }
}

/// Why a connection ended other than by the client closing it between requests.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error("no request within the idle timeout of {0:?}")]
    Idle(Duration),
    #[error("frame not complete within {timeout:?} ({received} bytes received)")]
    SlowFrame { timeout: Duration, received: usize },
    #[error("connection closed inside a frame ({received} of {expected} bytes)")]
    Truncated { received: usize, expected: usize },
    #[error("{0}")]
    Frame(ProtocolError),
    #[error("answer not taken by the client within {0:?}")]
    WriteTimeout(Duration),
    #[error("peer uid {uid} gid {gid} is not in allowed_uids/allowed_gids")]
    Denied { uid: u32, gid: u32 },
    /// A legacy request that cannot be read: it gets no answer, as from the original daemon.
    #[error("legacy request: {0}")]
    Legacy(String),
    #[error("socket I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

impl ConnectionError {
    /// Timeouts and hang-ups are normal life on a socket; the rest means a broken client.
    fn is_routine(&self) -> bool {
        matches!(self, ConnectionError::Idle(_))
    }

    /// The error answer a framed client gets before the connection closes, when there is one:
    /// the stream is out of step after a bad frame, so the answer cannot name a request id.
    fn answer(&self) -> Option<ResponseEnvelope> {
        match self {
            ConnectionError::Frame(p) => Some(ResponseEnvelope::from_protocol_error(0, p)),
            ConnectionError::SlowFrame { .. } | ConnectionError::Truncated { .. } => {
                Some(ResponseEnvelope::error(0, ErrorCode::Malformed, self.to_string()))
            }
            _ => None,
        }
    }
}

/// What arrived on a connection: a whole frame body, or (first thing on a connection only) a
/// whole legacy JSON request.
enum Incoming {
    Frame(Vec<u8>),
    Legacy(LegacyRequest),
}

/// Bytes asked of the socket per read: a request is ~100 bytes, a big notify a few KiB.
const READ_CHUNK: usize = 8 * 1024;

/// Serves one connection to its end and logs how it ended.
pub(super) async fn serve(
    stream: UnixStream,
    ctx: Arc<Context>,
    opts: Arc<ServerOptions>,
    peer: Peer,
    permitted: bool,
) {
    let mut conn = Connection {
        frames: FrameReader::new(opts.max_frame_len),
        chunk: vec![0; READ_CHUNK].into_boxed_slice(),
        stream,
        opts,
        ctx,
        peer,
        permitted,
        served: 0,
    };
    match conn.run().await {
        Ok(()) => debug!(peer_uid = peer.uid, peer_pid = ?peer.pid, requests = conn.served, "connection closed"),
        Err(e) if e.is_routine() => {
            info!(peer_uid = peer.uid, peer_pid = ?peer.pid, requests = conn.served, error = %e, "connection closed")
        }
        Err(e) => {
            warn!(peer_uid = peer.uid, peer_pid = ?peer.pid, requests = conn.served, error = %e, "connection ended on an error")
        }
    }
}

struct Connection {
    stream: UnixStream,
    /// Bytes received but not yet taken as a frame (a pipelining client may send ahead).
    frames: FrameReader,
    /// Read buffer, reused for every read of this connection.
    chunk: Box<[u8]>,
    opts: Arc<ServerOptions>,
    ctx: Arc<Context>,
    peer: Peer,
    permitted: bool,
    served: u64,
}

impl Connection {
    async fn run(&mut self) -> Result<(), ConnectionError> {
        loop {
            let incoming = match self.next_incoming().await {
                Ok(Some(incoming)) => incoming,
                Ok(None) => return Ok(()), // the client hung up between requests: the normal end
                Err(e) => {
                    if let Some(answer) = e.answer() {
                        // The client may be gone already; the original error is what we report.
                        let _ = self.write(&answer).await;
                    }
                    return Err(e);
                }
            };
            match incoming {
                Incoming::Frame(body) => self.answer_frame(&body).await?,
                Incoming::Legacy(request) => return self.answer_legacy(&request).await,
            }
        }
    }

    /// The next request: `None` when the client closed the connection between requests.
    async fn next_incoming(&mut self) -> Result<Option<Incoming>, ConnectionError> {
        // Between requests only the idle timeout applies; a request sent ahead is already here.
        if self.frames.buffered() == 0 {
            let read = match timeout(self.opts.idle_timeout, self.fill()).await {
                Err(_) => return Err(ConnectionError::Idle(self.opts.idle_timeout)),
                Ok(n) => n?,
            };
            if read == 0 {
                return Ok(None);
            }
        }
        // From a request's first byte on, the whole of it must arrive within the frame timeout.
        let deadline = Instant::now() + self.opts.frame_timeout;
        if self.served == 0 && self.frames.first_byte().is_some_and(proto::is_legacy_start) {
            return Ok(Some(Incoming::Legacy(self.read_legacy(deadline).await?)));
        }
        loop {
            if let Some(body) = self.frames.next_frame().map_err(ConnectionError::Frame)? {
                return Ok(Some(Incoming::Frame(body)));
            }
            let read = match timeout_at(deadline, self.fill()).await {
                Err(_) => {
                    let received = self.frames.buffered();
                    return Err(ConnectionError::SlowFrame { timeout: self.opts.frame_timeout, received });
                }
                Ok(n) => n?,
            };
            if read == 0 {
                let (received, expected) = self.frames.progress();
                return Err(ConnectionError::Truncated { received, expected });
            }
        }
    }

    /// Reads once from the socket into the frame reader; 0 at the end of the stream.
    async fn fill(&mut self) -> std::io::Result<usize> {
        let n = self.stream.read(&mut self.chunk).await?;
        self.frames.push(&self.chunk[..n]);
        Ok(n)
    }

    /// Reads a legacy request whose first bytes are buffered. The BTU app neither terminates
    /// nor half-closes it, so it is parsed as soon as the JSON object is complete.
    async fn read_legacy(&mut self, deadline: Instant) -> Result<LegacyRequest, ConnectionError> {
        let mut bytes = self.frames.take_buffered();
        loop {
            match proto::parse_legacy(&bytes) {
                Ok(request) => return Ok(request),
                Err(ProtocolError::Truncated { .. }) => {}
                // Bad JSON, a missing schedule id, too long: the original closed without a word.
                Err(e) => return Err(ConnectionError::Legacy(e.to_string())),
            }
            let n = match timeout_at(deadline, self.stream.read(&mut self.chunk)).await {
                Err(_) => {
                    return Err(ConnectionError::Legacy(format!(
                        "not complete within {:?} ({} bytes received)",
                        self.opts.frame_timeout,
                        bytes.len()
                    )));
                }
                Ok(n) => n?,
            };
            if n == 0 {
                return Err(ConnectionError::Legacy(format!(
                    "connection closed after {} bytes of an incomplete JSON request",
                    bytes.len()
                )));
            }
            bytes.extend_from_slice(&self.chunk[..n]);
        }
    }

    /// Decodes one frame, answers it. A frame read whole keeps the stream in step, so an
    /// undecodable one is answered with an error and the connection goes on.
    async fn answer_frame(&mut self, body: &[u8]) -> Result<(), ConnectionError> {
        self.served += 1;
        let reply = match proto::decode_request(body) {
            Ok(env) if !self.permitted => {
                let e = ConnectionError::Denied { uid: self.peer.uid, gid: self.peer.gid };
                let _ = self
                    .write(&ResponseEnvelope::error(env.id, ErrorCode::Internal, format!("permission denied: {e}")))
                    .await;
                return Err(e);
            }
            Ok(RequestEnvelope { id, request, .. }) => {
                debug!(peer_uid = self.peer.uid, request = request.kind(), id, "request");
                ResponseEnvelope::new(id, self.ctx.handle(request, self.peer.caller()).await)
            }
            Err(e) => {
                let id = proto::peek_request_id(body).unwrap_or(0);
                info!(peer_uid = self.peer.uid, peer_pid = ?self.peer.pid, id, error = %e, "undecodable request answered with an error");
                ResponseEnvelope::from_protocol_error(id, &e)
            }
        };
        self.write(&reply).await
    }

    /// Answers a legacy request in plain text and ends the connection, as the original did.
    async fn answer_legacy(&mut self, request: &LegacyRequest) -> Result<(), ConnectionError> {
        let started = std::time::Instant::now();
        let text = if self.permitted {
            legacy::answer(&self.ctx, request, self.peer.caller()).await
        } else {
            legacy::denied(self.peer.uid)
        };
        self.ctx.count("legacy", if self.permitted { "ok" } else { "denied" }, started.elapsed());
        info!(peer_uid = self.peer.uid, peer_pid = ?self.peer.pid, request = ?request, answer = %text, "legacy request answered");
        self.write_bytes(text.as_bytes()).await?;
        // Shut down our side so a client reading until EOF stops at once.
        if let Err(e) = self.stream.shutdown().await {
            debug!(error = %e, "shutdown after a legacy answer failed (client already gone)");
        }
        if !self.permitted {
            return Err(ConnectionError::Denied { uid: self.peer.uid, gid: self.peer.gid });
        }
        Ok(())
    }

    /// Writes one response frame within the write timeout. An answer too big for the frame
    /// limit becomes an `internal` error saying so (e.g. ask for fewer upcoming runs).
    async fn write(&mut self, reply: &ResponseEnvelope) -> Result<(), ConnectionError> {
        let framed = match proto::encode_response_with_limit(reply, self.opts.max_frame_len) {
            Ok(f) => f,
            Err(e) => {
                let fallback = ResponseEnvelope::error(
                    reply.id,
                    ErrorCode::Internal,
                    format!("the answer is too large to send: {e}"),
                );
                proto::encode_response_with_limit(&fallback, self.opts.max_frame_len).map_err(ConnectionError::Frame)?
            }
        };
        self.write_bytes(&framed).await
    }

    async fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        match timeout(self.opts.write_timeout, self.stream.write_all(bytes)).await {
            Err(_) => Err(ConnectionError::WriteTimeout(self.opts.write_timeout)),
            Ok(r) => Ok(r?),
        }
    }
}
