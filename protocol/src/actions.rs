//! The answers to the operator actions (protocol version 2): pause, resume, skip-next, backfill
//! and the audit trail, and the pause/skip marks that `upcoming` and `status` carry.
//!
//! Kept apart from [`crate::message`] (which holds the request kinds and the [`crate::Response`]
//! enum, and imports this file) so each file keeps to one topic; this file imports nothing of
//! the crate. [`NextRun`], which both use, lives here.

use serde::{Deserialize, Serialize};

/// One due instant, in UTC and in the schedule's local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextRun {
    /// RFC 3339 in UTC with `Z`, e.g. `2025-03-30T01:30:00Z`.
    pub utc: String,
    /// RFC 3339 with the local offset, e.g. `2025-03-30T03:30:00+02:00`.
    pub local: String,
}

/// A schedule's pause as stored in Redis (`btu:<site>:pause:<schedule>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseInfo {
    /// RFC 3339 UTC end of the pause; `None` = until resumed.
    #[serde(default)]
    pub until: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    /// RFC 3339 UTC instant the pause was set.
    pub at: String,
    /// uid of the process that paused (SO_PEERCRED), when known.
    #[serde(default)]
    pub uid: Option<u32>,
    /// pid of the process that paused, when known.
    #[serde(default)]
    pub pid: Option<i32>,
}

/// Answer to `pause`: the pause now in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paused {
    pub site: String,
    pub schedule: String,
    pub pause: PauseInfo,
}

/// Answer to `resume`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resumed {
    pub site: String,
    pub schedule: String,
    /// False when the schedule was not paused (nothing changed).
    pub was_paused: bool,
}

/// Answer to `skip_next`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub site: String,
    pub schedule: String,
    /// The instants this request skipped, soonest first.
    pub added: Vec<NextRun>,
    /// Every instant of the schedule now skipped (this request's and earlier ones), soonest first.
    pub pending: Vec<NextRun>,
}

/// What a backfill did (or would do) with one planned instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackfillStatus {
    /// A job was written for it now.
    Enqueued,
    /// It has a job already (its claim, job hash or history entry exists); nothing was written.
    Exists,
    /// Dry run: a job would be written.
    WouldEnqueue,
}

impl BackfillStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BackfillStatus::Enqueued => "enqueued",
            BackfillStatus::Exists => "exists",
            BackfillStatus::WouldEnqueue => "would_enqueue",
        }
    }
}

/// One planned instant of a backfill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillRun {
    /// RFC 3339 UTC due instant.
    pub due: String,
    /// The same instant in the schedule's local time.
    pub local: String,
    /// The run's deterministic RQ job id.
    pub job_id: String,
    pub status: BackfillStatus,
}

/// Answer to `backfill`: every planned instant in `[start, end)`, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backfilled {
    pub site: String,
    pub schedule: String,
    pub dry_run: bool,
    pub runs: Vec<BackfillRun>,
}

/// One entry of a site's audit trail (`btu:<site>:audit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The Redis stream id (`<ms>-<seq>`).
    pub id: String,
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    /// `pause`, `resume`, `skip`, `backfill`, `run_now`, `cancel`, `rebuild`,
    /// `legacy_create`, `legacy_cancel`.
    pub action: String,
    #[serde(default)]
    pub schedule: Option<String>,
    /// The action's arguments as a JSON object (text).
    pub args: String,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub pid: Option<i32>,
}

/// Answer to `audit`: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audited {
    pub site: String,
    pub entries: Vec<AuditEntry>,
}

/// A paused schedule in a site's `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PausedSchedule {
    pub schedule: String,
    pub pause: PauseInfo,
}

/// A skipped instant in a site's `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedRun {
    pub schedule: String,
    /// RFC 3339 UTC due instant.
    pub utc: String,
}
