//! The original BTU app's requests: raw UTF-8 JSON, no frame, answered with plain text.
//!
//! The BTU app's `SchedulerAPI` (btu/btu_api/scheduler.py) connects, `send`s
//! `{"request_type": "...", "request_content": <schedule id or null>}` without a terminator or
//! half-close, sleeps 0.5 s, `recv(2048)`s the text answer and closes. A server therefore must
//! parse as soon as the JSON object is complete: [`parse_legacy`] says `Truncated` while it is
//! not, so the server reads more (bounded by [`LEGACY_MAX_LEN`] and its read timeout).

use serde::Deserialize;

use crate::ProtocolError;

/// Most bytes a legacy request may take. The original daemon read one 1 KiB buffer; a schedule
/// id is a short Frappe name, so 64 KiB leaves room without inviting abuse.
pub const LEGACY_MAX_LEN: usize = 64 * 1024;

/// True when a connection's first byte starts a legacy JSON request rather than a frame.
///
/// Unambiguous: a frame header starting with `{` (0x7B) would announce a body of at least
/// 0x7B00_0000 bytes (≈ 2 GB), far beyond any maximum frame length.
pub fn is_legacy_start(first_byte: u8) -> bool {
    first_byte == b'{'
}

/// A request from the original BTU app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyRequest {
    /// `"ping"`: the original answered `pong`.
    Ping,
    /// `"create_task_schedule"`: (re)plan this schedule — the same as a notify.
    CreateTaskSchedule { schedule: String },
    /// `"cancel_task_schedule"`: drop this schedule's planned runs.
    CancelTaskSchedule { schedule: String },
    /// Any other `request_type`: the original answered with an "unhandled" text.
    Unknown { request_type: String },
}

impl LegacyRequest {
    /// The text the original daemon answered when this request succeeded (the wording is kept
    /// so BTU app code comparing answers keeps working). For `Unknown`, the original's complaint.
    pub fn success_reply(&self) -> String {
        match self {
            LegacyRequest::Ping => "pong".to_owned(),
            LegacyRequest::CreateTaskSchedule { schedule } => {
                format!("BTU Scheduler now re-processing Task Schedule {schedule} in Python RQ.")
            }
            LegacyRequest::CancelTaskSchedule { schedule } => {
                format!("Successfully cancelled BTU Task Schedule {schedule} in Python RQ.")
            }
            LegacyRequest::Unknown { request_type } => {
                format!("Client message has an unhandled 'request_type': {request_type}")
            }
        }
    }
}

#[derive(Deserialize)]
struct RawLegacy {
    request_type: String,
    #[serde(default)]
    request_content: Option<String>,
}

/// Parses the bytes received so far of a legacy request.
///
/// Trailing NUL bytes and whitespace are ignored (the original daemon stripped NULs). Returns
/// `Truncated` while the JSON object is incomplete, `Malformed` when it can never become valid
/// (not UTF-8, not an object with a string `request_type`, trailing data, or a schedule request
/// without `request_content`), `FrameTooLarge` past [`LEGACY_MAX_LEN`].
pub fn parse_legacy(bytes: &[u8]) -> Result<LegacyRequest, ProtocolError> {
    if bytes.len() > LEGACY_MAX_LEN {
        return Err(ProtocolError::FrameTooLarge { len: bytes.len(), max: LEGACY_MAX_LEN });
    }
    let end = bytes.iter().rposition(|b| *b != 0 && !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
    let trimmed = &bytes[..end];
    let raw: RawLegacy = match serde_json::from_slice(trimmed) {
        Ok(raw) => raw,
        Err(e) if e.is_eof() => return Err(ProtocolError::Truncated { received: bytes.len(), expected: None }),
        Err(e) => return Err(ProtocolError::Malformed(format!("legacy JSON request: {e}"))),
    };
    let schedule = |kind: &str| -> Result<String, ProtocolError> {
        match raw.request_content.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => Ok(id.to_owned()),
            _ => Err(ProtocolError::Malformed(format!(
                "legacy request '{kind}' is missing required argument 'request_content' (the schedule id)"
            ))),
        }
    };
    match raw.request_type.as_str() {
        "ping" => Ok(LegacyRequest::Ping),
        "create_task_schedule" => Ok(LegacyRequest::CreateTaskSchedule { schedule: schedule("create_task_schedule")? }),
        "cancel_task_schedule" => Ok(LegacyRequest::CancelTaskSchedule { schedule: schedule("cancel_task_schedule")? }),
        _ => Ok(LegacyRequest::Unknown { request_type: raw.request_type }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_original_requests() {
        assert_eq!(
            parse_legacy(br#"{"request_type": "ping", "request_content": null}"#).ok(),
            Some(LegacyRequest::Ping)
        );
        assert_eq!(
            parse_legacy(br#"{"request_type": "create_task_schedule", "request_content": "TS-0001"}"#).ok(),
            Some(LegacyRequest::CreateTaskSchedule { schedule: "TS-0001".into() })
        );
        assert_eq!(
            parse_legacy(b"{\"request_type\": \"cancel_task_schedule\", \"request_content\": \"TS-0002\"}\0\0\n").ok(),
            Some(LegacyRequest::CancelTaskSchedule { schedule: "TS-0002".into() })
        );
        assert_eq!(
            parse_legacy(br#"{"request_type": "reboot", "request_content": null}"#).ok(),
            Some(LegacyRequest::Unknown { request_type: "reboot".into() })
        );
    }

    #[test]
    fn incomplete_json_asks_for_more_and_garbage_is_malformed() {
        assert!(matches!(parse_legacy(br#"{"request_type": "pi"#), Err(ProtocolError::Truncated { .. })));
        assert!(matches!(parse_legacy(b"{"), Err(ProtocolError::Truncated { .. })));
        assert!(matches!(parse_legacy(br#"{"request_type": 5}"#), Err(ProtocolError::Malformed(_))));
        assert!(matches!(parse_legacy(br#"{"request_type": "ping"} x"#), Err(ProtocolError::Malformed(_))));
        assert!(matches!(parse_legacy(b"{\xff}"), Err(ProtocolError::Malformed(_))));
        assert!(matches!(
            parse_legacy(br#"{"request_type": "create_task_schedule", "request_content": null}"#),
            Err(ProtocolError::Malformed(m)) if m.contains("request_content")
        ));
        assert!(matches!(parse_legacy(&vec![b' '; LEGACY_MAX_LEN + 1]), Err(ProtocolError::FrameTooLarge { .. })));
    }

    #[test]
    fn replies_match_the_original_daemon() {
        assert_eq!(LegacyRequest::Ping.success_reply(), "pong");
        assert_eq!(
            LegacyRequest::CreateTaskSchedule { schedule: "TS-1".into() }.success_reply(),
            "BTU Scheduler now re-processing Task Schedule TS-1 in Python RQ."
        );
        assert!(is_legacy_start(b'{'));
        assert!(!is_legacy_start(0));
    }
}
