//! Subcommands of the `btu` command line tool.
//!
//! Each subcommand lives in its own module with a clap `Args` struct and a `run` function that
//! returns the text for stdout; the binary prints it only on success, so a failing command
//! prints nothing on stdout and its message on stderr. To add a subcommand: add a module, a
//! variant to [`Command`] and an arm to [`Command::run`].

pub mod check_config;
pub mod client;
pub mod explain;
pub mod next;
pub mod remote;

use crate::cron::CronError;
use crate::cron::explain::ExplainError;
use chrono::{DateTime, LocalResult, NaiveDate, SecondsFormat, TimeZone, Utc};
use chrono_tz::{GapInfo, Tz};
use clap::{Parser, Subcommand};

/// btu: run Frappe BTU schedules (cron in local time) with exact daylight-saving rules.
#[derive(Parser, Debug)]
#[command(name = "btu", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List the next run instants of a cron expression read in a time zone.
    Next(next::NextArgs),
    /// Show a local schedule as UTC cron expressions, one set per daylight-saving window.
    Explain(explain::ExplainArgs),
    /// Validate a daemon configuration file and try each connection it names.
    CheckConfig(check_config::CheckConfigArgs),
    /// Subcommands that ask the running btu-daemon (ping, status, upcoming, notify, ...).
    #[command(flatten)]
    Remote(remote::RemoteCommand),
}

impl Command {
    /// Run the subcommand; `now` is the default start instant. Returns the stdout text.
    pub fn run(&self, now: DateTime<Utc>) -> Result<String, CliError> {
        match self {
            Command::Next(args) => next::run(args, now),
            Command::Explain(args) => explain::run(args, now),
            Command::CheckConfig(args) => check_config::run_text(args),
            Command::Remote(cmd) => Ok(cmd.run()?),
        }
    }
}

/// Why a `btu` subcommand failed.
#[derive(thiserror::Error, Debug)]
pub enum CliError {
    #[error(transparent)]
    Cron(#[from] CronError),
    #[error(transparent)]
    Explain(#[from] ExplainError),
    #[error(transparent)]
    Daemon(#[from] client::ClientError),
    #[error("--{flag}: '{value}' is neither a date (YYYY-MM-DD) nor an RFC 3339 instant (e.g. 2027-03-14T10:00:00Z)")]
    BadDate { flag: &'static str, value: String },
    #[error("--{flag}: {value} is outside the supported range of dates")]
    DateRange { flag: &'static str, value: String },
    /// `btu check-config` found problems: one line per check.
    #[error("configuration check failed:\n{0}")]
    CheckFailed(String),
    #[error("could not write JSON: {0}")]
    Json(String),
}

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
pub fn job_class(wildcard: bool) -> &'static str {
    if wildcard { "wildcard job" } else { "fixed-time job" }
}
