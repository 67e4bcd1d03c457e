//! Request answers: what the engine does for the requests of an [`super::EngineHandle`] —
//! apply notified rows, cancel, status, upcoming runs, history, run-now. Each is a function of
//! the components it needs (the plan, the Redis link, the loader, firing), called by the
//! engine loop; slow Redis reads and writes of an answer (history, run-now) run in spawned
//! tasks that answer on the request's channel themselves.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::firing::Firing;
use super::follow::{Because, FollowSet, Seen};
use super::handle::{ActionTarget, RedisAccess};
use super::jobs::{build_job, run_job_id};
use super::link::RedisLink;
use super::loader::Loader;
use super::plan::{Entry, Plan};
use super::reports::{
    EngineError, LegacyKind, LegacyReport, NOTIFY_NEXT_RUNS, RunNowResult, ScheduleState, ScheduleStatus, SiteStatus,
    StatusReport, UpcomingRun,
};
use super::reread::ReadResults;
use super::store::{self, HistoryEntry, HistoryTarget, PlanWrite, rfc3339};
use crate::outcome::RunOutcome;
use crate::rq::Claim;
use crate::source::{RowOutcome, ScheduleSpec, SkipReason, SourceError};

fn redis_down() -> EngineError {
    EngineError::Redis("redis is not reachable".into())
}

/// Applies rows a notify read: a changed or new schedule is replanned from now, one that does
/// not run leaves the plan. Answers where each schedule stands.
pub(super) async fn notify(rows: Vec<RowOutcome>, plan: &mut Plan, link: &mut RedisLink) -> Vec<ScheduleState> {
    let now = Utc::now();
    let mut states = Vec::with_capacity(rows.len());
    let mut writes: Vec<(usize, Arc<ScheduleSpec>, Option<DateTime<Utc>>)> = Vec::new();
    let mut removals: Vec<(usize, String)> = Vec::new();
    for row in rows {
        let Ok(idx) = plan.site_index(Some(row.site())) else { continue };
        match row {
            RowOutcome::Loaded(spec) => {
                let id: Arc<str> = spec.id.clone();
                plan.unskip(idx, &id);
                let unchanged = plan.entry(idx, &id).is_some_and(|e| e.spec.fingerprint == spec.fingerprint);
                if !unchanged {
                    let spec = Arc::new(spec);
                    let next = spec.schedule.next_after(now);
                    info!(site = %plan.name(idx), schedule = %id, cron = %spec.cron, zone = %spec.zone,
                        next = ?next.map(rfc3339), "schedule planned (notify)");
                    plan.set(idx, id.clone(), spec.clone(), next);
                    writes.push((idx, spec, next));
                }
                states.push(state_of(plan, idx, &id));
            }
            RowOutcome::Skipped { site, schedule, reason } => {
                if plan.remove(idx, &schedule) {
                    info!(site = %site, schedule = %schedule, reason = %reason, "schedule removed from the plan (notify)");
                }
                removals.push((idx, schedule.clone()));
                if reason != SkipReason::NotFound {
                    plan.skip(idx, &schedule, &reason);
                }
                states.push(ScheduleState { site, schedule, status: ScheduleStatus::NotRunning(reason) });
            }
        }
    }
    // While Redis is not usable, the resync after recovery writes these.
    for (idx, spec, next) in &writes {
        let one = [PlanWrite { spec, next: *next, describe: true }];
        if link.write_plans(plan.name(*idx), &one).await.is_err() {
            return states;
        }
    }
    for (idx, id) in &removals {
        if link.remove(plan.name(*idx), std::slice::from_ref(id)).await.is_err() {
            break;
        }
    }
    states
}

