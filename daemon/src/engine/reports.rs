//! What the engine answers its callers: the state of a schedule after a notify, upcoming runs,
//! status, rebuild reports, and the errors. Plain data, no behaviour: the socket server turns
//! these into protocol answers (and only there are instants and zones written as text).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::source::{SkipReason, SourceError};

/// How many next runs a notify reply lists.
pub const NOTIFY_NEXT_RUNS: usize = 5;

/// Where one schedule stands after a notify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleState {
    pub site: String,
    pub schedule: String,
    pub status: ScheduleStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleStatus {
    Planned {
        task: Option<String>,
        cron: String,
        /// The zone the cron string is read in.
        zone: Tz,
        queue: String,
        /// The next runs (UTC), first = the planned one.
        next_runs: Vec<DateTime<Utc>>,
    },
    /// Disabled, task not submitted, invalid cron, ... or not found.
    NotRunning(SkipReason),
}

/// One upcoming run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpcomingRun {
    pub site: String,
    pub schedule: String,
    pub task: Option<String>,
    pub due: DateTime<Utc>,
    /// The schedule's zone: the due instant's local time is `due.with_timezone(&zone)`.
    pub zone: Tz,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteStatus {
    pub name: String,
    /// None before the first load attempt finished.
    pub source_ok: Option<bool>,
    pub planned: usize,
    pub skipped: usize,
    pub last_loaded: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub started_at: DateTime<Utc>,
    pub redis_up: bool,
    pub sites: Vec<SiteStatus>,
    pub next_due: Option<DateTime<Utc>>,
    pub last_rebuild: Option<DateTime<Utc>>,
    pub runs_enqueued: u64,
    pub runs_already_claimed: u64,
    pub runs_missed: u64,
}

/// What one rebuild did for one site.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteRebuild {
    pub site: String,
    /// The source could not be read; the site keeps its previous schedules.
    pub error: Option<String>,
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    pub unchanged: usize,
    pub skipped: Vec<(String, SkipReason)>,
    /// Redis was down: the plan is kept in memory and written when it is back.
    pub deferred: bool,
}

/// What one rebuild did, per site it loaded (every site, or the one asked for).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RebuildReport {
    pub sites: Vec<SiteRebuild>,
}

/// Result of a run-now request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunNowResult {
    pub site: String,
    pub schedule: String,
    pub job_id: String,
    pub queue: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the engine has stopped")]
    Stopped,
    #[error("unknown site {0}")]
    UnknownSite(String),
    #[error("several sites are configured ({0}); name the site")]
    SiteRequired(String),
    #[error("site {site}: unknown schedule {schedule}")]
    UnknownSchedule { site: String, schedule: String },
    #[error("site {site}: schedule {schedule} does not run: {reason}")]
    NotRunnable { site: String, schedule: String, reason: SkipReason },
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("redis: {0}")]
    Redis(String),
}
