//! Building the payloads of the next due instant ahead of it: the job, the validation of every
//! field, pickle + zlib, for every run due at that instant, on a blocking thread
//! [`PREPARE_AHEAD`] before it, so that at the instant only the Redis script calls remain
//! (docs/daemon.md, "Where the lateness goes").
//!
//! A payload is only used for the run it was built for: the same due instant and the very
//! spec (a rebuild or notify that changes a schedule replaces its spec, which voids it).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::task::{JoinError, JoinHandle};
use tracing::error;

use super::jobs::{JobSettings, prepare_run};
use super::plan::Plan;
use super::store::rfc3339;
use crate::rq::{PreparedRun, RqError};
use crate::source::ScheduleSpec;

/// How long before a due instant the payloads of its runs are built: long enough for 10k runs
/// on a busy machine, short enough to hold one instant's payloads.
pub(super) const PREPARE_AHEAD: TimeDelta = TimeDelta::seconds(2);

/// A run ready for the writer, or why its job could not be built (bad data; never sent).
pub(super) type Payload = Result<PreparedRun, RqError>;

/// Payloads built ahead for the runs whose timer fires at one instant (`due`: the due instant
/// plus the schedule's jitter), with the spec and the due instant each was built for.
pub(super) struct Prepared {
    due: DateTime<Utc>,
    runs: HashMap<(usize, Arc<str>), BuiltRun>,
}

/// A payload built ahead: the spec and the due instant it was built for, and the payload.
type BuiltRun = (Arc<ScheduleSpec>, DateTime<Utc>, Payload);

/// A run to build: site index, schedule id, spec, due instant.
type ToBuild = (usize, Arc<str>, Arc<ScheduleSpec>, DateTime<Utc>);

/// What job building needs besides the schedule.
#[derive(Debug, Clone)]
pub(super) struct BuildSettings {
    pub jobs: JobSettings,
    pub claim_ttl_secs: u64,
}

/// The payloads built for one due instant, or being built.
#[derive(Default)]
pub(super) struct Prepare {
    done: Option<Prepared>,
    running: Option<(DateTime<Utc>, JoinHandle<Prepared>)>,
}

impl Prepare {
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Whether the payloads of `due` are built.
    pub fn built_for(&self, due: DateTime<Utc>) -> bool {
        self.done.as_ref().is_some_and(|p| p.due == due)
    }

    /// Starts building the payloads of every run due at `due`.
    pub fn start(&mut self, due: DateTime<Utc>, plan: &Plan, settings: &BuildSettings) {
        let runs: Vec<ToBuild> =
            plan.runs_at(due).map(|(idx, id, spec, run_due)| (idx, id.clone(), spec.clone(), run_due)).collect();
        let sites: Vec<String> = plan.sites().iter().map(|s| s.name.clone()).collect();
        let settings = settings.clone();
        let task = tokio::task::spawn_blocking(move || {
            let created_at = Utc::now();
            let runs = runs
                .into_iter()
                .map(|(idx, id, spec, run_due)| {
                    let run =
                        prepare_run(&sites[idx], &spec, run_due, &settings.jobs, settings.claim_ttl_secs, created_at);
                    ((idx, id), (spec, run_due, run))
                })
                .collect();
            Prepared { due, runs }
        });
        self.running = Some((due, task));
    }

    /// The running build's result (pending while none runs).
    pub async fn finished(&mut self) -> Result<Prepared, JoinError> {
        match self.running.as_mut() {
            Some((_, task)) => task.await,
            None => std::future::pending().await,
        }
    }

    pub fn on_finished(&mut self, res: Result<Prepared, JoinError>) {
        let Some((due, _)) = self.running.take() else { return };
        self.done = Some(res.unwrap_or_else(|e| {
            // A bug, not data: the firing builds these runs itself. Recorded as done so the
            // loop does not retry it.
            error!(due = %rfc3339(due), error = %e, "building payloads ahead failed");
            Prepared { due, runs: HashMap::new() }
        }));
    }

    /// Waits for a build of an instant that is due by `now`: waiting costs less than building
    /// the same payloads a second time on the same cores.
    pub async fn wait_if_due(&mut self, now: DateTime<Utc>) {
        if self.running.as_ref().is_some_and(|(due, _)| *due <= now) {
            let res = self.finished().await;
            self.on_finished(res);
        }
    }

    /// The payload built ahead for this run, if it was built for this very due instant from
    /// the schedule as it is now.
    pub fn take(&mut self, idx: usize, id: &Arc<str>, due: DateTime<Utc>, spec: &Arc<ScheduleSpec>) -> Option<Payload> {
        let prepared = self.done.as_mut()?;
        let (built_from, built_due, run) = prepared.runs.remove(&(idx, id.clone()))?;
        (built_due == due && Arc::ptr_eq(&built_from, spec)).then_some(run)
    }

    /// Drops payloads of instants up to `now`: used up; leftovers belong to schedules changed
    /// since.
    pub fn used_up(&mut self, now: DateTime<Utc>) {
        if self.done.as_ref().is_some_and(|p| p.due <= now) {
            self.done = None;
        }
    }
}
