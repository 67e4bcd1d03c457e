//! The operator actions — pause, resume, skip-next, backfill, the audit trail — as
//! [`EngineHandle`] methods. The engine loop only hands out what an action needs
//! ([`Command::Target`], [`Command::Redis`]); the action itself (Redis reads and writes,
//! building and enqueueing backfilled runs) runs here, in the caller's task, so a long
//! backfill never delays a due run.
//!
//! The state lives in Redis ([`super::operator`]), where the atomic step at each due instant
//! reads it: a pause or a skip made through one daemon holds for every daemon on that Redis,
//! and survives restarts and rebuilds.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use tracing::{info, warn};

use super::choose::{self, BackfillRange};
use super::handle::{ActionTarget, Command, EngineHandle, RedisAccess};
use super::jobs::prepare_run;
use super::operator::{self, AuditRead, AuditRecord, Caller, PauseRecord};
use super::reports::{BackfillItem, BackfillReport, BackfillState, EngineError, SiteMarks, SkipReport, UpcomingRun};
use super::store::{self, rfc3339};
use crate::outcome::RunOutcome;
use crate::rq::{Gates, HistoryAppend};

/// Most instants one `skip_next` may skip.
pub const MAX_SKIP: u32 = 1000;
/// Most instants one backfill may name (its answer stays far below the frame limit).
pub const MAX_BACKFILL: u32 = 5000;
/// Runs per enqueue script call of a backfill (as firing's batches).
const BACKFILL_BATCH: usize = 200;

fn redis_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Redis(e.to_string())
}

impl EngineHandle {
    async fn target(&self, site: Option<&str>, schedule: &str, runnable: bool) -> Result<ActionTarget, EngineError> {
        let (site, schedule) = (site.map(str::to_string), schedule.to_string());
        self.ask(|reply| Command::Target { site, schedule, runnable, reply }).await?
    }

    async fn redis(&self, site: Option<&str>, schedule: Option<&str>) -> Result<RedisAccess, EngineError> {
        let (site, schedule) = (site.map(str::to_string), schedule.map(str::to_string));
        self.ask(|reply| Command::Redis { site, schedule, reply }).await?
    }

    /// Pauses a known schedule until `until` (or until resumed): the step at each due
    /// instant enqueues none of its runs meanwhile. Replaces an earlier pause. Answers the
    /// site and the pause stored.
    pub async fn pause(
        &self,
        site: Option<&str>,
        schedule: &str,
        until: Option<DateTime<Utc>>,
        note: Option<String>,
        caller: Caller,
    ) -> Result<(String, PauseRecord), EngineError> {
        let now = Utc::now();
        if let Some(u) = until.filter(|u| *u <= now) {
            return Err(EngineError::InvalidArgument(format!("until {} is not in the future", rfc3339(u))));
        }
        let mut t = self.target(site, schedule, false).await?;
        let pause = PauseRecord {
            until: until.map(rfc3339),
            note: note.clone(),
            at: rfc3339(now),
            uid: caller.uid,
            pid: caller.pid,
        };
        let args = json!({ "until": pause.until });
        let audit = AuditRecord { action: "pause", schedule: Some(schedule.to_string()), args, note, caller };
        operator::set_pause(&mut t.conn, &t.site, schedule, &pause, until, &audit).await.map_err(redis_err)?;
        info!(site = %t.site, schedule, until = ?pause.until, note = ?pause.note, uid = ?caller.uid, pid = ?caller.pid,
            "schedule paused");
        Ok((t.site, pause))
    }

    /// Ends a pause; whether there was one. The runs due while paused are not replayed.
    pub async fn resume(
        &self,
        site: Option<&str>,
        schedule: &str,
        caller: Caller,
    ) -> Result<(String, bool), EngineError> {
        let mut t = self.target(site, schedule, false).await?;
        let audit =
            AuditRecord { action: "resume", schedule: Some(schedule.to_string()), args: json!({}), note: None, caller };
        let was = operator::clear_pause(&mut t.conn, &t.site, schedule, &audit).await.map_err(redis_err)?;
        info!(site = %t.site, schedule, was_paused = was, uid = ?caller.uid, pid = ?caller.pid, "schedule resumed");
        Ok((t.site, was))
    }

