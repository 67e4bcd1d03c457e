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
//! A schedule may choose other daylight-saving policies ([`DstGap`], [`DstOverlap`],
//! [`LocalSchedule::with_dst`]): skip gap runs instead of shifting them, and run overlap
//! wall times in the first, the last or both passes.
//!
//! Every search is bounded (400 years of calendar, or the year field's range), so a valid
//! expression that never runs again yields `None`, never an endless loop.
//!
//! | module       | job                                                                   |
//! |--------------|-----------------------------------------------------------------------|
//! | `calendar`   | proleptic Gregorian day numbers and civil dates on plain integers      |
//! | `dst`        | [`DstGap`], [`DstOverlap`]: the daylight-saving policies and their names |
//! | `error`      | [`CronError`] and [`explain::ExplainError`]: why a request is refused   |
//! | `field`      | the fields of an expression: names, ranges, month and day names        |
//! | `expr`       | parse a cron string into bitsets; match and search naive wall times    |
//! | `schedule`   | [`LocalSchedule`]: resolve wall times to UTC instants under the DST rule |
//! | [`explain`]  | one local schedule as sets of UTC cron expressions per DST window      |
//!
//! This crate is the project's pure core: it depends on chrono, chrono-tz, thiserror and serde
//! only, so no I/O and no adapter can creep in (`docs/architecture.md`).

mod calendar;
mod dst;
mod error;
pub mod explain;
mod expr;
mod field;
mod schedule;

pub use dst::{DstGap, DstOverlap, PolicyValueError, parse_policy};
pub use error::CronError;
pub use expr::CronExpr;
pub use field::{Field, MAX_YEAR, MIN_YEAR};
pub use schedule::{LocalSchedule, parse_zone};

#[cfg(test)]
mod tests;
