//! How the rest of the daemon talks to the engine: an [`EngineHandle`] sends a [`Command`]
//! through a channel and awaits the answer. The engine task owns all state, so a caller never
//! locks anything; a handle is cheap to clone (the socket server gives one to every
//! connection).
//!
//! Work that needs no engine state runs here, in the caller's task: a notify reads its rows
//! from the source before the engine applies them, so a slow database never stalls firing.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

use super::jobs::JobSettings;
use super::reports::{
    EngineError, LegacyKind, LegacyReport, RebuildReport, RunNowResult, ScheduleState, StatusReport, UpcomingRun,
};
use super::store::HistoryEntry;
use crate::metrics::{SiteSnapshot, Snapshot, StateSource};
use crate::rq::RqWriter;
use crate::source::{RowOutcome, ScheduleSpec, SkipReason, Source, SourceError, SourceSet};

/// What an operator action needs from the engine; the action itself then runs in the
/// caller's task ([`super::actions`]), so the engine loop only hands these out.
#[derive(Clone)]
pub(crate) struct ActionTarget {
    pub site: String,
    /// The planned schedule (asked with `runnable`); `None` for a schedule that is known but
    /// does not run.
    pub spec: Option<Arc<ScheduleSpec>>,
    /// Its next planned run.
    pub next: Option<DateTime<Utc>>,
    pub conn: ConnectionManager,
    pub writer: RqWriter,
    /// The job settings firing uses now (the id form included).
    pub jobs: JobSettings,
    pub claim_ttl_secs: u64,
    pub history_max: usize,
    /// The missed-run grace: skipped instants this far in the past are kept (a late run may
    /// still need its skip).
    pub grace: Duration,
}

/// A Redis connection and the sites an action concerns ([`Command::Redis`]).
pub(crate) struct RedisAccess {
    pub sites: Vec<String>,
    pub conn: ConnectionManager,
}

/// A request to the engine task, with the channel its answer goes back on.
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
    Legacy {
        kind: LegacyKind,
        schedule: String,
        /// Per site (engine order): the schedule's row as read at the request, or why the
        /// site's database could not be read.
        rows: Vec<Result<RowOutcome, SourceError>>,
        reply: oneshot::Sender<LegacyReport>,
    },
    Rebuild {
        /// Index of the one site to rebuild (the engine's sites are in source order); `None`
        /// rebuilds every site.
        site: Option<usize>,
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
    /// The schedule's site, spec and a Redis connection, for an operator action.
    Target {
        site: Option<String>,
        schedule: String,
        /// Refuse a schedule that is known but does not run (skip, backfill need its cron).
        runnable: bool,
        reply: oneshot::Sender<Result<ActionTarget, EngineError>>,
    },
    /// A Redis connection and the sites concerned: the named one; else the site of
    /// `schedule` when one site knows it; else every site.
    Redis {
        site: Option<String>,
        schedule: Option<String>,
        reply: oneshot::Sender<Result<RedisAccess, EngineError>>,
    },
    Shutdown,
}

/// A cheap, cloneable way to talk to a running [`super::Engine`].
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Command>,
    sources: SourceSet,
}

impl std::fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineHandle").field("sites", &self.sites()).finish()
    }
}

impl EngineHandle {
    pub(crate) fn new(tx: mpsc::Sender<Command>, sources: SourceSet) -> Self {
        EngineHandle { tx, sources }
    }

    pub(super) async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| EngineError::Stopped)?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    /// Configured site names.
    pub fn sites(&self) -> Vec<String> {
        self.sources.snapshot().iter().map(|s| s.site().to_string()).collect()
    }

    /// The index of site `name` (the engine keeps its sites in source order).
    fn site_index(&self, name: &str) -> Result<usize, EngineError> {
        self.sources
            .snapshot()
            .iter()
            .position(|s| s.site() == name)
            .ok_or_else(|| EngineError::UnknownSite(name.to_string()))
    }

    fn sources_for(&self, site: Option<&str>) -> Result<Vec<Source>, EngineError> {
        let all = self.sources.snapshot();
        match site {
            Some(name) => {
                let i = all
                    .iter()
                    .position(|s| s.site() == name)
                    .ok_or_else(|| EngineError::UnknownSite(name.to_string()))?;
                Ok(vec![all[i].clone()])
            }
            None => Ok(all.iter().cloned().collect()),
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

    /// A request of the original BTU app (`create_task_schedule` / `cancel_task_schedule`),
    /// which names no site and comes before the app's transaction commits: applied at once on
    /// every site (a create: on each site whose source has the row; a cancel: the planned runs
    /// dropped everywhere), then the row is followed on every database site for
    /// `legacy_follow_secs` and its committed state applied ([`super::follow`]). The rows are
    /// read here, in the caller's task.
    pub async fn legacy(&self, kind: LegacyKind, schedule: &str) -> Result<LegacyReport, EngineError> {
        let sources = self.sources.snapshot();
        let mut rows = Vec::with_capacity(sources.len());
        for source in sources.iter() {
            rows.push(source.load_one(schedule).await);
        }
        let schedule = schedule.to_string();
        self.ask(|reply| Command::Legacy { kind, schedule, rows, reply }).await
    }

    /// Reloads the source of `site` (every source when `None`) and replans what changed;
    /// returns when done, reporting the sites it loaded.
    pub async fn rebuild(&self, site: Option<&str>) -> Result<RebuildReport, EngineError> {
        let site = site.map(|name| self.site_index(name)).transpose()?;
        self.ask(|reply| Command::Rebuild { site, reply: Some(reply) }).await
    }

    /// Starts a rebuild of every site without waiting (SIGHUP).
    pub fn request_rebuild(&self) {
        // A full channel means commands are queued anyway; a rebuild will follow them.
        let _ = self.tx.try_send(Command::Rebuild { site: None, reply: None });
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

    /// Stops taking new work; [`super::Engine::run`] returns once in-flight writes are done.
    pub async fn shutdown(&self) {
        // Err: the engine is gone already, which is what was asked.
        let _ = self.tx.send(Command::Shutdown).await;
    }
}

/// The metrics listener's view of the engine: its `status` answer.
impl StateSource for EngineHandle {
    async fn snapshot(&self) -> Option<Snapshot> {
        let status = self.status().await.ok()?;
        Some(Snapshot {
            redis_up: status.redis_up,
            sites: status
                .sites
                .into_iter()
                .map(|s| SiteSnapshot {
                    name: s.name,
                    source_up: s.source_ok,
                    last_loaded: s.last_loaded,
                    planned: s.planned,
                    skipped: s.skipped,
                    disabled: s.disabled,
                })
                .collect(),
        })
    }
}