/// A request of the original BTU app, which comes before the app's transaction commits:
/// applied at once (a create: on each site whose source has the row; a cancel: the planned
/// runs dropped on every site), then the row is followed on every database site.
pub(super) async fn legacy(
    kind: LegacyKind,
    schedule: &str,
    rows: Vec<Result<RowOutcome, SourceError>>,
    plan: &mut Plan,
    link: &mut RedisLink,
    follows: &mut FollowSet,
) -> LegacyReport {
    let now = Instant::now();
    let (mut found, mut errors, mut following) = (Vec::new(), Vec::new(), false);
    for (idx, row) in rows.into_iter().enumerate() {
        let seen = match &row {
            Ok(row) => Seen::of(row),
            Err(e) => {
                errors.push(e.to_string());
                Seen::Unread
            }
        };
        if follows.follows(idx) {
            follows.follow(idx, schedule, seen, now);
            following = true;
        }
        match row {
            Ok(RowOutcome::Skipped { reason: SkipReason::NotFound, .. }) | Err(_) => {}
            Ok(row) => found.push(row),
        }
    }
    let (states, cancelled) = match kind {
        LegacyKind::Create => (notify(found, plan, link).await, false),
        LegacyKind::Cancel => (Vec::new(), cancel_everywhere(schedule, plan, link).await),
    };
    if following {
        info!(schedule, request = ?kind, secs = follows.window().as_secs(), "following the schedule's rows until its change is committed");
    }
    LegacyReport { states, cancelled, following: following.then(|| follows.window()), errors }
}

/// Drops `schedule`'s planned runs on every site; whether any site had some.
async fn cancel_everywhere(schedule: &str, plan: &mut Plan, link: &mut RedisLink) -> bool {
    let mut any = false;
    for idx in 0..plan.sites().len() {
        if plan.remove(idx, schedule) {
            any = true;
            info!(site = %plan.name(idx), schedule, "schedule cancelled");
        }
        // While Redis is not usable, the resync after recovery removes it.
        let _ = link.remove(plan.name(idx), &[schedule.to_string()]).await;
    }
    any
}

/// Applies what a re-read of followed schedules found ([`super::follow`]): the rows that
/// changed since they were seen, and those whose follow window ended, as a notify would.
pub(super) async fn followed(results: ReadResults, follows: &mut FollowSet, plan: &mut Plan, link: &mut RedisLink) {
    let mut apply = Vec::new();
    for (idx, read) in results {
        match read {
            Ok(rows) => {
                for (row, because) in follows.on_read(idx, rows) {
                    match because {
                        Because::Changed => {
                            info!(site = %plan.name(idx), schedule = row.schedule(), "followed schedule changed; applying its committed row")
                        }
                        Because::WindowEnded => {
                            debug!(site = %plan.name(idx), schedule = row.schedule(), "follow window ended; applying the committed row once more")
                        }
                    }
                    apply.push(row);
                }
            }
            Err(e) => {
                if follows.read_failed(idx) {
                    warn!(site = %plan.name(idx), error = %e, "cannot re-read followed schedules; retrying");
                }
            }
        }
    }
    if !apply.is_empty() {
        notify(apply, plan, link).await;
    }
}

/// Where schedule `id` of site `idx` stands: its next runs, or why it does not run.
fn state_of(plan: &Plan, idx: usize, id: &str) -> ScheduleState {
    let site = plan.site(idx);
    let status = match plan.entry(idx, id) {
        Some(e) => {
            let mut next_runs = Vec::new();
            if let Some(n) = e.next {
                next_runs.push(n);
                next_runs.extend(e.spec.schedule.runs_after(n).take(NOTIFY_NEXT_RUNS - 1));
            }
            ScheduleStatus::Planned {
                task: e.spec.task.as_deref().map(str::to_string),
                cron: e.spec.cron.to_string(),
                zone: e.spec.schedule.tz(),
                queue: e.spec.queue.clone(),
                next_runs,
                policies: e.spec.policies,
            }
        }
        None => ScheduleStatus::NotRunning(site.skipped().get(id).cloned().unwrap_or(SkipReason::NotFound)),
    };
    ScheduleState { site: site.name.clone(), schedule: id.to_string(), status }
}

/// Forgets a schedule's planned runs; whether it was planned.
pub(super) async fn cancel(
    site: Option<&str>,
    schedule: &str,
    plan: &mut Plan,
    link: &mut RedisLink,
) -> Result<bool, EngineError> {
    let idx = match plan.find_site(site, schedule) {
        Ok(i) => i,
        Err(EngineError::UnknownSchedule { .. }) => return Ok(false),
        Err(e) => return Err(e),
    };
    let existed = plan.remove(idx, schedule);
    if existed {
        info!(site = %plan.name(idx), schedule, "schedule cancelled");
    }
    // While Redis is not usable, the resync after recovery removes it.
    let _ = link.remove(plan.name(idx), &[schedule.to_string()]).await;
    Ok(existed)
}

