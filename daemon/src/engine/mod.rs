//! The scheduling engine: keeps every enabled schedule's next run, fires runs as RQ jobs at
//! their due instants, rebuilds from the sources, applies the missed-run rule and rides out
//! Redis and MariaDB outages.
//!
//! - [`planner`]: pure decisions (what to fire, what is missed, what runs next);
//! - [`store`]: the daemon's Redis keys (`btu:<site>:…`);
//! - [`jobs`]: the RQ job of one run (frappe or plain mode);
//! - [`backoff`]: reconnect delays;
//! - `run`: the single task that owns the state ([`Engine`]), driven by a timer set to the
//!   earliest due instant, a rebuild interval and commands from [`EngineHandle`]s.
//!
//! The socket server and the binary talk to the engine only through [`EngineHandle`].

pub mod backoff;
pub mod jobs;
pub mod planner;
mod run;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

pub use run::{Engine, EngineOptions};
pub use store::HistoryEntry;

use crate::source::{RowOutcome, SkipReason, Source, SourceError};

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
        zone: String,
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
    pub zone: String,
    /// The due instant in the schedule's zone, `YYYY-MM-DD HH:MM:SS+hh:mm`.
    pub local: String,
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

pub(crate) enum Command {
    Apply {
        rows: Vec<RowOutcome>,
        reply: oneshot::Sender<Vec<ScheduleState>>,
    },
    Cancel {
        site: Option<String>,
        schedule: String,
        reply: oneshot::Sender<Result<bool, EngineError>>,
    },
    Rebuild {
        reply: Option<oneshot::Sender<RebuildReport>>,
    },
    Status {
        reply: oneshot::Sender<StatusReport>,
    },
    Upcoming {
        site: Option<String>,
        schedule: Option<String>,
        count: usize,
        reply: oneshot::Sender<Result<Vec<UpcomingRun>, EngineError>>,
    },
    History {
        site: Option<String>,
        schedule: String,
        count: usize,
        reply: oneshot::Sender<Result<Vec<HistoryEntry>, EngineError>>,
    },
    RunNow {
        site: Option<String>,
        schedule: String,
        reply: oneshot::Sender<Result<RunNowResult, EngineError>>,
    },
    TakeLateness {
        reply: oneshot::Sender<Vec<Duration>>,
    },
    Shutdown,
}

/// A cheap, cloneable way to talk to a running [`Engine`].
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Command>,
    sources: Arc<Vec<Source>>,
}

impl std::fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineHandle").field("sites", &self.sites()).finish()
    }
}

impl EngineHandle {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| EngineError::Stopped)?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    /// Configured site names.
    pub fn sites(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.site().to_string()).collect()
    }

    fn sources_for(&self, site: Option<&str>) -> Result<Vec<&Source>, EngineError> {
        match site {
            Some(name) => self
                .sources
                .iter()
                .find(|s| s.site() == name)
                .map(|s| vec![s])
                .ok_or_else(|| EngineError::UnknownSite(name.to_string())),
            None => Ok(self.sources.iter().collect()),
        }
    }

    /// Re-reads the schedules from their source and replans them at once (a schedule whose
    /// row did not change keeps its plan). Without a site, every site is asked and the one
    /// that has the schedule answers (the original BTU app sends bare schedule ids).
    pub async fn notify(&self, site: Option<&str>, schedules: &[String]) -> Result<Vec<ScheduleState>, EngineError> {
        let sources = self.sources_for(site)?;
        let mut rows = Vec::with_capacity(schedules.len());
        for id in schedules {
            let mut found = None;
            for source in &sources {
                let row = source.load_one(id).await?;
                let missing = matches!(&row, RowOutcome::Skipped { reason: SkipReason::NotFound, .. });
                if !missing || found.is_none() {
                    found = Some(row);
                }
                if !missing {
                    break;
                }
            }
            if let Some(row) = found {
                rows.push(row);
            }
        }
        self.ask(|reply| Command::Apply { rows, reply }).await
    }

    /// Forgets a schedule's planned runs (until a notify or rebuild finds it runnable again).
    /// Returns whether it was planned.
    pub async fn cancel(&self, site: Option<&str>, schedule: &str) -> Result<bool, EngineError> {
        let site = site.map(str::to_string);
        self.ask(|reply| Command::Cancel { site, schedule: schedule.to_string(), reply }).await?
    }

    /// Reloads every source and replans what changed; returns when done.
    pub async fn rebuild(&self) -> Result<RebuildReport, EngineError> {
        self.ask(|reply| Command::Rebuild { reply: Some(reply) }).await
    }

    /// Starts a rebuild without waiting (SIGHUP).
    pub fn request_rebuild(&self) {
        // A full channel means commands are queued anyway; a rebuild will follow them.
        let _ = self.tx.try_send(Command::Rebuild { reply: None });
    }

    pub async fn status(&self) -> Result<StatusReport, EngineError> {
        self.ask(|reply| Command::Status { reply }).await
    }

    /// The next `count` runs of one schedule, or of every schedule (of one site or all) in
    /// due order.
    pub async fn upcoming(
        &self,
        site: Option<&str>,
        schedule: Option<&str>,
        count: usize,
    ) -> Result<Vec<UpcomingRun>, EngineError> {
        let (site, schedule) = (site.map(str::to_string), schedule.map(str::to_string));
        self.ask(|reply| Command::Upcoming { site, schedule, count, reply }).await?
    }

    /// The newest `count` enqueued runs of a schedule.
    pub async fn history(
        &self,
        site: Option<&str>,
        schedule: &str,
        count: usize,
    ) -> Result<Vec<HistoryEntry>, EngineError> {
        let site = site.map(str::to_string);
        self.ask(|reply| Command::History { site, schedule: schedule.to_string(), count, reply }).await?
    }

    /// Enqueues a run of a planned schedule now (its own job id; the planned runs stay).
    pub async fn run_now(&self, site: Option<&str>, schedule: &str) -> Result<RunNowResult, EngineError> {
        let site = site.map(str::to_string);
        self.ask(|reply| Command::RunNow { site, schedule: schedule.to_string(), reply }).await?
    }

    /// Lateness (enqueue completed − due) of every on-time run since the last call, when the
    /// engine records it (`EngineOptions::record_lateness`; benchmarks).
    pub async fn take_lateness(&self) -> Result<Vec<Duration>, EngineError> {
        self.ask(|reply| Command::TakeLateness { reply }).await
    }

    /// Stops taking new work; [`Engine::run`] returns once in-flight writes are done.
    pub async fn shutdown(&self) {
        // Err: the engine is gone already, which is what was asked.
        let _ = self.tx.send(Command::Shutdown).await;
    }
}
