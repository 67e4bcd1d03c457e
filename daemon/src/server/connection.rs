//! One client connection: reads length-prefixed frames with a per-frame and an idle timeout,
//! answers each request, and hands a connection whose first byte is `{` to [`super::legacy`].
//!
//! Every way a connection can go wrong ends in one log line (fields: peer, requests served,
//! error) and, when the stream still allows it, a typed error answer — never a panic, and never
//! anything that affects other connections.

use std::sync::Arc;
use std::time::Duration;

use btu_protocol::{self as proto, ErrorCode, FRAME_HEADER_LEN, ProtocolError, RequestEnvelope, ResponseEnvelope};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::time::{Instant, timeout, timeout_at};
use tracing::{debug, info, warn};

use super::{Context, ServerOptions, legacy};

/// The connecting process, from SO_PEERCRED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

/// Why a connection ended other than by the client closing it between requests.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
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
}

/// Serves one connection to its end and logs how it ended.
pub async fn serve(stream: UnixStream, ctx: Arc<Context>, opts: Arc<ServerOptions>, peer: Peer, permitted: bool) {
    let mut conn = Connection { io: BufReader::with_capacity(8 * 1024, stream), opts, ctx, peer, permitted, served: 0 };
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

pub(super) struct Connection {
    pub(super) io: BufReader<UnixStream>,
    pub(super) opts: Arc<ServerOptions>,
    pub(super) ctx: Arc<Context>,
    pub(super) peer: Peer,
    permitted: bool,
    served: u64,
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]).await? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

impl Connection {
    async fn run(&mut self) -> Result<(), ConnectionError> {
        loop {
            let mut header = [0u8; FRAME_HEADER_LEN];
            let first = match timeout(self.opts.idle_timeout, self.io.read(&mut header[..1])).await {
                Err(_) => return Err(ConnectionError::Idle(self.opts.idle_timeout)),
                Ok(n) => n?,
            };
            if first == 0 {
                return Ok(()); // the client hung up between requests: the normal end
            }
            let deadline = Instant::now() + self.opts.frame_timeout;
            if self.served == 0 && proto::is_legacy_start(header[0]) {
                return legacy::serve(self, header[0], deadline).await;
            }
            let body = match self.read_frame(&mut header, deadline).await {
                Ok(body) => body,
                Err(e) => {
                    // Answer what can be answered; the stream is out of step now, so close.
                    let code = match &e {
                        ConnectionError::Frame(p) => Some((p.code(), p.to_string())),
                        ConnectionError::SlowFrame { .. } | ConnectionError::Truncated { .. } => {
                            Some((ErrorCode::Malformed, e.to_string()))
                        }
                        _ => None,
                    };
                    if let Some((code, message)) = code {
                        // The client may be gone already; the original error is what we report.
                        let _ = self.write(&ResponseEnvelope::error(0, code, message)).await;
                    }
                    return Err(e);
                }
            };
            self.served += 1;
            let reply = match proto::decode_request(&body) {
                Ok(env) if !self.permitted => {
                    let e = ConnectionError::Denied { uid: self.peer.uid, gid: self.peer.gid };
                    let _ = self
                        .write(&ResponseEnvelope::error(env.id, ErrorCode::Internal, format!("permission denied: {e}")))
                        .await;
                    return Err(e);
                }
                Ok(RequestEnvelope { id, request, .. }) => {
                    debug!(peer_uid = self.peer.uid, request = request.kind(), id, "request");
                    ResponseEnvelope::new(id, self.ctx.handle(request).await)
                }
                // The frame was read whole, so the stream is still in step: answer and go on.
                Err(e) => {
                    let id = proto::peek_request_id(&body).unwrap_or(0);
                    info!(peer_uid = self.peer.uid, peer_pid = ?self.peer.pid, id, error = %e, "undecodable request answered with an error");
                    ResponseEnvelope::from_protocol_error(id, &e)
                }
            };
            self.write(&reply).await?;
        }
    }

    /// Reads the rest of a frame whose first header byte is in `header[0]`.
    async fn read_frame(
        &mut self,
        header: &mut [u8; FRAME_HEADER_LEN],
        deadline: Instant,
    ) -> Result<Vec<u8>, ConnectionError> {
        let frame_timeout = self.opts.frame_timeout;
        let got = match timeout_at(deadline, read_full(&mut self.io, &mut header[1..])).await {
            Err(_) => return Err(ConnectionError::SlowFrame { timeout: frame_timeout, received: 1 }),
            Ok(n) => n?,
        };
        if got < FRAME_HEADER_LEN - 1 {
            return Err(ConnectionError::Truncated { received: 1 + got, expected: FRAME_HEADER_LEN });
        }
        let len = proto::decode_frame_len(*header, self.opts.max_frame_len).map_err(ConnectionError::Frame)?;
        // Grow the buffer as bytes arrive instead of allocating what the prefix announces:
        // many clients announcing 1 MiB and sending nothing must not cost 1 MiB each.
        let mut body = Vec::with_capacity(len.min(64 * 1024));
        let read = async {
            let mut limited = (&mut self.io).take(len as u64);
            limited.read_to_end(&mut body).await
        };
        let got = match timeout_at(deadline, read).await {
            Err(_) => {
                return Err(ConnectionError::SlowFrame {
                    timeout: frame_timeout,
                    received: FRAME_HEADER_LEN + body.len(),
                });
            }
            Ok(n) => n?,
        };
        if got < len {
            return Err(ConnectionError::Truncated {
                received: FRAME_HEADER_LEN + got,
                expected: FRAME_HEADER_LEN + len,
            });
        }
        Ok(body)
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

    pub(super) async fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        let stream = self.io.get_mut();
        match timeout(self.opts.write_timeout, stream.write_all(bytes)).await {
            Err(_) => Err(ConnectionError::WriteTimeout(self.opts.write_timeout)),
            Ok(r) => Ok(r?),
        }
    }

    pub(super) fn permitted(&self) -> bool {
        self.permitted
    }
}
