//! `btu-protocol`: the one definition of the wire format between `btu-daemon` and its clients
//! (the `btu` CLI, the `btu_client` Python wheel). See `docs/protocol.md` for the byte layout.
//!
//! * A message travels as a **frame**: 4-byte big-endian body length, then a MessagePack body
//!   (see [`frame`]). Bodies are flat maps with named fields (see [`message`]).
//! * Every body carries the protocol version `v` and a request id `id`. Decoders read `v`
//!   first, so a peer of another version gets [`ProtocolError::UnsupportedVersion`] ("client
//!   speaks X, daemon speaks Y"), never a misparse.
//! * The original BTU app's unframed JSON requests are recognised by their first byte and parsed
//!   by [`parse_legacy`].
//!
//! The codec does no I/O of its own beyond blocking helpers over std `Read`/`Write`
//! ([`read_frame`], [`call`]); an async server pushes the bytes it reads into a
//! [`FrameReader`] and pops whole frame bodies for [`decode_request`].
//!
//! With the cargo feature `client`, [`client`] adds THE blocking socket client
//! ([`Client`]: connect timeout, one deadline per call, answer checks), shared by the `btu` CLI
//! and the `btu_client` wheel.

pub mod actions;
#[cfg(feature = "client")]
pub mod client;
pub mod error;
pub mod frame;
pub mod legacy;
pub mod message;

use std::io::{Read, Write};

use serde::Deserialize;
use serde::de::DeserializeOwned;

#[cfg(feature = "client")]
pub use client::{Client, ClientError};
pub use error::ProtocolError;
pub use frame::{
    FRAME_HEADER_LEN, FrameReader, MAX_FRAME_LEN, decode_frame_len, encode_frame_header, frame_body, read_frame,
};
pub use legacy::{LEGACY_MAX_LEN, LegacyRequest, is_legacy_start, parse_legacy};
pub use message::{
    AuditEntry, Audited, BackfillRun, BackfillStatus, Backfilled, PauseInfo, Paused, PausedSchedule, Resumed, Skipped,
    SkippedRun,
};
pub use message::{
    Cancelled, ErrorCode, ErrorReply, History, HistoryRun, NextRun, Notified, PROTOCOL_VERSION, Pong, RanNow, Rebuilt,
    Request, RequestEnvelope, Response, ResponseEnvelope, ScheduleState, Settings, SiteStatus, Status, Upcoming,
    UpcomingRun,
};

/// Where btu-daemon listens unless configured otherwise (`socket_path`), and where clients look
/// unless told otherwise: the path the original BTU app's configuration expects.
pub const DEFAULT_SOCKET_PATH: &str = "/tmp/btu_scheduler.sock";

/// Environment variable a client reads the socket path from when none is given.
pub const SOCKET_PATH_ENV: &str = "BTU_SOCKET_PATH";

/// Encodes a request as a complete frame (header + body), ready for one `write_all`.
pub fn encode_request(envelope: &RequestEnvelope) -> Result<Vec<u8>, ProtocolError> {
    frame_body(&encode_body(envelope)?, MAX_FRAME_LEN)
}

/// Encodes a response as a complete frame, limited to [`MAX_FRAME_LEN`].
pub fn encode_response(envelope: &ResponseEnvelope) -> Result<Vec<u8>, ProtocolError> {
    encode_response_with_limit(envelope, MAX_FRAME_LEN)
}

/// Encodes a response as a complete frame, limited to `max` bytes of body (for a server
/// configured with another limit). `FrameTooLarge` tells the server to answer with a smaller
/// error instead (e.g. ask for fewer upcoming runs).
pub fn encode_response_with_limit(envelope: &ResponseEnvelope, max: usize) -> Result<Vec<u8>, ProtocolError> {
    frame_body(&encode_body(envelope)?, max)
}

/// The MessagePack body of any message, with named map keys (`rmp_serde::to_vec_named`) so
/// that any msgpack library reads it as a dictionary.
pub fn encode_body<T: serde::Serialize>(message: &T) -> Result<Vec<u8>, ProtocolError> {
    // Serialising our own plain structs only fails on a bug (e.g. a map with non-string keys);
    // report it as Malformed rather than panic in a server.
    rmp_serde::to_vec_named(message).map_err(|e| ProtocolError::Malformed(format!("cannot encode message: {e}")))
}

/// The envelope fields every protocol version keeps in the same place: read them alone, so a
/// body of any version can be judged before its shape is trusted. Unknown keys are ignored.
#[derive(Deserialize)]
struct VersionProbe {
    #[serde(default)]
    v: Option<u32>,
}

#[derive(Deserialize)]
struct IdProbe {
    #[serde(default)]
    id: Option<u64>,
}

/// Deepest nesting of arrays/maps a body may have. Real messages need 5 (envelope → results →
/// state → next_runs → run); rmp-serde's default of 1024 lets a 2 KiB body of nested arrays
/// overflow a thread's stack (found by `tests/fuzz_decoder.rs`).
pub const MAX_NESTING: usize = 16;

/// Deserialises exactly one msgpack value filling the whole `body`.
fn from_body<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ProtocolError> {
    let mut rest = body;
    let mut de = rmp_serde::Deserializer::new(&mut rest);
    de.set_max_depth(MAX_NESTING);
    let value = T::deserialize(&mut de).map_err(|e| ProtocolError::Malformed(format!("{what}: {e}")))?;
    drop(de);
    if !rest.is_empty() {
        return Err(ProtocolError::Malformed(format!("{what}: {} unexpected bytes after the message", rest.len())));
    }
    Ok(value)
}

