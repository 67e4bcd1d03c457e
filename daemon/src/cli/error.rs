//! [`CliError`]: why a `btu` subcommand failed.

use super::client::ClientError;
use crate::cron::CronError;
use crate::cron::explain::ExplainError;

/// Why a `btu` subcommand failed.
#[derive(thiserror::Error, Debug)]
pub enum CliError {
    #[error(transparent)]
    Cron(#[from] CronError),
    #[error(transparent)]
    Explain(#[from] ExplainError),
    #[error(transparent)]
    Daemon(#[from] ClientError),
    #[error("--{flag}: '{value}' is neither a date (YYYY-MM-DD) nor an RFC 3339 instant (e.g. 2027-03-14T10:00:00Z)")]
    BadDate { flag: &'static str, value: String },
    #[error("--{flag}: {value} is outside the supported range of dates")]
    DateRange { flag: &'static str, value: String },
    /// `btu check-config` found problems: one line per check.
    #[error("configuration check failed:\n{0}")]
    CheckFailed(String),
    #[error("could not write JSON: {0}")]
    Json(String),
    /// The configuration file could not be read or is invalid (the message names the file).
    #[error("{0}")]
    Config(String),
    /// Redis could not be reached or read (the URL without its password).
    #[error("redis: {0}")]
    Redis(String),
    #[error("no job {0:?} in this Redis (finished jobs are kept result_ttl seconds, 600 by default)")]
    NoSuchJob(String),
}
