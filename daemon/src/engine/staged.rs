//! Runs staged ahead of their instant, grouped as they will be released: after the payloads of
//! an instant are built ([`super::prepare`]), [`stage`] writes them to Redis in batches
//! (job hash + claim, pushed nowhere) and builds each batch's release call, its firing items
//! (job id, history list, the schedule's next run) and keeps the spec each run was built from.
//! At the instant [`ReleaseBatch::release`] checks that every run of the batch is still planned
//! as it was staged and fires on time, and hands the batch out as it is: the instant only
//! sends it (docs/performance.md).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tracing::warn;

use super::batch::{FireItem, Payload, ReadyRelease};
use super::plan::Plan;
use super::planner;
use super::store::{HistoryTarget, rfc3339};
use crate::rq::{PreparedRun, ReleaseCall, RqWriter};
use crate::source::ScheduleSpec;

/// A run: its site index and schedule id.
pub(super) type RunKey = (usize, Arc<str>);

/// A payload built ahead: the spec and the due instant it was built for, the payload, and
/// whether it is staged in Redis (by this daemon or another), so only the release is left.
/// Also what the firing needs once the run is released on time: the schedule's next run
/// after this one and its history list.
pub(super) struct BuiltRun {
    pub spec: Arc<ScheduleSpec>,
    pub due: DateTime<Utc>,
    pub run: Payload,
    pub staged: bool,
    pub after: Option<DateTime<Utc>>,
    pub history: HistoryTarget,
}

/// Whether a staged run is still planned as it was staged: the very spec it was built from,
/// and its due instant as the schedule's next run. Only then does its instant release it.
pub(super) fn still_planned(
    plan: &Plan,
    (site, id): (usize, &str),
    spec: &Arc<ScheduleSpec>,
    due: DateTime<Utc>,
) -> bool {
    plan.entry(site, id).is_some_and(|e| Arc::ptr_eq(&e.spec, spec) && e.next == Some(due))
}

/// What [`ReleaseBatch::retain_planned`] made of a batch.
pub(super) struct Retained {
    /// The runs still planned, with their new release call (None: none left, or held).
    pub batch: Option<ReleaseBatch>,
    /// The runs no longer planned as staged: to remove from Redis.
    pub dropped: Vec<(RunKey, PreparedRun)>,
    /// The runs still planned whose release call could not be built again.
    pub held: Vec<(RunKey, BuiltRun)>,
}

/// Runs staged (and released) per script call.
const STAGE_BATCH: usize = 500;

/// Staged runs of one instant and their release call, built ahead: `items[i]`, built from
/// `specs[i]`, is the run `runs[i]`.
pub(super) struct ReleaseBatch {
    items: Vec<FireItem>,
    specs: Vec<Arc<ScheduleSpec>>,
    runs: Vec<PreparedRun>,
    call: ReleaseCall,
}

/// A staged batch of an instant that fires on time, ready to send, and the next run each of
/// its schedules plans after it.
pub(super) struct Released {
    pub batch: ReadyRelease,
    pub plans: NextRuns,
}

/// The next run each schedule of a batch plans after its released run.
pub(super) type NextRuns = Vec<(usize, Arc<str>, Option<DateTime<Utc>>)>;

impl ReleaseBatch {
    /// If every run of the batch is still planned as it was staged (same spec, same due
    /// instant) and fires on time `lag` after its instant ([`planner::on_time_next`]): the
    /// next run of each schedule. Else None (the batch is decided in full).
    pub fn on_time(&self, plan: &Plan, lag: TimeDelta, grace: TimeDelta) -> Option<NextRuns> {
        let mut plans = Vec::with_capacity(self.items.len());
        for (item, spec) in self.items.iter().zip(&self.specs) {
            if !still_planned(plan, (item.site, &item.id), spec, item.due) {
                return None;
            }
            let next = planner::on_time_next(item.planned_next, item.due, item.due + lag, grace)?;
            plans.push((item.site, item.id.clone(), next));
        }
        Some(plans)
    }