/// The protocol version `v` of a body, without trusting the rest of it.
fn probe_version(body: &[u8]) -> Result<u32, ProtocolError> {
    let probe: VersionProbe = from_body(body, "body is not a msgpack map with an integer 'v'")?;
    probe.v.ok_or_else(|| ProtocolError::Malformed("body has no protocol version field 'v'".to_owned()))
}

/// Decodes a request body (without its frame header).
///
/// The version is checked before the shape: a request of another version yields
/// `UnsupportedVersion { client: <its v>, daemon: PROTOCOL_VERSION }`.
pub fn decode_request(body: &[u8]) -> Result<RequestEnvelope, ProtocolError> {
    let v = probe_version(body)?;
    if v != PROTOCOL_VERSION {
        return Err(ProtocolError::UnsupportedVersion { client: v, daemon: PROTOCOL_VERSION });
    }
    from_body(body, "request")
}

/// Decodes a response body (without its frame header).
///
/// A response of another version yields `UnsupportedVersion { client: PROTOCOL_VERSION,
/// daemon: <its v> }`.
pub fn decode_response(body: &[u8]) -> Result<ResponseEnvelope, ProtocolError> {
    let v = probe_version(body)?;
    if v != PROTOCOL_VERSION {
        return Err(ProtocolError::UnsupportedVersion { client: PROTOCOL_VERSION, daemon: v });
    }
    from_body(body, "response")
}

/// The request id of a body that may not decode (wrong version, bad fields), so the error
/// answer can still echo it. `None` when even that cannot be read.
pub fn peek_request_id(body: &[u8]) -> Option<u64> {
    from_body::<IdProbe>(body, "id probe").ok().and_then(|p| p.id)
}

/// One blocking request/response exchange on a connected stream: writes the request frame,
/// reads one response frame of at most `max` bytes, checks its version, that it answers this
/// request's id and that its kind answers the request ([`Response::answers`]). A daemon error
/// answer is returned as `Ok(Response::Error(..))`. [`Client::call`] (feature `client`) wraps
/// this with the connection and the timeout.
pub fn call<S: Read + Write + ?Sized>(
    stream: &mut S,
    request: &RequestEnvelope,
    max: usize,
) -> Result<Response, ProtocolError> {
    let framed = encode_request(request)?;
    stream.write_all(&framed)?;
    stream.flush()?;
    let body = read_frame(stream, max)?;
    let response = decode_response(&body)?;
    if response.id != request.id {
        return Err(ProtocolError::IdMismatch { expected: request.id, got: response.id });
    }
    if !response.response.answers(&request.request) {
        return Err(ProtocolError::UnexpectedAnswer { sent: request.request.kind(), got: response.response.kind() });
    }
    Ok(response.response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_is_one_flat_map() {
        let env = RequestEnvelope::new(7, Request::Cancel { schedule: "TS-1".into(), site: None });
        let body = encode_body(&env).unwrap_or_default();
        // fixmap of 5 entries: v, id, type, schedule, site
        assert_eq!(body.first(), Some(&0x85));
        assert_eq!(decode_request(&body).ok(), Some(env));
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let mut body = vec![0x81, 0xa1, b'v'];
        body.extend(std::iter::repeat_n(0x91, 100_000));
        body.push(0x01);
        assert!(matches!(decode_request(&body), Err(ProtocolError::Malformed(_))));
        assert!(matches!(decode_response(&body), Err(ProtocolError::Malformed(_))));
        assert_eq!(peek_request_id(&body), None);
    }

    #[test]
    fn call_refuses_an_answer_of_another_kind() {
        struct Duplex(std::io::Cursor<Vec<u8>>);
        impl Read for Duplex {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.0.read(buf)
            }
        }
        impl Write for Duplex {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let answer = |response| {
            Duplex(std::io::Cursor::new(encode_response(&ResponseEnvelope::new(3, response)).unwrap_or_default()))
        };
        let rebuilt = Response::Rebuilt(Rebuilt { sites: Vec::new(), schedules: 0, skipped: 0, duration_ms: 1 });
        let ping = RequestEnvelope::new(3, Request::Ping);
        assert!(matches!(
            call(&mut answer(rebuilt.clone()), &ping, MAX_FRAME_LEN),
            Err(ProtocolError::UnexpectedAnswer { sent: "ping", got: "rebuilt" })
        ));
        let rebuild = RequestEnvelope::new(3, Request::Rebuild { site: None });
        assert_eq!(call(&mut answer(rebuilt.clone()), &rebuild, MAX_FRAME_LEN).ok(), Some(rebuilt));
        // An error may answer any request.
        let error = Response::Error(ErrorReply::new(ErrorCode::Internal, "down"));
        assert_eq!(call(&mut answer(error.clone()), &ping, MAX_FRAME_LEN).ok(), Some(error));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut body = encode_body(&RequestEnvelope::new(1, Request::Ping)).unwrap_or_default();
        body.push(0xc0);
        assert!(matches!(decode_request(&body), Err(ProtocolError::Malformed(m)) if m.contains("unexpected bytes")));
    }
}
