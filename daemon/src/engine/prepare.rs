//! Building the payloads of the next due instant ahead of it: the job, the validation of every
//! field, pickle + zlib, for every run due at that instant, on a blocking thread
//! [`PREPARE_AHEAD`] before it — and then staging them in Redis (job hash + claim, pushed
//! nowhere: [`crate::rq::RqWriter::stage_many`]), so that at the instant only the release is
//! left (docs/performance.md, docs/rq.md "Staging").
//!
//! A payload is only used for the run it was built for: the same due instant and the very
//! spec (a rebuild or notify that changes a schedule replaces its spec, which voids it; the
//! firing then enqueues it in full, which rewrites a staged hash). A staged run whose schedule
//! is cancelled, edited or replanned before its instant is removed from Redis at once
//! ([`Prepare::forget_changed`]; the rest of its batch keeps its release); staged runs left
//! unfired at their instant anyway are handed back by [`Prepare::used_up`] to be removed.

use std::collections::HashMap;
use std::mem;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::task::{JoinError, JoinHandle};
use tracing::error;

use super::batch::Payload;
use super::jobs::{JobSettings, prepare_run};
use super::plan::Plan;
use super::staged::{BuiltRun, ReleaseBatch, Released, Retained, RunKey, stage, still_planned};
use super::store::{HistoryTarget, rfc3339};
use crate::rq::{RqWriter, Unstage};
use crate::source::ScheduleSpec;

/// How long before a due instant the payloads of its runs are built: long enough for 10k runs
/// on a busy machine, short enough to hold one instant's payloads.
pub(super) const PREPARE_AHEAD: TimeDelta = TimeDelta::seconds(2);

/// Payloads built ahead for the runs whose timer fires at one instant (`due`: the due instant
/// plus the schedule's jitter), with the spec and the due instant each was built for, and the
/// release calls of the staged ones.
pub(super) struct Prepared {
    due: DateTime<Utc>,
    /// Runs not staged (or not buildable), and staged runs whose batch was not released.
    runs: HashMap<RunKey, BuiltRun>,
    /// Staged runs with their release calls, in release order from the end (a slot is
    /// emptied when its batch is released or decided in full).
    releases: Vec<Option<ReleaseBatch>>,
    /// The slot of `releases` that holds each staged run.
    batch_of: HashMap<RunKey, usize>,
}

impl Prepared {
    fn empty(due: DateTime<Utc>) -> Self {
        Prepared { due, runs: HashMap::new(), releases: Vec::new(), batch_of: HashMap::new() }
    }

    /// The staged runs still held (never fired), to be removed from Redis.
    fn into_unstage(self) -> Vec<Unstage> {
        let held = self.runs.into_values().filter(|b| b.staged).filter_map(|b| b.run.ok());
        held.chain(self.releases.into_iter().flatten().flat_map(ReleaseBatch::into_runs))
            .map(|r| Unstage::of(&r))
            .collect()
    }

    /// Removes the staged runs of `changed` schedules that their instant would no longer
    /// release (cancelled, edited or replanned since they were staged): answers them, to be
    /// removed from Redis. A batch that loses runs keeps the others as a release, its call
    /// built again through `writer`.
    fn forget_changed(&mut self, changed: &[RunKey], plan: &Plan, writer: Option<&RqWriter>) -> Vec<Unstage> {
        let mut dropped = Vec::new();
        let mut slots = Vec::new();
        for key in changed {
            if let Some(&slot) = self.batch_of.get(key) {
                slots.push(slot);
            } else if let Some(b) = self.runs.get(key)
                && b.staged
                && !still_planned(plan, (key.0, &key.1), &b.spec, b.due)
                && let Some(b) = self.runs.remove(key)
                && let Ok(run) = b.run
            {
                dropped.push(Unstage::of(&run));
            }
        }
        slots.sort_unstable();
        slots.dedup();
        for slot in slots {
            let Some(batch) = self.releases.get_mut(slot).and_then(Option::take) else { continue };
            let Retained { batch, dropped: gone, held } = batch.retain_planned(plan, writer);
            for (key, run) in gone {
                self.batch_of.remove(&key);
                dropped.push(Unstage::of(&run));
            }
            for (key, built) in held {
                self.batch_of.remove(&key);
                self.runs.insert(key, built);
            }
            self.releases[slot] = batch;
        }
        dropped
    }
}

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
    /// Staged runs that were not fired, to be removed ([`Prepare::take_unstage`]).
    unstage: Vec<Unstage>,
    /// Schedules changed while a build ran ([`Prepare::forget_changed`]).
    changed_while_building: Vec<RunKey>,
}

impl Prepare {
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The timer instant whose payloads are held (built, possibly staged).
    pub fn held_due(&self) -> Option<DateTime<Utc>> {
        self.done.as_ref().map(|p| p.due)
    }

    /// Whether the payloads of `due` are built.
    pub fn built_for(&self, due: DateTime<Utc>) -> bool {
        self.done.as_ref().is_some_and(|p| p.due == due)
    }

