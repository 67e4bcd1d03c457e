//! Firing: turning the runs that are due into RQ jobs.
//!
//! At a due instant (plus the schedule's jitter) [`Firing::fire_due`] takes every due run from
//! the plan, decides with the missed-run rule and the schedule's catch-up policy
//! ([`super::planner::resume`]) which runs are enqueued, plans the schedule's
//! next run, and sends the runs to Redis in batches of [`ENQUEUE_BATCH`] (spawned tasks, so
//! the engine loop goes on). Each batch answers per run ([`Firing::on_fired`]): enqueued,
//! already enqueued (claimed by an earlier attempt or another daemon), not written (Redis
//! failed: the run is put back as the schedule's next one) or refused (bad data). The run
//! counters and the lateness samples are kept here, where each outcome is known.
//!
//! The payloads are usually built ahead ([`super::prepare`]) and staged in Redis with their
//! release calls and next runs ([`super::staged`]): at the instant those runs are first sent as
//! they are, before anything else, and only then is the rest decided as above — a catch-up or
//! a schedule changed since is built at the instant.
//!
//! With Redis Sentinel, the runs enqueued lately are kept ([`super::resend`]) and sent again
//! after a master change ([`Firing::resend_recent`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::batch::{
    FireItem, FireResult, Missed, Payload, ReadyRelease, Write, append_history, claimed_missed, enqueue_batch,
    release_burst, report_answer,
};
use super::jobs::{JobSettings, prepare_run, run_job_id};
use super::link::RedisLink;
use super::plan::{DueRun, Plan};
use super::planner;
use super::prepare::{BuildSettings, PREPARE_AHEAD, Prepare, Prepared};
use super::resend::{Recent, SentRun};
use super::staged::Released;
use super::store::{self, HistoryTarget, PlanWrite, rfc3339};
use crate::metrics::SiteMetrics;
use crate::outcome::RunOutcome;
use crate::rq::{Claim, EnqueueOutcome, FormChoice, RqError, RqWriter};
use crate::source::ScheduleSpec;

/// Longest the timer sleeps before looking at the clock again, so a wall-clock step (NTP)
/// cannot leave a run waiting on a stale monotonic deadline for long.
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// Runs written per script call. Redis runs scripts one after another, so a burst costs the
/// sum of its calls: batching removes the per-call cost, and several batches in flight let
/// the client encode the next one while Redis runs the previous.
const ENQUEUE_BATCH: usize = 200;
/// Runs released per script call (runs staged ahead: only ids and gate arguments are sent).
const RELEASE_BATCH: usize = 500;
/// The timer wakes this long before a due instant and the rest is waited with the OS's own
/// sleep ([`Firing::fire_due`]): tokio's timer fires up to ~1 ms after its deadline (it counts
/// whole milliseconds), `nanosleep` within tens of microseconds — a millisecond that is most of
/// the lateness budget of a release.
const WAKE_EARLY: Duration = Duration::from_millis(2);
/// How long shutdown waits for in-flight enqueues.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(15);

/// How runs are fired.
#[derive(Debug, Clone)]
pub(super) struct FireSettings {
    pub jobs: JobSettings,
    /// The missed-run rule's grace period.
    pub grace: Duration,
    /// Entries kept per schedule history list.
    pub history_max: usize,
    /// Keep per-run lateness samples (benchmarks).
    pub record_lateness: bool,
    /// Per site (in site order): run outcomes and lateness.
    pub metrics: Vec<SiteMetrics>,
    /// Keep the last runs to send again after a master change (Redis Sentinel).
    pub keep_recent: bool,
}

/// Runs fired since start, by outcome.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RunCounters {
    pub enqueued: u64,
    /// Already enqueued by an earlier attempt or another daemon.
    pub already_claimed: u64,
    /// Schedules whose missed runs were skipped (one per catch-up decision).
    pub missed: u64,
}

/// A schedule and its next run, to record in Redis.
type PlannedNext = (Arc<ScheduleSpec>, Option<DateTime<Utc>>);

/// What firing's background work yields to the engine loop.
pub(super) enum FiringEvent {
    /// A batch answered (`None`: its task failed).
    Fired(Option<Vec<FireResult>>),
    /// The payloads of the next instant are built.
    Prepared(Result<Prepared, JoinError>),
}