    /// Skips the schedule's next `count` planned runs after those already skipped.
    pub async fn skip_next(
        &self,
        site: Option<&str>,
        schedule: &str,
        count: u32,
        caller: Caller,
    ) -> Result<SkipReport, EngineError> {
        if count == 0 || count > MAX_SKIP {
            return Err(EngineError::InvalidArgument(format!("count {count} is not in 1..={MAX_SKIP}")));
        }
        let mut t = self.target(site, schedule, true).await?;
        let Some(spec) = t.spec.clone() else {
            return Err(EngineError::UnknownSchedule { site: t.site, schedule: schedule.to_string() });
        };
        let Some(first) = t.next else {
            return Err(EngineError::InvalidArgument(format!("schedule {schedule} has no further planned run")));
        };
        let now = Utc::now();
        let already =
            operator::read_skips(&mut t.conn, &t.site, schedule, first.timestamp()).await.map_err(redis_err)?;
        let added = choose::skip_instants(&spec.schedule, first, &already, count as usize);
        let keep_from = now - TimeDelta::from_std(t.grace).unwrap_or(TimeDelta::zero()).max(TimeDelta::hours(1));
        let args = json!({ "count": count, "instants": added.iter().map(|t| rfc3339(*t)).collect::<Vec<_>>() });
        let audit = AuditRecord { action: "skip", schedule: Some(schedule.to_string()), args, note: None, caller };
        let pending =
            operator::add_skips(&mut t.conn, &t.site, schedule, &added, keep_from.timestamp(), now.timestamp(), &audit)
                .await
                .map_err(redis_err)?;
        info!(site = %t.site, schedule, count, first = ?added.first().map(|t| rfc3339(*t)),
            last = ?added.last().map(|t| rfc3339(*t)), uid = ?caller.uid, pid = ?caller.pid, "runs skipped");
        Ok(SkipReport {
            site: t.site,
            zone: spec.schedule.tz(),
            added,
            pending: pending.into_iter().filter_map(|s| DateTime::from_timestamp(s, 0)).collect(),
        })
    }