    /// Starts building the payloads of every run due at `due`, then staging them through
    /// `writer` (each run's history list keeps `history_max` entries).
    pub fn start(
        &mut self,
        due: DateTime<Utc>,
        plan: &Plan,
        settings: &BuildSettings,
        history_max: usize,
        writer: RqWriter,
    ) {
        let runs: Vec<ToBuild> =
            plan.runs_at(due).map(|(idx, id, spec, run_due)| (idx, id.clone(), spec.clone(), run_due)).collect();
        let sites: Vec<String> = plan.sites().iter().map(|s| s.name.clone()).collect();
        let settings = settings.clone();
        let task = tokio::spawn(async move {
            let built = tokio::task::spawn_blocking(move || {
                let created_at = Utc::now();
                runs.into_iter()
                    .map(|(idx, id, spec, run_due)| {
                        let run = prepare_run(
                            &sites[idx],
                            &spec,
                            run_due,
                            &settings.jobs,
                            settings.claim_ttl_secs,
                            created_at,
                        );
                        let after = spec.schedule.next_after(run_due);
                        let history = HistoryTarget::new(history_max, &sites[idx], &id);
                        ((idx, id), BuiltRun { spec, due: run_due, run, staged: false, after, history })
                    })
                    .collect::<Vec<_>>()
            })
            .await;
            let built = built.unwrap_or_else(|e| {
                // A bug, not data: the firing builds these runs itself.
                error!(due = %rfc3339(due), error = %e, "building payloads ahead failed");
                Vec::new()
            });
            let (runs, releases) = stage(&writer, due, built).await;
            // next_release pops them in staging order
            let releases: Vec<Option<ReleaseBatch>> = releases.into_iter().rev().map(Some).collect();
            let batch_of = releases
                .iter()
                .enumerate()
                .flat_map(|(slot, b)| b.iter().flat_map(move |b| b.keys().map(move |k| (k, slot))))
                .collect();
            Prepared { due, runs, releases, batch_of }
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

    /// Holds the finished build, and forgets the runs of schedules changed while it ran.
    pub fn on_finished(&mut self, res: Result<Prepared, JoinError>, plan: &Plan, writer: Option<&RqWriter>) {
        let Some((due, _)) = self.running.take() else { return };
        if let Some(old) = self.done.take() {
            self.unstage.extend(old.into_unstage());
        }
        let mut done = res.unwrap_or_else(|e| {
            // A bug, not data: the firing builds these runs itself. Recorded as done so the
            // loop does not retry it.
            error!(due = %rfc3339(due), error = %e, "building payloads ahead failed");
            Prepared::empty(due)
        });
        let changed = mem::take(&mut self.changed_while_building);
        self.unstage.extend(done.forget_changed(&changed, plan, writer));
        self.done = Some(done);
    }

    /// Schedules changed in the plan (set or removed): their staged runs that their instant
    /// would no longer release are to be removed now ([`Prepare::take_unstage`]), not at the
    /// instant. While a build runs, they are remembered until it finishes.
    pub fn forget_changed(&mut self, changed: Vec<RunKey>, plan: &Plan, writer: Option<&RqWriter>) {
        if self.running.is_some() {
            self.changed_while_building.extend(changed);
        } else if let Some(done) = self.done.as_mut() {
            self.unstage.extend(done.forget_changed(&changed, plan, writer));
        }
    }

    /// Waits for a build of an instant that is due by `now`: waiting costs less than building
    /// the same payloads a second time on the same cores.
    pub async fn wait_if_due(&mut self, now: DateTime<Utc>, plan: &Plan, writer: &RqWriter) {
        if self.running.as_ref().is_some_and(|(due, _)| *due <= now) {
            let res = self.finished().await;
            self.on_finished(res, plan, Some(writer));
        }
    }

    /// The next staged batch of the instant held, if it is due by `now`, whose runs are all
    /// still planned as they were staged (same spec, same due instant) and fire on time
    /// ([`super::planner::on_time_next`]): its call built ahead, and the next run of each of its
    /// schedules. A batch with a run changed since, or a late instant, is left to the firing's
    /// full decision ([`Prepare::take`]). One batch per call, so that the firing sends each as
    /// soon as it is checked.
    pub fn next_release(&mut self, now: DateTime<Utc>, grace: TimeDelta, plan: &Plan) -> Option<Released> {
        let prepared = self.done.as_mut().filter(|p| p.due <= now)?;
        // How late the timer fired; each run is judged at its own due instant plus this.
        let lag = now - prepared.due;
        while let Some(slot) = prepared.releases.pop() {
            let Some(batch) = slot else { continue };
            match batch.on_time(plan, lag, grace) {
                Some(plans) => return Some(Released { batch: batch.into_ready(), plans }),
                None => prepared.runs.extend(batch.into_built()),
            }
        }
        None
    }

    /// The payload built ahead for this run, if it was built for this very due instant from
    /// the schedule as it is now, and whether it is staged (only the release is left).
    pub fn take(
        &mut self,
        idx: usize,
        id: &Arc<str>,
        due: DateTime<Utc>,
        spec: &Arc<ScheduleSpec>,
    ) -> Option<(Payload, bool)> {
        let prepared = self.done.as_mut()?;
        let key = (idx, id.clone());
        let built = prepared.runs.get(&key)?;
        if built.due != due {
            // Another run of the schedule (a catch-up): the staged one stays for removal.
            return None;
        }
        let built = prepared.runs.remove(&key)?;
        // Built from another spec: the firing enqueues it in full, which rewrites the staged
        // hash with the schedule as it is now.
        Arc::ptr_eq(&built.spec, spec).then_some((built.run, built.staged))
    }

    /// Drops payloads of instants up to `now`: used up; leftovers belong to schedules changed,
    /// cancelled or replanned since (or to runs the missed-run rule skipped), and their staged
    /// runs are to be removed.
    pub fn used_up(&mut self, now: DateTime<Utc>) {
        if self.done.as_ref().is_some_and(|p| p.due <= now)
            && let Some(old) = self.done.take()
        {
            self.unstage.extend(old.into_unstage());
        }
    }

    /// The staged runs to remove from Redis (never fired at their instant, or no longer
    /// planned as staged).
    pub fn take_unstage(&mut self) -> Vec<Unstage> {
        std::mem::take(&mut self.unstage)
    }
}