pub(super) fn status(
    started_at: DateTime<Utc>,
    plan: &Plan,
    link: &RedisLink,
    loader: &Loader,
    firing: &Firing,
) -> StatusReport {
    let counters = firing.counters();
    StatusReport {
        started_at,
        redis_up: link.is_usable(),
        sites: plan
            .sites()
            .iter()
            .enumerate()
            .map(|(idx, s)| {
                let source = loader.site(idx);
                SiteStatus {
                    name: s.name.clone(),
                    source_ok: source.source_ok,
                    planned: s.planned(),
                    skipped: s.skipped().len(),
                    disabled: s.skipped().values().filter(|r| **r == SkipReason::Disabled).count(),
                    last_loaded: source.last_loaded,
                    last_error: source.last_error.clone(),
                }
            })
            .collect(),
        next_due: plan.next_due(),
        last_rebuild: loader.last_rebuild(),
        runs_enqueued: counters.enqueued,
        runs_already_claimed: counters.already_claimed,
        runs_missed: counters.missed,
    }
}

/// The next `count` runs of one schedule, or of every schedule (of one site or all), in due
/// order.
pub(super) fn upcoming(
    plan: &Plan,
    site: Option<&str>,
    schedule: Option<&str>,
    count: usize,
) -> Result<Vec<UpcomingRun>, EngineError> {
    let site_filter = match site {
        Some(name) => Some(plan.site_index(Some(name))?),
        None => None,
    };
    let mut runs: Vec<(DateTime<Utc>, usize, Arc<str>)> = Vec::new();
    let mut push_runs = |idx: usize, id: &Arc<str>, e: &Entry| {
        if let Some(n) = e.next {
            runs.push((n, idx, id.clone()));
            for r in e.spec.schedule.runs_after(n).take(count.saturating_sub(1)) {
                runs.push((r, idx, id.clone()));
            }
        }
    };
    if let Some(schedule) = schedule {
        let idx = plan.find_site(site, schedule)?;
        let (id, e) = plan.site(idx).runnable(schedule)?;
        push_runs(idx, id, e);
    } else {
        // The `count` earliest runs overall belong to at most `count` schedules, and those
        // are among the first `count` timer keys (a schedule's first run is its earliest).
        for (idx, id, e) in plan.soonest(site_filter).take(count) {
            push_runs(idx, id, e);
        }
    }
    runs.sort();
    runs.truncate(count);
    Ok(runs
        .into_iter()
        .filter_map(|(due, idx, id)| {
            let e = plan.entry(idx, &id)?;
            Some(UpcomingRun {
                site: plan.name(idx).to_string(),
                schedule: id.to_string(),
                task: e.spec.task.as_deref().map(str::to_string),
                due,
                zone: e.spec.schedule.tz(),
                policies: e.spec.policies,
            })
        })
        .collect())
}

/// The newest `count` enqueued runs of a schedule, read from Redis in a spawned task that
/// answers on `reply`.
pub(super) fn history(
    plan: &Plan,
    link: &RedisLink,
    site: Option<&str>,
    schedule: String,
    count: usize,
    reply: oneshot::Sender<Result<Vec<HistoryEntry>, EngineError>>,
) {
    let idx = match plan.find_site(site, &schedule) {
        Ok(i) => i,
        Err(e) => {
            let _ = reply.send(Err(e));
            return;
        }
    };
    let Some(mut conn) = link.usable().map(|c| c.conn.clone()) else {
        let _ = reply.send(Err(redis_down()));
        return;
    };
    let site = plan.name(idx).to_string();
    // A schedule the engine does not know and that never ran is a typo, not an empty
    // history; a deleted schedule's past runs are still shown.
    let known = plan.site(idx).knows(&schedule);
    tokio::spawn(async move {
        let res = match store::history(&mut conn, &site, &schedule, count).await {
            Ok(runs) if runs.is_empty() && !known => Err(EngineError::UnknownSchedule { site, schedule }),
            Ok(runs) => Ok(runs),
            Err(e) => Err(EngineError::Redis(e.to_string())),
        };
        let _ = reply.send(res);
    });
}