    /// Enqueues every planned instant in `[start, end)` that has no job yet (instants from now
    /// on are the plan's), through the same atomic step as the plan's runs, each with its
    /// deterministic job id; more than `max` instants is refused whole. `dry_run` writes
    /// nothing (not even an audit entry).
    pub async fn backfill(
        &self,
        site: Option<&str>,
        schedule: &str,
        (start, end): (DateTime<Utc>, DateTime<Utc>),
        max: u32,
        dry_run: bool,
        caller: Caller,
    ) -> Result<BackfillReport, EngineError> {
        if max == 0 || max > MAX_BACKFILL {
            return Err(EngineError::InvalidArgument(format!("max {max} is not in 1..={MAX_BACKFILL}")));
        }
        let mut t = self.target(site, schedule, true).await?;
        let Some(spec) = t.spec.clone() else {
            return Err(EngineError::UnknownSchedule { site: t.site, schedule: schedule.to_string() });
        };
        let now = Utc::now();
        let instants = match choose::backfill_instants(&spec.schedule, start, end.min(now), max as usize) {
            Ok(v) => v,
            Err(BackfillRange::Empty { .. }) if end > start => Vec::new(), // the range is all ahead
            Err(e) => return Err(EngineError::InvalidArgument(e.to_string())),
        };
        let (site, jobs) = (t.site.clone(), t.jobs.clone());
        let keys: Vec<(String, String)> = instants
            .iter()
            .map(|due| {
                let id = super::jobs::run_job_id(&site, &spec, *due, &jobs);
                (store::claim_key(&site, &spec.id, *due), t.writer.job_key(&id))
            })
            .collect();
        let found = operator::runs_exist(&mut t.conn, &keys).await.map_err(redis_err)?;
        // What the history says of each due instant: enqueued (or replaced), or decided but
        // not enqueued (a gate skipped it, or it was missed).
        let mut recorded: HashMap<String, bool> = HashMap::new();
        for h in store::history(&mut t.conn, &site, schedule, t.history_max).await.map_err(redis_err)? {
            let enqueued = RunOutcome::parse(&h.outcome).is_some_and(RunOutcome::is_enqueue);
            *recorded.entry(h.due).or_default() |= enqueued;
        }
        // Claims of skipped instants to release before their backfill (the claim says the
        // instant was decided, the history that nothing was enqueued).
        let mut release = Vec::new();
        let mut runs: Vec<BackfillItem> = Vec::with_capacity(instants.len());
        for ((due, (claim, job)), (claim_key, _)) in instants.iter().zip(&found).zip(&keys) {
            let exists = match recorded.get(&rfc3339(*due)) {
                _ if *job => true,
                Some(enqueued) => *enqueued,
                // Claimed but not recorded: enqueued by a run whose history entry is gone.
                None => *claim,
            };
            if !exists && *claim {
                release.push(claim_key.clone());
            }
            runs.push(BackfillItem {
                due: *due,
                job_id: super::jobs::run_job_id(&site, &spec, *due, &jobs),
                state: if exists { BackfillState::Exists } else { BackfillState::WouldEnqueue },
            });
        }
        if !dry_run && !release.is_empty() {
            operator::release_claims(&mut t.conn, &release).await.map_err(redis_err)?;
        }
        if !dry_run {
            enqueue(&t, &spec, &mut runs).await?;
            let enqueued = runs.iter().filter(|r| r.state == BackfillState::Enqueued).count();
            let args = json!({
                "start": rfc3339(start), "end": rfc3339(end), "max": max,
                "enqueued": enqueued, "existing": runs.len() - enqueued,
            });
            self.record(
                Some(&site),
                AuditRecord { action: "backfill", schedule: Some(schedule.to_string()), args, note: None, caller },
            )
            .await;
            info!(site = %site, schedule, start = %rfc3339(start), end = %rfc3339(end), enqueued,
                existing = runs.len() - enqueued, uid = ?caller.uid, pid = ?caller.pid, "backfill done");
        }
        Ok(BackfillReport { site, zone: spec.schedule.tz(), runs })
    }

    /// Appends an operator action to the audit trail of the site(s) it concerns (the named
    /// one; else the one that knows the schedule; else all). A failure is logged: the action
    /// itself stands.
    pub async fn record(&self, site: Option<&str>, record: AuditRecord) {
        let res = match self.redis(site, record.schedule.as_deref()).await {
            Ok(mut r) => operator::append_audit(&mut r.conn, &r.sites, &record).await.map_err(redis_err),
            Err(e) => Err(e),
        };
        if let Err(e) = res {
            warn!(action = record.action, schedule = ?record.schedule, error = %e, "audit entry not written");
        }
    }

    /// The newest `count` audit entries of a site (of one schedule or all), newest first.
    pub async fn audit(
        &self,
        site: Option<&str>,
        schedule: Option<&str>,
        count: usize,
    ) -> Result<(String, Vec<AuditRead>), EngineError> {
        let site = match site {
            Some(name) => name.to_string(),
            None => self.only_site()?,
        };
        let mut r = self.redis(Some(&site), None).await?;
        let entries = operator::read_audit(&mut r.conn, &site, schedule, count).await.map_err(redis_err)?;
        Ok((site, entries))
    }

