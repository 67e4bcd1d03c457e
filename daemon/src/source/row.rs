//! What a schedule row became: runnable, or skipped with a [`SkipReason`] — as a notify or a
//! `load_all` sees it ([`RowOutcome`]) and as a rebuild does ([`RebuildRow`]).

use std::fmt;
use std::sync::Arc;

use super::{Fingerprint, ScheduleSpec};

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
    BadArguments {
        field: String,
        error: String,
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
            SkipReason::BadArguments { field, error } => write!(f, "{field}: {error}"),
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
            SkipReason::NoCron | SkipReason::InvalidCron { .. } => "invalid_cron",
            SkipReason::UnknownZone { .. } => "unknown_zone",
            SkipReason::BadArguments { .. } => "bad_arguments",
            SkipReason::Invalid { .. } => "invalid",
            SkipReason::NotFound => "not_found",
        }
    }
}

/// What one schedule row became.
#[derive(Debug, Clone)]
pub enum RowOutcome {
    Loaded(ScheduleSpec),
    Skipped { site: String, schedule: String, reason: SkipReason },
}

impl RowOutcome {
    pub fn site(&self) -> &str {
        match self {
            RowOutcome::Loaded(s) => &s.site[..],
            RowOutcome::Skipped { site, .. } => site,
        }
    }
    pub fn schedule(&self) -> &str {
        match self {
            RowOutcome::Loaded(s) => &s.id,
            RowOutcome::Skipped { schedule, .. } => schedule,
        }
    }
}

/// A row as a rebuild needs it: small, and not built at all when the caller already plans
/// the schedule with the same fingerprint.
#[derive(Debug, Clone)]
pub enum RebuildRow {
    /// Runnable, and its fingerprint is the one the caller listed for this id (`id` is the
    /// caller's own `Arc`): nothing was parsed or allocated for it.
    Unchanged {
        id: Arc<str>,
        fingerprint: Fingerprint,
    },
    Loaded(Arc<ScheduleSpec>),
    /// Boxed: skipped rows are few, and the other variants stay two words.
    Skipped(Box<SkippedRow>),
}

#[derive(Debug, Clone)]
pub struct SkippedRow {
    pub schedule: String,
    pub reason: SkipReason,
}

impl RebuildRow {
    pub(super) fn skipped(schedule: String, reason: SkipReason) -> RebuildRow {
        RebuildRow::Skipped(Box::new(SkippedRow { schedule, reason }))
    }
}
