//! The one error type of the protocol crate.

use crate::message::{ErrorCode, ErrorReply, PROTOCOL_VERSION, ResponseEnvelope};

/// Everything that can go wrong while framing, encoding, decoding or moving a message.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// A length prefix (or an encoded body) exceeds the maximum frame length.
    #[error("frame of {len} bytes exceeds the maximum frame length of {max} bytes")]
    FrameTooLarge { len: usize, max: usize },
    /// The input ended inside a frame (or inside a legacy JSON request).
    #[error("input ends early: {}", truncated_detail(*.received, *.expected))]
    Truncated { received: usize, expected: Option<usize> },
    /// The peer closed the connection cleanly before sending any byte of a frame.
    #[error("connection closed by the peer before a frame started")]
    Closed,
    /// The bytes are not a valid message; the text says what is wrong.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Both sides are well, but speak different protocol versions.
    #[error("protocol version mismatch: client speaks {client}, daemon speaks {daemon}")]
    UnsupportedVersion { client: u32, daemon: u32 },
    /// A response answers another request than the one sent on this connection.
    #[error("response carries id {got}, but the request sent had id {expected}")]
    IdMismatch { expected: u64, got: u64 },
    /// A response of another kind than the request asks for (e.g. `rebuilt` to a `ping`).
    #[error("a '{got}' answer does not answer a '{sent}' request")]
    UnexpectedAnswer { sent: &'static str, got: &'static str },
    /// Reading or writing the stream failed (including read/write timeouts).
    #[error("socket I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

fn truncated_detail(received: usize, expected: Option<usize>) -> String {
    match expected {
        Some(expected) => format!("got {received} of {expected} bytes"),
        None => format!("got {received} bytes of an incomplete message"),
    }
}

impl ProtocolError {
    /// The wire error code a daemon answers with when this error hits a request.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::FrameTooLarge { .. } => ErrorCode::FrameTooLarge,
            ProtocolError::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            ProtocolError::Truncated { .. }
            | ProtocolError::Malformed(_)
            | ProtocolError::IdMismatch { .. }
            | ProtocolError::UnexpectedAnswer { .. } => ErrorCode::Malformed,
            ProtocolError::Closed | ProtocolError::Io(_) => ErrorCode::Internal,
        }
    }

    /// The error reply a daemon sends for a request that failed to decode with this error.
    pub fn to_error_reply(&self) -> ErrorReply {
        ErrorReply::new(self.code(), self.to_string())
    }
}

impl ResponseEnvelope {
    /// The complete answer to a request that failed to decode: the daemon's own version, the
    /// request's id (from [`crate::peek_request_id`], 0 if unknown) and a typed error.
    pub fn from_protocol_error(id: u64, error: &ProtocolError) -> Self {
        Self { v: PROTOCOL_VERSION, id, response: crate::Response::Error(error.to_error_reply()) }
    }
}
