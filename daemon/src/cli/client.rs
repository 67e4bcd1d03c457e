//! The `btu` side of the daemon's socket: which socket to ask, and what to tell the user when
//! asking failed. The exchange itself is `btu_protocol::Client` (the same client the
//! `btu_client` wheel uses); this module only words its errors for a command line.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use btu_protocol::{self as proto, ErrorCode, ProtocolError};

use crate::config::{Config, ConfigError};

/// Why a `btu` subcommand could not get the daemon's answer.
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

impl From<proto::ClientError> for ClientError {
    fn from(e: proto::ClientError) -> Self {
        match e {
            proto::ClientError::Connect { path, source } => {
                let reason = match source.kind() {
                    ErrorKind::NotFound => "No such file".to_string(),
                    ErrorKind::ConnectionRefused => {
                        "connection refused (a stale socket file: the daemon is not running)".to_string()
                    }
                    ErrorKind::PermissionDenied => {
                        "permission denied (is your user in the socket's group, socket_file_group_owner?)".to_string()
                    }
                    _ => source.to_string(),
                };
                ClientError::Unavailable { path, reason }
            }
            proto::ClientError::Timeout { path, timeout } => ClientError::Timeout { path, secs: timeout.as_secs_f64() },
            proto::ClientError::Closed { path } => {
                ClientError::Unavailable { path, reason: "the daemon closed the connection without answering".into() }
            }
            proto::ClientError::Io { path, source } => {
                ClientError::Protocol { path, source: ProtocolError::Io(source) }
            }
            proto::ClientError::Protocol { source: ProtocolError::UnexpectedAnswer { sent, got }, .. } => {
                ClientError::UnexpectedAnswer { sent, got }
            }
            proto::ClientError::Protocol { path, source } => ClientError::Protocol { path, source },
            proto::ClientError::Daemon { reply } => ClientError::Daemon { code: reply.code, message: reply.message },
        }
    }
}

/// The socket to use: `--socket` (or `$BTU_SOCKET_PATH`, which clap folds into it), else the
/// `socket_path` of the `--config` file, else [`proto::DEFAULT_SOCKET_PATH`].
pub fn resolve_socket(explicit: Option<&Path>, config: Option<&Path>) -> Result<PathBuf, ClientError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(c) = config {
        return Ok(Config::load(c)?.daemon.socket_path);
    }
    Ok(PathBuf::from(proto::DEFAULT_SOCKET_PATH))
}