/// Enqueues a run of a planned schedule now, outside its plan: its own job id, so it never
/// collides with a planned run; answers on `reply` once written.
pub(super) fn run_now(
    plan: &Plan,
    link: &RedisLink,
    firing: &Firing,
    site: Option<&str>,
    schedule: &str,
    reply: oneshot::Sender<Result<RunNowResult, EngineError>>,
) {
    let found = plan.find_site(site, schedule).and_then(|idx| Ok((idx, plan.site(idx).runnable(schedule)?.1)));
    let (idx, entry) = match found {
        Ok(found) => found,
        Err(e) => {
            let _ = reply.send(Err(e));
            return;
        }
    };
    let Some(writer) = link.usable().map(|c| c.writer.clone()) else {
        let _ = reply.send(Err(redis_down()));
        return;
    };
    let (site, spec, build) = (plan.name(idx), &entry.spec, firing.build());
    let mut now = Utc::now();
    if now.timestamp_subsec_nanos() == 0 {
        // Keep the id apart from the scheduled run of the same second.
        now += TimeDelta::nanoseconds(1);
    }
    let job_id = run_job_id(site, spec, now, &build.jobs);
    let job = build_job(spec, now, job_id.clone(), &build.jobs);
    let claim = Claim { key: store::claim_key(site, &spec.id, now), ttl_secs: build.claim_ttl_secs };
    let history =
        HistoryTarget::new(firing.history_max(), site, &spec.id).entry(&job_id, now, RunOutcome::Enqueued, now);
    let result =
        RunNowResult { site: site.to_string(), schedule: spec.id.to_string(), job_id, queue: job.queue.clone() };
    tokio::spawn(async move {
        let res = match writer.enqueue_once(&job, &claim, history.as_ref(), Utc::now()).await {
            Ok(_) => {
                info!(site = %result.site, schedule = %result.schedule, job_id = %result.job_id, "run enqueued (run-now)");
                Ok(result)
            }
            Err(e) => Err(EngineError::Redis(e.to_string())),
        };
        let _ = reply.send(res);
    });
}

/// What an operator action on `schedule` needs ([`super::actions`]): its site, its planned
/// spec (required when `runnable`), a Redis connection and the settings runs are built with.
pub(super) fn target(
    plan: &Plan,
    link: &RedisLink,
    firing: &Firing,
    site: Option<&str>,
    schedule: &str,
    runnable: bool,
) -> Result<ActionTarget, EngineError> {
    let idx = plan.find_site(site, schedule)?;
    let entry = if runnable {
        Some(plan.site(idx).runnable(schedule)?.1)
    } else if plan.site(idx).knows(schedule) {
        plan.entry(idx, schedule)
    } else {
        return Err(EngineError::UnknownSchedule { site: plan.name(idx).to_string(), schedule: schedule.to_string() });
    };
    let connected = link.usable().ok_or_else(redis_down)?;
    Ok(ActionTarget {
        site: plan.name(idx).to_string(),
        spec: entry.map(|e| e.spec.clone()),
        next: entry.and_then(|e| e.next),
        conn: connected.conn.clone(),
        writer: connected.writer.clone(),
        jobs: firing.build().jobs.clone(),
        claim_ttl_secs: firing.build().claim_ttl_secs,
        history_max: firing.history_max(),
        grace: firing.grace(),
    })
}

/// A Redis connection and the sites an action concerns: the named site; else the site that
/// knows `schedule`; else every site.
pub(super) fn redis_access(
    plan: &Plan,
    link: &RedisLink,
    site: Option<&str>,
    schedule: Option<&str>,
) -> Result<RedisAccess, EngineError> {
    let sites = match (site, schedule) {
        (Some(_), _) => vec![plan.name(plan.site_index(site)?).to_string()],
        (None, Some(id)) => match plan.find_site(None, id) {
            Ok(idx) => vec![plan.name(idx).to_string()],
            Err(_) => plan.sites().iter().map(|s| s.name.clone()).collect(),
        },
        (None, None) => plan.sites().iter().map(|s| s.name.clone()).collect(),
    };
    let conn = link.usable().ok_or_else(redis_down)?.conn.clone();
    Ok(RedisAccess { sites, conn })
}