    /// The runs of the batch, as the plan names them.
    pub fn keys(&self) -> impl Iterator<Item = RunKey> + '_ {
        self.items.iter().map(|item| (item.site, item.id.clone()))
    }

    /// Keeps the runs still planned as they were staged, with their release call built again
    /// (so the rest of the batch stays a release at the instant); the others are dropped, to be
    /// removed from Redis at once. Without a writer, or if the call cannot be built, the runs
    /// kept are held for the firing's full decision instead.
    pub fn retain_planned(self, plan: &Plan, writer: Option<&RqWriter>) -> Retained {
        let mut kept = (Vec::new(), Vec::new(), Vec::new());
        let mut dropped = Vec::new();
        for ((item, spec), run) in self.items.into_iter().zip(self.specs).zip(self.runs) {
            if still_planned(plan, (item.site, &item.id), &spec, item.due) {
                kept.0.push(item);
                kept.1.push(spec);
                kept.2.push(run);
            } else {
                dropped.push(((item.site, item.id), run));
            }
        }
        let (items, specs, runs) = kept;
        if items.is_empty() {
            return Retained { batch: None, dropped, held: Vec::new() };
        }
        match writer.map(|w| w.release_call(&runs)) {
            Some(Ok(call)) => {
                Retained { batch: Some(ReleaseBatch { items, specs, runs, call }), dropped, held: Vec::new() }
            }
            _ => {
                // The payloads stay staged; the firing decides them in full at the instant.
                let call = self.call;
                let held = ReleaseBatch { items, specs, runs, call }.into_built().collect();
                Retained { batch: None, dropped, held }
            }
        }
    }

    /// The batch as it is sent.
    pub fn into_ready(self) -> ReadyRelease {
        ReadyRelease { items: self.items, runs: self.runs, call: self.call }
    }

    /// The batch's runs as built runs (staged), for the firing's full decision.
    pub fn into_built(self) -> impl Iterator<Item = (RunKey, BuiltRun)> {
        self.items.into_iter().zip(self.specs).zip(self.runs).map(|((item, spec), run)| {
            let built = BuiltRun {
                spec,
                due: item.due,
                run: Ok(run),
                staged: true,
                after: item.planned_next,
                history: item.history,
            };
            ((item.site, item.id), built)
        })
    }

    /// The batch's runs (to remove from Redis, never released).
    pub fn into_runs(self) -> impl Iterator<Item = PreparedRun> {
        self.runs.into_iter()
    }
}

/// Stages the built runs of the instant `due` (batches pipelined on the connection) and
/// builds the release of every batch staged. Answers the runs held for the firing's full
/// decision (not buildable, or in a batch whose staging failed: enqueued in full at the
/// instant) and the release batches.
pub(super) async fn stage(
    writer: &RqWriter,
    due: DateTime<Utc>,
    built: Vec<(RunKey, BuiltRun)>,
) -> (HashMap<RunKey, BuiltRun>, Vec<ReleaseBatch>) {
    let mut held = HashMap::new();
    let mut ready = Vec::with_capacity(built.len());
    for (key, b) in built {
        match b.run {
            Ok(run) => ready.push((key, b.spec, b.due, b.after, b.history, run)),
            Err(_) => {
                held.insert(key, b);
            }
        }
    }
    // Sent at once: the multiplexed connection pipelines the calls. The payloads travel to
    // the call and back (moved, not copied).
    let mut calls = Vec::new();
    let mut rest = ready.into_iter();
    loop {
        let chunk: Vec<_> = rest.by_ref().take(STAGE_BATCH).collect();
        if chunk.is_empty() {
            break;
        }
        let (meta, runs): (Vec<_>, Vec<PreparedRun>) = chunk
            .into_iter()
            .map(|(key, spec, due, after, history, run)| ((key, spec, due, after, history), run))
            .unzip();
        let writer = writer.clone();
        calls.push((
            meta,
            tokio::spawn(async move {
                let staged = writer.stage_many(&runs).await.and_then(|_| writer.release_call(&runs));
                (runs, staged)
            }),
        ));
    }
    let mut releases = Vec::with_capacity(calls.len());
    for (meta, call) in calls {
        let (runs, staged) = match call.await {
            Ok((runs, staged)) => (runs, staged),
            Err(e) => {
                // A bug (the task panicked), not data: the payloads went with it; the firing
                // builds these runs itself.
                warn!(due = %rfc3339(due), runs = meta.len(), error = %e, "staging runs ahead failed");
                continue;
            }
        };
        match staged {
            Ok(call) => {
                let (mut items, mut specs) = (Vec::with_capacity(runs.len()), Vec::with_capacity(runs.len()));
                for (((site, id), spec, run_due, after, history), run) in meta.into_iter().zip(&runs) {
                    items.push(FireItem {
                        site,
                        id,
                        due: run_due,
                        expected: due,
                        planned_next: after,
                        job_id: run.job_id().to_string(),
                        on_time: true,
                        history,
                        missed: None,
                    });
                    specs.push(spec);
                }
                releases.push(ReleaseBatch { items, specs, runs, call });
            }
            Err(e) => {
                warn!(due = %rfc3339(due), runs = runs.len(), error = %e,
                    "staging runs ahead failed; they are enqueued in full at their instant");
                for ((key, spec, run_due, after, history), run) in meta.into_iter().zip(runs) {
                    let b = BuiltRun { spec, due: run_due, run: Ok(run), staged: false, after, history };
                    held.insert(key, b);
                }
            }
        }
    }
    (held, releases)
}