pub(super) struct Firing {
    /// The missed-run rule's grace period.
    grace: Duration,
    history_max: usize,
    record_lateness: bool,
    /// Job settings and claim TTL, shared with the builds ahead.
    build: BuildSettings,
    in_flight: JoinSet<Vec<FireResult>>,
    prepare: Prepare,
    counters: RunCounters,
    lateness: Vec<Duration>,
    /// The id form was decided from the workers at least once (its first decision is logged).
    id_form_decided: bool,
    metrics: Vec<SiteMetrics>,
    /// The runs enqueued lately, to send again after a master change (None: not kept).
    recent: Option<Recent>,
}

impl Firing {
    /// A site added to the engine (found in a bench) at the next index.
    pub fn add_site(&mut self, metrics: SiteMetrics) {
        self.metrics.push(metrics);
    }

    pub fn new(settings: FireSettings) -> Self {
        let claim_ttl_secs = planner::claim_ttl_secs(grace_delta(settings.grace));
        let FireSettings { jobs, grace, history_max, record_lateness, metrics, keep_recent } = settings;
        Firing {
            grace,
            history_max,
            record_lateness,
            build: BuildSettings { jobs, claim_ttl_secs },
            in_flight: JoinSet::new(),
            prepare: Prepare::default(),
            counters: RunCounters::default(),
            lateness: Vec::new(),
            id_form_decided: false,
            metrics,
            recent: keep_recent.then(Recent::default),
        }
    }

    /// The id form of Frappe-mode runs from now on (payloads already built keep theirs; the
    /// claim does not depend on it). Logs when it changes, once.
    pub fn set_id_form(&mut self, choice: &FormChoice) {
        if self.build.jobs.id_form != choice.form || !self.id_form_decided {
            info!(form = choice.form.label(), reason = %choice.reason, "frappe job id form");
        }
        self.id_form_decided = true;
        self.build.jobs.id_form = choice.form;
    }

    /// What runs are built with now (job settings with the id form, claim TTL), for the runs
    /// an operator action enqueues.
    pub fn build(&self) -> &BuildSettings {
        &self.build
    }

    pub fn history_max(&self) -> usize {
        self.history_max
    }

    pub fn grace(&self) -> Duration {
        self.grace
    }

    pub fn counters(&self) -> RunCounters {
        self.counters
    }

    /// Lateness samples of on-time runs since the last call.
    pub fn take_lateness(&mut self) -> Vec<Duration> {
        std::mem::take(&mut self.lateness)
    }

    /// When the engine loop should wake to fire (or to build payloads ahead). None while
    /// Redis is not usable: runs wait; recovery applies the missed-run rule.
    pub fn deadline(&self, plan: &Plan, link: &RedisLink) -> Option<Instant> {
        if !link.is_usable() {
            return None;
        }
        // Wake at the next due instant, once before it to build its payloads (unless that is
        // done), and at the instant of runs staged ahead: if their schedules no longer fire
        // then (removed or replanned since), `fire_due` still runs at it and removes them.
        let prepare_at = self.due_to_prepare(plan, link).map(|due| due - PREPARE_AHEAD);
        let fire_at = [plan.next_due(), self.prepare.held_due()].into_iter().flatten().min();
        let early = TimeDelta::from_std(WAKE_EARLY).unwrap_or_default();
        let wake = [fire_at.map(|at| at - early), prepare_at].into_iter().flatten().min()?;
        let wait = (wake - Utc::now()).to_std().unwrap_or(Duration::ZERO).min(MAX_SLEEP);
        Some(Instant::now() + wait)
    }

    /// The next due instant if its payloads should be built now: not while a burst is being
    /// written (both would compete for the same cores; the loop comes back here when it is
    /// written), and once per instant.
    fn due_to_prepare(&self, plan: &Plan, link: &RedisLink) -> Option<DateTime<Utc>> {
        if !link.is_usable() || !self.in_flight.is_empty() || self.prepare.is_running() {
            return None;
        }
        let due = plan.next_due()?;
        (!self.prepare.built_for(due)).then_some(due)
    }

    /// Starts building the payloads of the next due instant when it is [`PREPARE_AHEAD`] away.
    pub fn prepare_next(&mut self, plan: &Plan, link: &RedisLink) {
        let Some(due) = self.due_to_prepare(plan, link) else { return };
        let now = Utc::now();
        if due <= now || due - now > PREPARE_AHEAD {
            return; // past: fire_due builds it; far: the deadline wakes us in time
        }
        let Some(writer) = link.usable().map(|c| c.writer.clone()) else { return };
        self.prepare.start(due, plan, &self.build, self.history_max, writer);
    }

