//! Instants as the protocol writes them: RFC 3339, whole seconds; UTC with `Z`, local time
//! with the zone's offset. Only the server writes instants as text.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;

pub(super) fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `t` in `zone` as RFC 3339 with the offset (never `Z`: `+00:00` says "local time, offset 0").
pub(super) fn local(t: DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone).to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// An instant a client sent: RFC 3339 with any offset (`2025-12-27T08:00:00Z`,
/// `2025-12-27T09:00:00+01:00`).
pub(super) fn parse(field: &str, text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{field} {text:?} is not an RFC 3339 instant like 2025-12-27T08:00:00Z: {e}"))
}
