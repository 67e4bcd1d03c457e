//! The `btu` side of the daemon's socket: where the socket is, one blocking request/response
//! exchange over `btu-protocol`'s helpers, and errors that tell the user what to check.

use std::io::ErrorKind;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use btu_protocol::{self as proto, ErrorCode, ProtocolError, Request, RequestEnvelope, Response};

use crate::config::{Config, ConfigError, DEFAULT_SOCKET_PATH};

/// Environment variable naming the socket (the `btu_client` wheel reads the same one).
pub const SOCKET_ENV: &str = "BTU_SOCKET_PATH";

/// Why a request to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to btu-daemon at {path}: {reason} — is btu-daemon running? check socket_path", path = .path.display())]
    Unavailable { path: PathBuf, reason: String },
    #[error("btu-daemon at {path} did not answer within {secs} s (raise --timeout, or check the daemon's log)", path = .path.display())]
    Timeout { path: PathBuf, secs: f64 },
    #[error("talking to btu-daemon at {path}: {source}", path = .path.display())]
    Protocol { path: PathBuf, source: ProtocolError },
    /// The daemon answered with a typed error.
    #[error("btu-daemon refused: {message} [{code}]")]
    Daemon { code: ErrorCode, message: String },
    #[error("btu-daemon answered a {sent} request with '{got}'")]
    UnexpectedAnswer { sent: &'static str, got: &'static str },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The socket to use: `--socket` (or `$BTU_SOCKET_PATH`, which clap folds into it), else the
/// `socket_path` of the `--config` file, else the default `/tmp/btu_scheduler.sock`.
pub fn resolve_socket(explicit: Option<&Path>, config: Option<&Path>) -> Result<PathBuf, ClientError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(c) = config {
        return Ok(Config::load(c)?.daemon.socket_path);
    }
    Ok(PathBuf::from(DEFAULT_SOCKET_PATH))
}

/// A connection-per-call client of the daemon.
#[derive(Debug, Clone)]
pub struct Client {
    pub socket: PathBuf,
    pub timeout: Duration,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Client {
    pub fn new(socket: impl Into<PathBuf>, timeout: Duration) -> Self {
        Client { socket: socket.into(), timeout }
    }

    /// Sends `request`, returns the daemon's non-error answer.
    pub fn call(&self, request: Request) -> Result<Response, ClientError> {
        let mut stream = UnixStream::connect(&self.socket).map_err(|e| self.unavailable(e))?;
        // Both timeouts bound a blocked call: a daemon that accepted but never answers.
        stream.set_read_timeout(Some(self.timeout)).map_err(|e| self.unavailable(e))?;
        stream.set_write_timeout(Some(self.timeout)).map_err(|e| self.unavailable(e))?;
        let envelope = RequestEnvelope::new(NEXT_ID.fetch_add(1, Ordering::Relaxed), request);
        match proto::call(&mut stream, &envelope, proto::MAX_FRAME_LEN) {
            Ok(Response::Error(e)) => Err(ClientError::Daemon { code: e.code, message: e.message }),
            Ok(response) => Ok(response),
            Err(ProtocolError::Io(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(ClientError::Timeout { path: self.socket.clone(), secs: self.timeout.as_secs_f64() })
            }
            Err(ProtocolError::Closed) => Err(ClientError::Unavailable {
                path: self.socket.clone(),
                reason: "the daemon closed the connection without answering".into(),
            }),
            Err(source) => Err(ClientError::Protocol { path: self.socket.clone(), source }),
        }
    }

    fn unavailable(&self, e: std::io::Error) -> ClientError {
        let reason = match e.kind() {
            ErrorKind::NotFound => "No such file".to_string(),
            ErrorKind::ConnectionRefused => {
                "connection refused (a stale socket file: the daemon is not running)".to_string()
            }
            ErrorKind::PermissionDenied => {
                "permission denied (is your user in the socket's group, socket_file_group_owner?)".to_string()
            }
            ErrorKind::WouldBlock => "the daemon's connection queue is full".to_string(),
            _ => e.to_string(),
        };
        ClientError::Unavailable { path: self.socket.clone(), reason }
    }
}