    /// A batch's answer or a finished build (pending while neither runs).
    pub async fn next_event(&mut self) -> FiringEvent {
        let (in_flight, prepare) = (&mut self.in_flight, &mut self.prepare);
        tokio::select! {
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => FiringEvent::Fired(done.ok()),
            res = prepare.finished(), if prepare.is_running() => FiringEvent::Prepared(res),
            else => std::future::pending().await,
        }
    }

    pub async fn on_event(&mut self, event: FiringEvent, plan: &mut Plan, link: &mut RedisLink) {
        match event {
            FiringEvent::Fired(Some(results)) => self.on_fired(results, plan, link).await,
            FiringEvent::Fired(None) => {}
            FiringEvent::Prepared(res) => {
                let writer = link.usable().map(|c| c.writer.clone());
                self.prepare.on_finished(res, plan, writer.as_ref());
                self.remove_unstaged(writer);
            }
        }
    }

    /// Removes at once the staged runs of schedules set or removed in the plan since the last
    /// call that their instant would no longer release (cancelled, edited, replanned).
    pub fn on_plan_changed(&mut self, plan: &mut Plan, link: &RedisLink) {
        let changed = plan.take_changed();
        if changed.is_empty() {
            return;
        }
        let writer = link.usable().map(|c| c.writer.clone());
        self.prepare.forget_changed(changed, plan, writer.as_ref());
        self.remove_unstaged(writer);
    }

    /// Removes the staged runs [`Prepare`] handed back (in a task; while Redis is not usable
    /// they are kept for the next call, and expire with their claims anyway).
    fn remove_unstaged(&mut self, writer: Option<RqWriter>) {
        let Some(writer) = writer else { return };
        let unstage = self.prepare.take_unstage();
        if unstage.is_empty() {
            return;
        }
        // In a task, on the same connection: at an instant it goes after the releases, so
        // removing runs costs the instant nothing.
        tokio::spawn(async move {
            match writer.unstage_many(&unstage).await {
                Ok(removed) => info!(runs = unstage.len(), removed, "staged runs no longer due as staged removed"),
                Err(e) => {
                    warn!(runs = unstage.len(), error = %e, "staged runs not removed; they expire with their claims")
                }
            }
        });
    }

