//! The cron engine: local-time cron expressions to UTC run instants.
//!
//! Pure code, no I/O. An expression is matched against *naive* local wall-clock times
//! ([`expr`]), and each matching wall time is resolved to real instants with chrono-tz under
//! the Vixie cron / cronie daylight-saving rule (see `docs/cron.md`):
//!
//! * a *wildcard* job (second (6/7 fields), minute or hour field begins with `*`) runs at every
//!   matching wall time that exists — both passes of a fall-back overlap, nothing in a gap;
//! * a *fixed-time* job runs once per matching wall time: the first pass of an overlap only,
//!   and wall times inside a spring-forward gap run at the first real instant after the gap
//!   (several of them collapse into that single run).
//!
//! Every search is bounded (400 years of calendar, or the year field's range), so a valid
//! expression that never runs again yields `None`, never an endless loop.
//!
//! | module       | job                                                                   |
//! |--------------|-----------------------------------------------------------------------|
//! | `calendar`   | proleptic Gregorian day numbers and civil dates on plain integers      |
//! | `expr`       | parse a cron string into bitsets; match and search naive wall times    |
//! | `schedule`   | [`LocalSchedule`]: resolve wall times to UTC instants under the DST rule |
//! | [`explain`]  | one local schedule as sets of UTC cron expressions per DST window      |
//!
//! This crate is the project's pure core: it depends on chrono, chrono-tz, thiserror and serde
//! only, so no I/O and no adapter can creep in (`docs/architecture.md`).

mod calendar;
pub mod explain;
mod expr;
mod schedule;

pub use expr::{CronExpr, Field, MAX_YEAR, MIN_YEAR};
pub use schedule::LocalSchedule;

use chrono_tz::Tz;

/// Why an expression or a zone name was rejected.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum CronError {
    #[error("empty cron expression")]
    Empty,
    #[error("expected 5, 6 or 7 fields (or a macro such as @daily), found {found}")]
    FieldCount { found: usize },
    #[error("unknown macro '{name}': expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly")]
    UnknownMacro { name: String },
    #[error("{field} field: empty list element")]
    EmptyElement { field: Field },
    #[error("{field} field: '{value}' is not a number or a name")]
    InvalidValue { field: Field, value: String },
    #[error("{field} field: {value} is out of range {min}-{max}")]
    OutOfRange { field: Field, value: u64, min: u32, max: u32 },
    #[error("{field} field: step '{step}' is out of range 1-{max}")]
    InvalidStep { field: Field, step: String, max: u32 },
    #[error("{field} field: range {start}-{end} is reversed (start is after end)")]
    ReversedRange { field: Field, start: u32, end: u32 },
    #[error("'{expr}' never matches: no date satisfies its day-of-month, month, day-of-week and year fields together")]
    NeverMatches { expr: String },
    #[error("unknown time zone '{zone}'")]
    UnknownZone { zone: String },
}

/// Look up an IANA zone name such as `America/Los_Angeles`.
pub fn parse_zone(name: &str) -> Result<Tz, CronError> {
    name.trim().parse::<Tz>().map_err(|_| CronError::UnknownZone { zone: name.to_string() })
}

#[cfg(test)]
mod tests;
