//! Why the crate refuses a request: a cron string or zone name ([`CronError`]), or an
//! `explain` range ([`ExplainError`]).

use chrono::{DateTime, Utc};

use crate::field::Field;

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

/// Why `explain` refused its range (or, never expected, produced an expression the parser
/// rejects).
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum ExplainError {
    #[error("explain range is empty: until ({until}) must be after from ({from})")]
    EmptyRange { from: DateTime<Utc>, until: DateTime<Utc> },
    #[error("explain range {from} .. {until} leaves 1970-01-01 .. 2100-01-01, the years a cron year field can name")]
    OutOfYears { from: DateTime<Utc>, until: DateTime<Utc> },
    #[error("generated UTC cron '{cron}' does not parse ({reason}); this is a bug in explain")]
    Generated { cron: String, reason: CronError },
}