    /// Fires every run due by now.
    pub async fn fire_due(&mut self, plan: &mut Plan, link: &mut RedisLink) {
        let Some(writer) = link.usable().map(|c| c.writer.clone()) else { return };
        if let Some(at) = [plan.next_due(), self.prepare.held_due()].into_iter().flatten().min()
            && let Ok(rest) = (at - Utc::now()).to_std()
            && rest <= WAKE_EARLY
        {
            // Woken WAKE_EARLY ahead: the rest is slept on this thread, precisely (blocking
            // the engine loop, whose next work is this instant anyway, for at most that long).
            std::thread::sleep(rest);
        }
        let now = Utc::now();
        let grace = grace_delta(self.grace);
        self.prepare.wait_if_due(now, plan, &writer).await;
        // First, before any other work at the instant: the staged runs that fire on time, with
        // their release calls and next runs known ahead. Each batch is handed to the burst's
        // one task as soon as it is checked (the yield lets that task send it before the next
        // is checked); then only their schedules' next runs are planned. What is left is
        // decided below.
        let mut burst: Option<UnboundedSender<ReadyRelease>> = None;
        let mut next_runs = Vec::new();
        while let Some(Released { batch, plans }) = self.prepare.next_release(now, grace, plan) {
            let to_burst = burst.get_or_insert_with(|| {
                let (tx, rx) = unbounded_channel();
                self.in_flight.spawn(release_burst(writer.clone(), rx));
                tx
            });
            match to_burst.send(batch) {
                Ok(()) => next_runs.extend(plans),
                // The burst task is gone (it only ends once this sender is dropped, so it
                // panicked): the batch's runs stay due and are enqueued in full just below.
                Err(_) => error!(
                    runs = plans.len(),
                    "the release of staged runs could not be sent; they are enqueued in full"
                ),
            }
            tokio::task::yield_now().await;
        }
        drop(burst);
        for (idx, id, next) in next_runs {
            plan.set_next(idx, &id, next);
        }
        // Runs staged ahead (only the release is left) and runs enqueued in full.
        let mut staged_batch: Vec<(FireItem, Payload)> = Vec::new();
        let mut batch: Vec<(FireItem, Payload)> = Vec::new();
        // Schedules whose missed run was skipped: nothing to enqueue, but Redis must learn
        // their new next run.
        let mut replanned: Vec<(usize, PlannedNext)> = Vec::new();
        // skipped_missed entries of schedules that fire nothing now.
        let mut missed_only: Vec<Missed> = Vec::new();
        while let Some(DueRun { site: idx, id, due, spec }) = plan.pop_due(now) {
            // Judged from the run's jittered instant: a timer firing at due + d is on time.
            let jitter_secs = spec.policies.jitter_secs;
            let judged = now - planner::jitter(&spec.site, &id, due, jitter_secs);
            let r = planner::resume(&spec.schedule, Some(due), judged, grace, spec.policies.catchup);
            plan.set_next(idx, &id, r.next);
            let site = plan.name(idx);
            let history = HistoryTarget::new(self.history_max, site, &id);
            let mut missed = None;
            if let Some((first, last)) = r.skipped {
                let entries = planner::missed_runs(&spec.schedule, first, last, self.history_max)
                    .into_iter()
                    .filter_map(|t| {
                        let job_id = run_job_id(site, &spec, t, &self.build.jobs);
                        history.entry(&job_id, t, RunOutcome::SkippedMissed, now)
                    })
                    .collect();
                let claim = Claim { key: store::claim_key(site, &id, first), ttl_secs: self.build.claim_ttl_secs };
                missed = Some(Missed { claim, entries });
                self.counters.missed += 1;
                if let Some(m) = self.metrics.get(idx) {
                    m.run(RunOutcome::SkippedMissed);
                }
                let (catchup, grace_secs) = (spec.policies.catchup.as_str(), self.grace.as_secs());
                if r.fire.is_empty() {
                    warn!(site, schedule = %id, first = %rfc3339(first), last = %rfc3339(last), catchup, grace_secs,
                        "missed runs skipped (older than the grace period, or catchup = none)");
                } else {
                    warn!(site, schedule = %id, first = %rfc3339(first), last = %rfc3339(last), catchup, grace_secs,
                        "missed runs skipped (catchup = latest: only the latest is caught up; all: older than the grace period)");
                }
            }
            if r.fire.is_empty() {
                if r.next.is_none() {
                    info!(site, schedule = %id, "schedule has no further runs");
                }
                replanned.push((idx, (spec, r.next)));
                missed_only.extend(missed);
                continue;
            }
            for fire in r.fire {
                let expected = fire + planner::jitter(site, &id, fire, jitter_secs);
                let on_time = fire == due && judged - fire < planner::ON_TIME;
                if !on_time {
                    info!(site, schedule = %id, due = %rfc3339(fire), "catching up a missed run");
                }
                // Built ahead when possible; otherwise (a catch-up, a schedule changed since,
                // no time to build ahead) here, which costs lateness but is the same run.
                let (run, staged) = self.prepare.take(idx, &id, fire, &spec).unwrap_or_else(|| {
                    (prepare_run(site, &spec, fire, &self.build.jobs, self.build.claim_ttl_secs, now), false)
                });
                // The id the payload was built with (a form switch since does not change it).
                let job_id = match &run {
                    Ok(r) => r.job_id().to_string(),
                    Err(_) => run_job_id(site, &spec, fire, &self.build.jobs),
                };
                // The skipped_missed entries go before the first run's own.
                let item = FireItem {
                    site: idx,
                    id: id.clone(),
                    due: fire,
                    expected,
                    planned_next: r.next,
                    job_id,
                    on_time,
                    history: history.clone(),
                    missed: std::mem::take(&mut missed),
                };
                let (to, size) = if staged { (&mut staged_batch, RELEASE_BATCH) } else { (&mut batch, ENQUEUE_BATCH) };
                to.push((item, run));
                if to.len() == size {
                    // Sent while the rest of the burst is collected: Redis starts on it at once,
                    // and the multiplexed connection pipelines the batches behind each other.
                    let how = if staged { Write::Release } else { Write::Full };
                    self.in_flight.spawn(enqueue_batch(writer.clone(), std::mem::take(to), how));
                }
            }
        }
        for (rest, how) in [(staged_batch, Write::Release), (batch, Write::Full)] {
            if !rest.is_empty() {
                self.in_flight.spawn(enqueue_batch(writer.clone(), rest, how));
            }
        }
        let missed_only = claimed_missed(&writer, missed_only).await;
        if !missed_only.is_empty() {
            append_history(&writer, &missed_only).await;
        }
        self.prepare.used_up(now);
        self.remove_unstaged(Some(writer.clone()));
        replanned.sort_by_key(|(idx, _)| *idx);
        for group in replanned.chunk_by(|a, b| a.0 == b.0) {
            let plans: Vec<PlanWrite> =
                group.iter().map(|(_, (spec, next))| PlanWrite { spec, next: *next, describe: false }).collect();
            if link.write_plans(plan.name(group[0].0), &plans).await.is_err() {
                break;
            }
        }
    }