    /// The one site when no site is named, as every other request resolves it.
    fn only_site(&self) -> Result<String, EngineError> {
        let sites = self.sites();
        match sites.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(EngineError::SiteRequired(sites.join(", "))),
        }
    }

    /// For each upcoming run: (paused, skipped). Unknown (Redis down) reads as neither.
    pub async fn marks_of(&self, runs: &[UpcomingRun]) -> Vec<(bool, bool)> {
        let mut by_site: HashMap<&str, Vec<String>> = HashMap::new();
        for r in runs {
            let ids = by_site.entry(r.site.as_str()).or_default();
            if !ids.contains(&r.schedule) {
                ids.push(r.schedule.clone());
            }
        }
        let from = runs.iter().map(|r| r.due.timestamp()).min().unwrap_or(0);
        let mut found = HashMap::new();
        for (site, ids) in by_site {
            let Ok(mut access) = self.redis(Some(site), None).await else { continue };
            match operator::marks(&mut access.conn, site, &ids, from).await {
                Ok(m) => {
                    found.insert(site.to_string(), m);
                }
                Err(e) => warn!(site, error = %e, "cannot read pause/skip marks for upcoming"),
            }
        }
        runs.iter()
            .map(|r| match found.get(&r.site).and_then(|m| m.get(&r.schedule)) {
                Some((pause, skips)) => {
                    (pause.as_ref().is_some_and(|p| p.covers(r.due)), skips.contains(&r.due.timestamp()))
                }
                None => (false, false),
            })
            .collect()
    }

    /// Per site (by name): paused schedules and skipped instants still ahead.
    pub async fn site_marks(&self) -> HashMap<String, SiteMarks> {
        let mut out = HashMap::new();
        let Ok(mut access) = self.redis(None, None).await else { return out };
        let now = Utc::now().timestamp();
        for site in access.sites.clone() {
            match operator::site_marks(&mut access.conn, &site, now).await {
                Ok((paused, skipped)) => {
                    let skipped =
                        skipped.into_iter().filter_map(|(id, t)| Some((id, DateTime::from_timestamp(t, 0)?))).collect();
                    out.insert(site, SiteMarks { paused, skipped });
                }
                Err(e) => warn!(site, error = %e, "cannot read pause/skip marks for status"),
            }
        }
        out
    }
}

/// Writes the runs of `runs` still `WouldEnqueue` through the atomic enqueue, in batches, and
/// their history entries; each becomes `Enqueued`, or `Exists` when the step found it claimed.
async fn enqueue(
    t: &ActionTarget,
    spec: &crate::source::ScheduleSpec,
    runs: &mut [BackfillItem],
) -> Result<(), EngineError> {
    let now = Utc::now();
    let todo: Vec<usize> = (0..runs.len()).filter(|i| runs[*i].state == BackfillState::WouldEnqueue).collect();
    for chunk in todo.chunks(BACKFILL_BATCH) {
        let mut prepared = Vec::with_capacity(chunk.len());
        for &i in chunk {
            let run = prepare_run(&t.site, spec, runs[i].due, &t.jobs, t.claim_ttl_secs, now).map_err(|e| {
                EngineError::InvalidArgument(format!("the run due {} cannot be built: {e}", rfc3339(runs[i].due)))
            })?;
            // An explicit request for past instants: no pause, skip or overlap gate (a batch
            // of backfilled runs would otherwise skip or cancel each other); the last job is
            // recorded, so the next planned run's overlap check sees them.
            let gates = Gates { lastjob_key: Some(store::lastjob_key(&t.site, &spec.id)), ..Gates::default() };
            prepared.push(run.with_gates(gates));
        }
        let target = store::HistoryTarget::new(t.history_max, &t.site, &spec.id);
        let outcomes = t.writer.enqueue_many(&prepared).await.map_err(redis_err)?;
        let mut history: Vec<HistoryAppend> = Vec::new();
        for (&i, outcome) in chunk.iter().zip(outcomes) {
            let outcome = outcome.map_err(redis_err)?;
            if outcome.is_enqueued() {
                runs[i].state = BackfillState::Enqueued;
                info!(site = %t.site, schedule = %spec.id, job_id = %runs[i].job_id, due = %rfc3339(runs[i].due),
                    "run enqueued (backfill)");
                history.extend(target.entry(&runs[i].job_id, runs[i].due, RunOutcome::Enqueued, Utc::now()));
            } else {
                // Claimed before (or, with no gate set, nothing else can answer).
                runs[i].state = BackfillState::Exists;
            }
        }
        if let Err(e) = t.writer.append_history(&history).await {
            warn!(site = %t.site, schedule = %spec.id, error = %e, "history entries of backfilled runs not written; the runs are enqueued");
        }
    }
    Ok(())
}
