//! What a schedule row became: runnable, or skipped with a [`SkipReason`] — as a notify or a
//! `load_all` sees it ([`RowOutcome`]) and as a rebuild does ([`RebuildRow`]).

use std::sync::Arc;

use super::fingerprint::Fingerprint;
use super::skip::SkipReason;
use super::spec::ScheduleSpec;

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
