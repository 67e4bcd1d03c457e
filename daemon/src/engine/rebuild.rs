//! The steps of one site's rebuild, applied to the plan as the source's rows arrive:
//! [`SiteLoad::begin`], [`SiteLoad::apply`] per batch, then [`SiteLoad::finish`] when the
//! source was read to the end or [`SiteLoad::abandon`] when it failed half way; and
//! [`resync`], which rewrites a site's whole plan to Redis after an outage.
//!
//! New schedules are planned from now (or take over the next run a previous daemon recorded,
//! to which the missed-run rule then applies); changed ones are replanned from now; unchanged
//! ones keep their next run. Each batch's plans go to Redis in one pipeline. When Redis is
//! not usable the rows are kept whole and applied when it is back ([`Finished::Deferred`]).
//!
//! When and which sites load is [`super::loader`]'s business.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{debug, info};

use super::link::{RedisDown, RedisLink};
use super::nextrun::NextRuns;
use super::plan::{Confirmation, Plan, log_skip, sorted_skips};
use super::reports::SiteRebuild;
use super::store::{PlanWrite, SiteState, rfc3339};
use crate::source::{RebuildRow, ScheduleSpec, SkipReason, SkippedRow};

/// A rebuild of one site in progress: its rows arrive in batches while the source is read.
pub(super) struct SiteLoad {
    site: usize,
    /// Entries confirmed by this load carry it (see [`super::plan`]).
    generation: u64,
    /// A previous daemon's plan (the site's first load only).
    stored: Option<SiteState>,
    report: SiteRebuild,
    /// Rows of this load that do not run.
    skipped: HashMap<String, SkipReason>,
    /// `Unchanged` rows whose entry a notify or cancel changed while loading.
    raced: usize,
    /// A Redis write of this load failed: the plan is rewritten whole (resync).
    write_failed: bool,
    /// Redis was not usable when the load began: rows are kept whole and applied when it
    /// is back.
    deferred: Option<Vec<RebuildRow>>,
}

/// How a load that read its source to the end left the site.
pub(super) enum Finished {
    /// The rows are the plan now. `again`: some of them raced a notify or cancel; the site
    /// should be loaded again to compare those afresh.
    Applied { report: SiteRebuild, again: bool },
    /// Redis was not usable: `rows` wait whole until it is back.
    Deferred { report: SiteRebuild, rows: Vec<RebuildRow> },
}

impl SiteLoad {
    /// Starts a load of site `site`. On the site's first load (`synced` false) the plan a
    /// previous daemon left in Redis is read, to be taken over. Without Redis the rows will
    /// be kept whole.
    pub async fn begin(site: usize, synced: bool, plan: &mut Plan, link: &mut RedisLink) -> SiteLoad {
        let name = plan.name(site).to_string();
        let mut load = SiteLoad {
            site,
            generation: 0,
            stored: None,
            report: SiteRebuild { site: name.clone(), ..Default::default() },
            skipped: HashMap::new(),
            raced: 0,
            write_failed: false,
            deferred: None,
        };
        if !link.is_usable() {
            load.deferred = Some(Vec::new());
            return load;
        }
        if !synced {
            match link.site_state(&name).await {
                Ok(stored) => load.stored = Some(stored),
                Err(RedisDown) => {
                    load.deferred = Some(Vec::new());
                    return load;
                }
            }
        }
        load.generation = plan.begin_generation(site);
        load
    }

    /// Applies one batch: new schedules are planned (or take over a stored plan), changed
    /// ones are replanned from now, unchanged ones keep their next run; the batch's plans are
    /// written to Redis in one pipeline.
    pub async fn apply(&mut self, rows: Vec<RebuildRow>, plan: &mut Plan, link: &mut RedisLink) {
        if let Some(deferred) = &mut self.deferred {
            deferred.extend(rows);
            return;
        }
        let (idx, generation) = (self.site, self.generation);
        // Every row of the batch is planned from the same instant, so schedules sharing a
        // parsed cron + zone share one search.
        let mut next_runs = NextRuns::new(Utc::now());
        let mut writes: Vec<(Arc<ScheduleSpec>, Option<DateTime<Utc>>)> = Vec::new();
        for row in rows {
            match row {
                RebuildRow::Skipped(s) => {
                    let SkippedRow { schedule, reason } = *s;
                    if plan.site(idx).skipped().get(&schedule) != Some(&reason) && !self.skipped.contains_key(&schedule)
                    {
                        log_skip(plan.name(idx), &schedule, &reason);
                    }
                    self.skipped.insert(schedule, reason);
                }
                RebuildRow::Unchanged { id, fingerprint } => match plan.confirm(idx, &id, generation, fingerprint) {
                    Confirmation::Duplicate => {} // the first row wins
                    Confirmation::Same => self.report.unchanged += 1,
                    Confirmation::Differs => {
                        plan.mark(idx, &id, generation);
                        self.raced += 1; // replanned by a notify while loading: keep that plan
                    }
                    Confirmation::Missing => self.raced += 1, // cancelled while loading: only a full row can replan it
                },
                RebuildRow::Loaded(spec) => {
                    let id = spec.id.clone();
                    let next = match plan.confirm(idx, &id, generation, spec.fingerprint) {
                        Confirmation::Duplicate => continue, // the first row wins
                        Confirmation::Same => {
                            self.report.unchanged += 1;
                            continue;
                        }
                        Confirmation::Differs => {
                            self.report.changed += 1;
                            let next = next_runs.next(&spec.schedule);
                            info!(site = %plan.name(idx), schedule = %id, cron = %spec.cron, zone = %spec.zone,
                                next = ?next.map(rfc3339), "schedule changed; replanned");
                            next
                        }
                        Confirmation::Missing => {
                            self.report.added += 1;
                            let recorded = self
                                .stored
                                .as_ref()
                                .and_then(|st| st.get(&*id))
                                .filter(|p| p.fingerprint == Some(spec.fingerprint))
                                .and_then(|p| p.next);
                            // A recorded run (even a past one) is kept: the timer then applies the
                            // missed-run rule to it. Otherwise plan from now, without catch-up.
                            let next = recorded.or_else(|| next_runs.next(&spec.schedule));
                            debug!(site = %plan.name(idx), schedule = %id, cron = %spec.cron, zone = %spec.zone,
                                next = ?next.map(rfc3339), resumed = recorded.is_some(), "schedule planned");
                            next
                        }
                    };
                    plan.set(idx, id.clone(), spec.clone(), next);
                    plan.mark(idx, &id, generation);
                    writes.push((spec, next));
                }
            }
        }
        if writes.is_empty() {
            return;
        }
        let plans: Vec<PlanWrite> =
            writes.iter().map(|(spec, next)| PlanWrite { spec, next: *next, describe: true }).collect();
        if link.write_plans(plan.name(idx), &plans).await.is_err() {
            self.write_failed = true;
        }
    }