    /// A batch's answers: counts and logs each run, records the confirmed next runs in Redis,
    /// and puts back the runs Redis did not take.
    async fn on_fired(&mut self, results: Vec<FireResult>, plan: &mut Plan, link: &mut RedisLink) {
        let mut confirmed: HashMap<usize, Vec<PlannedNext>> = HashMap::new();
        let mut redis_error: Option<String> = None;
        for FireResult { item, outcome, done_at, run } in results {
            let site = plan.name(item.site);
            match outcome {
                Ok(o) => {
                    report_answer(site, &item, &o, done_at, self.metrics.get(item.site));
                    match &o {
                        EnqueueOutcome::Enqueued | EnqueueOutcome::Replaced { .. } => self.counters.enqueued += 1,
                        EnqueueOutcome::AlreadyClaimed => self.counters.already_claimed += 1,
                        _ => {}
                    }
                    if self.record_lateness && item.on_time {
                        self.lateness.push((done_at - item.expected).to_std().unwrap_or(Duration::ZERO));
                    }
                    if let Some(e) = plan.entry(item.site, &item.id)
                        && e.next == item.planned_next
                    {
                        confirmed.entry(item.site).or_default().push((e.spec.clone(), e.next));
                    }
                    if let (true, Some(recent), Some(run)) = (o.is_enqueued(), self.recent.as_mut(), run) {
                        let history = item.history.entry_expected(
                            &item.job_id,
                            item.due,
                            item.expected,
                            RunOutcome::Enqueued,
                            done_at,
                        );
                        let FireItem { id, due, job_id, .. } = item;
                        recent.push(SentRun { schedule: id, job_id, due, history, run, done_at });
                    }
                }
                Err(RqError::Redis(e)) => {
                    // Not written: put the run back as the schedule's next one, so recovery
                    // applies the missed-run rule to it.
                    if plan.entry(item.site, &item.id).is_some_and(|e| e.next == item.planned_next) {
                        plan.set_next(item.site, &item.id, Some(item.due));
                    }
                    redis_error.get_or_insert_with(|| e.to_string());
                }
                Err(e) => {
                    // The job itself is unacceptable (bad data), or one of its keys holds
                    // another Redis type: skip this run, keep the plan.
                    error!(site, schedule = %item.id, job_id = %item.job_id, due = %rfc3339(item.due),
                        error = %e, "run not enqueued");
                }
            }
        }
        if let Some(e) = redis_error {
            link.failed(&e);
        }
        if let Some(recent) = self.recent.as_mut() {
            recent.forget_old(Utc::now());
        }
        // While Redis is not usable, the resync after recovery records the plans.
        for (idx, items) in confirmed {
            let plans: Vec<PlanWrite> =
                items.iter().map(|(spec, next)| PlanWrite { spec, next: *next, describe: false }).collect();
            if link.write_plans(plan.name(idx), &plans).await.is_err() {
                return;
            }
        }
    }

    /// After a master change (Redis Sentinel): sends the runs enqueued lately again, in the
    /// background ([`Recent::resend`]).
    pub fn resend_recent(&mut self, link: &RedisLink) {
        if let (Some(recent), Some(c)) = (self.recent.as_mut(), link.usable()) {
            recent.resend(c.writer.clone());
        }
    }

    /// Waits (a bounded time) for the batches in flight and takes their answers (shutdown).
    pub async fn finish(&mut self, plan: &mut Plan, link: &mut RedisLink) {
        info!(in_flight = self.in_flight.len(), "engine stopping: finishing in-flight enqueues");
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        while !self.in_flight.is_empty() {
            match tokio::time::timeout_at(deadline, self.in_flight.join_next()).await {
                Ok(Some(Ok(results))) => self.on_fired(results, plan, link).await,
                Ok(Some(Err(_))) => {}
                Ok(None) => break,
                Err(_) => {
                    warn!(in_flight = self.in_flight.len(), "shutdown: gave up waiting for enqueues");
                    break;
                }
            }
        }
    }
}

fn grace_delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}
