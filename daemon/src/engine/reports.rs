//! What the engine answers its callers: the state of a schedule after a notify, upcoming runs,
//! status, rebuild reports, and the errors. Plain data, no behaviour: the socket server turns
//! these into protocol answers (and only there are instants and zones written as text).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::policy::Policies;
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
        /// The effective policies.
        policies: Policies,
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
    /// The schedule's effective policies.
    pub policies: Policies,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteStatus {
    pub name: String,
    /// None before the first load attempt finished.
    pub source_ok: Option<bool>,
    pub planned: usize,
    pub skipped: usize,
    /// Of the skipped rows, those disabled.
    pub disabled: usize,
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

/// Which request of the original BTU app a [`LegacyReport`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyKind {
    /// `create_task_schedule`: apply the schedule's row on every site whose database has it.
    Create,
    /// `cancel_task_schedule`: drop its planned runs on every site.
    Cancel,
}

/// What a legacy request did at once, and whether the schedule is followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyReport {
    /// Create: where the schedule stands on each site whose database has its row now.
    pub states: Vec<ScheduleState>,
    /// Cancel: whether any site had runs planned.
    pub cancelled: bool,
    /// How long the schedule's row is followed (re-read until the app's transaction has
    /// committed) on the database sites; `None` when it is not (`legacy_follow_secs = 0`, or
    /// no database site).
    pub following: Option<std::time::Duration>,
    /// Sites whose database could not be read at the request, with why.
    pub errors: Vec<String>,
}

/// Result of a run-now request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunNowResult {
    pub site: String,
    pub schedule: String,
    pub job_id: String,
    pub queue: String,
}

/// What `skip_next` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkipReport {
    pub site: String,
    pub zone: Tz,
    /// The instants this request skipped, soonest first.
    pub added: Vec<DateTime<Utc>>,
    /// Every instant of the schedule now skipped, soonest first.
    pub pending: Vec<DateTime<Utc>>,
}

/// What a backfill did (or, dry, would do) with one planned instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackfillState {
    Enqueued,
    /// The run has a job already (claim, job hash or history entry): nothing written.
    Exists,
    WouldEnqueue,
}

/// One planned instant of a backfill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillItem {
    pub due: DateTime<Utc>,
    pub job_id: String,
    pub state: BackfillState,
}

/// What a backfill did, oldest instant first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillReport {
    pub site: String,
    pub zone: Tz,
    pub runs: Vec<BackfillItem>,
}

/// The pause and skip marks of one site, for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteMarks {
    pub paused: Vec<(String, super::operator::PauseRecord)>,
    /// (schedule, skipped instant), soonest first.
    pub skipped: Vec<(String, DateTime<Utc>)>,
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
    /// An argument of an operator action that cannot be honoured (a past `until`, an empty
    /// or too large backfill range, a count of 0).
    #[error("{0}")]
    InvalidArgument(String),
}
