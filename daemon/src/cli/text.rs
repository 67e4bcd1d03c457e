//! Command-line text shared by `btu next` and `btu explain`: instants read from flags and
//! written to stdout, and the daylight-saving class of a job.

use chrono::{DateTime, LocalResult, NaiveDate, SecondsFormat, TimeZone, Utc};
use chrono_tz::{GapInfo, Tz};

use super::error::CliError;
use crate::cron::{DstGap, DstOverlap, LocalSchedule};

/// clap value parser for RFC 3339 instants such as `2027-03-14T10:00:00Z`.
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("'{text}' is not an RFC 3339 instant such as 2027-03-14T10:00:00Z ({e})"))
}

/// A `--from`/`--until` value: an RFC 3339 instant, or a date `YYYY-MM-DD` meaning the start
/// of that day in `tz` (when midnight falls in a daylight-saving gap, the first instant after it).
pub fn parse_date_or_instant(flag: &'static str, text: &str, tz: Tz) -> Result<DateTime<Utc>, CliError> {
    if let Ok(t) = parse_instant(text) {
        return Ok(t);
    }
    let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| CliError::BadDate { flag, value: text.to_string() })?;
    let midnight = date.and_hms_opt(0, 0, 0).ok_or(CliError::DateRange { flag, value: text.to_string() })?;
    let start = match tz.from_local_datetime(&midnight) {
        LocalResult::Single(t) => Some(t),
        LocalResult::Ambiguous(a, b) => Some(a.min(b)),
        LocalResult::None => GapInfo::new(&midnight, &tz).and_then(|g| g.end),
    };
    start.map(|t| t.with_timezone(&Utc)).ok_or(CliError::DateRange { flag, value: text.to_string() })
}

/// RFC 3339 in UTC with a `Z`, whole seconds unless there is a fraction.
pub fn rfc3339z(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// "fixed-time" or "wildcard": the daylight-saving class of a job, for human output.
/// `wildcard job` / `fixed-time job`, with the DST policies when they are not the defaults.
pub fn job_class(schedule: &LocalSchedule) -> String {
    let class = if schedule.expr().is_wildcard() { "wildcard job" } else { "fixed-time job" };
    let (gap, overlap) = (schedule.dst_gap(), schedule.dst_overlap());
    if gap == DstGap::default() && overlap == DstOverlap::default() {
        class.to_string()
    } else {
        format!("{class}, dst_gap {gap}, dst_overlap {overlap}")
    }
}

/// `--dst-gap`: one of shift|skip.
pub fn parse_dst_gap(text: &str) -> Result<DstGap, String> {
    text.parse().map_err(|e: crate::cron::PolicyValueError| e.to_string())
}

/// `--dst-overlap`: one of auto|first|last|both.
pub fn parse_dst_overlap(text: &str) -> Result<DstOverlap, String> {
    text.parse().map_err(|e: crate::cron::PolicyValueError| e.to_string())
}
