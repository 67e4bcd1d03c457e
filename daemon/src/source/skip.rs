//! [`SkipReason`]: why a schedule row does not run, in words and as a short code.

use std::fmt;

use super::frequency::FieldError;

/// Why a schedule row does not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    Disabled,
    /// The schedule names no task.
    NoTask,
    TaskMissing {
        task: String,
    },
    TaskDraft {
        task: String,
    },
    TaskCancelled {
        task: String,
    },
    /// A task with a docstatus other than 0/1/2.
    TaskNotSubmitted {
        task: String,
        docstatus: i64,
    },
    NoCron,
    InvalidCron {
        cron: String,
        error: String,
    },
    UnknownZone {
        zone: String,
        error: String,
    },
    /// A field an Hourly..Yearly schedule builds its cron from is missing or invalid.
    InvalidFrequency(Box<FieldError>),
    BadArguments {
        field: String,
        error: String,
    },
    /// A policy setting (overlap, catchup, jitter_secs, dst_gap, dst_overlap) with a value
    /// that is not allowed.
    InvalidSetting {
        key: &'static str,
        problem: String,
    },
    /// Anything else wrong with the row (missing function, bad value type, ...).
    Invalid {
        problem: String,
    },
    /// `load_one` found no such schedule.
    NotFound,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Disabled => write!(f, "disabled"),
            SkipReason::NoTask => write!(f, "no task set"),
            SkipReason::TaskMissing { task } => write!(f, "task {task} does not exist"),
            SkipReason::TaskDraft { task } => write!(f, "task {task} is a draft (not submitted)"),
            SkipReason::TaskCancelled { task } => write!(f, "task {task} is cancelled"),
            SkipReason::TaskNotSubmitted { task, docstatus } => {
                write!(f, "task {task} is not submitted (docstatus {docstatus})")
            }
            SkipReason::NoCron => write!(f, "no cron string"),
            SkipReason::InvalidCron { cron, error } => write!(f, "invalid cron {cron:?}: {error}"),
            SkipReason::UnknownZone { zone, error } => write!(f, "time zone {zone:?}: {error}"),
            SkipReason::InvalidFrequency(e) => e.fmt(f),
            SkipReason::BadArguments { field, error } => write!(f, "{field}: {error}"),
            SkipReason::InvalidSetting { key, problem } => write!(f, "setting {key}: {problem}"),
            SkipReason::Invalid { problem } => f.write_str(problem),
            SkipReason::NotFound => write!(f, "no such schedule"),
        }
    }
}

impl SkipReason {
    /// Short machine-readable code (for the protocol and JSON output).
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::Disabled => "disabled",
            SkipReason::NoTask | SkipReason::TaskMissing { .. } => "task_missing",
            SkipReason::TaskDraft { .. } | SkipReason::TaskNotSubmitted { .. } => "task_not_submitted",
            SkipReason::TaskCancelled { .. } => "task_cancelled",
            SkipReason::NoCron | SkipReason::InvalidCron { .. } | SkipReason::InvalidFrequency(_) => "invalid_cron",
            SkipReason::UnknownZone { .. } => "unknown_zone",
            SkipReason::BadArguments { .. } => "bad_arguments",
            SkipReason::InvalidSetting { .. } => "invalid_setting",
            SkipReason::Invalid { .. } => "invalid",
            SkipReason::NotFound => "not_found",
        }
    }
}