    /// Ends a load whose source was read completely: entries it did not confirm are removed
    /// (and ids a previous daemon stored that are not planned now).
    pub async fn finish(self, plan: &mut Plan, link: &mut RedisLink) -> Finished {
        let idx = self.site;
        if let Some(rows) = self.deferred {
            return Finished::Deferred { report: defer(idx, &rows, plan), rows };
        }
        let SiteLoad { generation, stored, mut report, skipped, raced, mut write_failed, .. } = self;
        let site_name = report.site.clone();
        if raced > 0 {
            // The snapshot of known fingerprints was taken before a notify or cancel changed
            // these schedules; a follow-up load compares them afresh.
            debug!(site = %site_name, schedules = raced, "plan changed while loading; loading again");
        }
        let mut removed = plan.unconfirmed(idx, generation);
        for id in &removed {
            plan.remove(idx, id);
            info!(site = %site_name, schedule = %id, "schedule removed from the plan");
        }
        report.removed = removed.len();
        if let Some(st) = stored {
            let site = plan.site(idx);
            removed.extend(st.into_keys().filter(|id| !site.is_planned(id)));
        }
        if !removed.is_empty() && link.remove(&site_name, &removed).await.is_err() {
            write_failed = true;
        }
        plan.set_skipped(idx, skipped);
        report.skipped = sorted_skips(plan.site(idx).skipped());
        if write_failed {
            report.deferred = true;
            if link.is_usable() {
                resync(idx, plan, link).await; // Redis failed and came back while loading
            }
        }
        Finished::Applied { report, again: raced > 0 }
    }

    /// Drops a load the source could not finish. The batches already applied stay (they are
    /// genuine rows); nothing is removed, since the rows not read may still exist. `synced`:
    /// the site's stored plan was taken over before (a first load that did not finish leaves
    /// it to the next one).
    pub async fn abandon(self, synced: bool, plan: &mut Plan, link: &mut RedisLink) {
        let idx = self.site;
        plan.extend_skipped(idx, self.skipped);
        if self.write_failed && synced && link.is_usable() {
            resync(idx, plan, link).await;
        }
    }
}

/// Records the skip reasons of rows kept for later (Redis down), logging each schedule only
/// when its reason is new; the report of such a deferred load.
fn defer(idx: usize, rows: &[RebuildRow], plan: &mut Plan) -> SiteRebuild {
    let mut now_skipped = HashMap::new();
    for row in rows {
        if let RebuildRow::Skipped(s) = row {
            if plan.site(idx).skipped().get(&s.schedule) != Some(&s.reason) {
                log_skip(plan.name(idx), &s.schedule, &s.reason);
            }
            now_skipped.insert(s.schedule.clone(), s.reason.clone());
        }
    }
    plan.set_skipped(idx, now_skipped);
    SiteRebuild {
        site: plan.name(idx).to_string(),
        skipped: sorted_skips(plan.site(idx).skipped()),
        deferred: true,
        ..Default::default()
    }
}

/// Rewrites site `idx`'s whole plan to Redis and removes what Redis holds beyond it: after an
/// outage Redis may have lost or kept our keys; memory is authoritative.
pub(super) async fn resync(idx: usize, plan: &Plan, link: &mut RedisLink) {
    let site = plan.site(idx);
    let Ok(stored) = link.site_state(&site.name).await else { return };
    let stale: Vec<String> = stored.into_keys().filter(|id| !site.is_planned(id)).collect();
    let plans: Vec<PlanWrite> =
        site.entries().map(|e| PlanWrite { spec: &e.spec, next: e.next, describe: true }).collect();
    if link.write_plans(&site.name, &plans).await.is_ok() {
        let _ = link.remove(&site.name, &stale).await;
    }
}
