//! The plan: for every site, the schedules that run (each with its next due instant) and the
//! ones that do not (with why), plus the timer that orders every planned run by due instant.
//! Memory only; writing the plan to Redis is the callers' business ([`super::link`]).
//!
//! One invariant ties the two together: an entry's `next` is `Some(due)` exactly when the
//! timer holds the key `(due + jitter, site, id)` (jitter from the entry's spec). Only this file touches either, through
//! [`Plan::set`], [`Plan::set_next`], [`Plan::remove`] and [`Plan::pop_due`].
//!
//! Rebuild generations live here too: a load of a site takes a new generation number, marks
//! every entry its rows confirm, and at its end removes the entries it did not mark (see
//! [`super::rebuild`]). So a rebuild of 100k schedules never builds a set of loaded ids.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{debug, info, warn};

use super::planner;
use super::reports::EngineError;
use crate::metrics::SiteMetrics;
use crate::source::{FastHash, Fingerprint, KnownFingerprints, ScheduleSpec, SkipReason};

/// One planned run in the timer: the instant it fires (its due instant plus the schedule's
/// jitter, [`fires_at`]), site index, schedule id. Ordered by that instant first, so the
/// timer's first key is the next run to fire.
type TimerKey = (DateTime<Utc>, usize, Arc<str>);

/// When the timer fires the run of `spec` due at `due`: due + the schedule's jitter for it.
fn fires_at(spec: &ScheduleSpec, due: DateTime<Utc>) -> DateTime<Utc> {
    due + planner::jitter(&spec.site, &spec.id, due, spec.policies.jitter_secs)
}

/// A schedule that runs, and its next run.
pub(super) struct Entry {
    pub spec: Arc<ScheduleSpec>,
    /// `None`: the cron string has no further run.
    pub next: Option<DateTime<Utc>>,
    /// The site's rebuild generation that last confirmed this schedule.
    generation: u64,
}

/// One site's part of the plan.
pub(super) struct SitePlan {
    pub name: String,
    entries: HashMap<Arc<str>, Entry, FastHash>,
    /// Rows that do not run, with why (each logged once per change).
    skipped: HashMap<String, SkipReason>,
    /// The newest generation handed out by [`Plan::begin_generation`].
    generation: u64,
}

impl SitePlan {
    pub fn planned(&self) -> usize {
        self.entries.len()
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    pub fn skipped(&self) -> &HashMap<String, SkipReason> {
        &self.skipped
    }

    /// Whether the site plans `schedule`.
    pub fn is_planned(&self, schedule: &str) -> bool {
        self.entries.contains_key(schedule)
    }

    /// Whether the site plans `schedule` or knows why it does not run.
    pub fn knows(&self, schedule: &str) -> bool {
        self.entries.contains_key(schedule) || self.skipped.contains_key(schedule)
    }

    /// The planned entry of `schedule`, or why there is none (not runnable, or unknown).
    pub fn runnable(&self, schedule: &str) -> Result<(&Arc<str>, &Entry), EngineError> {
        self.entries.get_key_value(schedule).ok_or_else(|| match self.skipped.get(schedule) {
            Some(reason) => EngineError::NotRunnable {
                site: self.name.clone(),
                schedule: schedule.to_string(),
                reason: reason.clone(),
            },
            None => EngineError::UnknownSchedule { site: self.name.clone(), schedule: schedule.to_string() },
        })
    }
}

/// A planned run taken from the timer because it is due ([`Plan::pop_due`]).
pub(super) struct DueRun {
    pub site: usize,
    pub id: Arc<str>,
    pub due: DateTime<Utc>,
    pub spec: Arc<ScheduleSpec>,
}

/// What a rebuild row met in the plan (see [`Plan::confirm`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Confirmation {
    /// An earlier row of this same load had the id: the first row wins.
    Duplicate,
    /// Planned with this fingerprint: now marked as confirmed by the load.
    Same,
    /// Planned with another fingerprint (not marked).
    Differs,
    /// Not planned.
    Missing,
}

/// Every site's planned schedules and the timer over them.
pub(super) struct Plan {
    sites: Vec<SitePlan>,
    timer: BTreeSet<TimerKey>,
    /// Schedules set or removed since [`Plan::take_changed`] (not moved by
    /// [`Plan::set_next`]: that is the firing's own step): their runs staged ahead may no
    /// longer be due as staged.
    changed: Vec<(usize, Arc<str>)>,
    /// Per site, where each schedule's next run is reported (`per_schedule` metrics; empty
    /// in tests).
    metrics: Vec<SiteMetrics>,
}

impl Plan {
    /// An empty plan for the sites `names`, indexed in that order.
    pub fn new(names: impl IntoIterator<Item = String>) -> Self {
        let sites = names
            .into_iter()
            .map(|name| SitePlan { name, entries: HashMap::default(), skipped: HashMap::new(), generation: 0 })
            .collect();
        Plan { sites, timer: BTreeSet::new(), changed: Vec::new(), metrics: Vec::new() }
    }

    /// Reports every change of a next run to `metrics` (one per site, in site order).
    pub fn with_metrics(mut self, metrics: Vec<SiteMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// A new, empty site at the next index (a site created in a bench).
    pub fn add_site(&mut self, name: String, metrics: SiteMetrics) {
        self.sites.push(SitePlan { name, entries: HashMap::default(), skipped: HashMap::new(), generation: 0 });
        if !self.metrics.is_empty() {
            self.metrics.push(metrics);
        }
    }

    pub fn sites(&self) -> &[SitePlan] {
        &self.sites
    }

    pub fn site(&self, idx: usize) -> &SitePlan {
        &self.sites[idx]
    }

    pub fn name(&self, idx: usize) -> &str {
        &self.sites[idx].name
    }

    /// The index of site `site`; without a name, the only site.
    pub fn site_index(&self, site: Option<&str>) -> Result<usize, EngineError> {
        match site {
            Some(name) => {
                self.sites.iter().position(|s| s.name == name).ok_or_else(|| EngineError::UnknownSite(name.to_string()))
            }
            None if self.sites.len() == 1 => Ok(0),
            None => Err(EngineError::SiteRequired(
                self.sites.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
            )),
        }
    }

    /// The site of `schedule`: the named one, or the only site that plans or knows it.
    pub fn find_site(&self, site: Option<&str>, schedule: &str) -> Result<usize, EngineError> {
        if site.is_some() || self.sites.len() == 1 {
            return self.site_index(site);
        }
        self.sites
            .iter()
            .position(|s| s.entries.contains_key(schedule))
            .or_else(|| self.sites.iter().position(|s| s.skipped.contains_key(schedule)))
            .ok_or_else(|| EngineError::UnknownSchedule { site: "*".into(), schedule: schedule.to_string() })
    }

    pub fn entry(&self, idx: usize, id: &str) -> Option<&Entry> {
        self.sites[idx].entries.get(id)
    }

    /// Plans `spec` to run next at `next`, replacing what the site planned for `id`.
    pub fn set(&mut self, idx: usize, id: Arc<str>, spec: Arc<ScheduleSpec>, next: Option<DateTime<Utc>>) {
        let site = &mut self.sites[idx];
        if let Some(m) = self.metrics.get(idx) {
            m.next_run(&id, next);
        }
        self.changed.push((idx, id.clone()));
        // One hash of the id (a rebuild of 100k sets each schedule once).
        match site.entries.entry(id) {
            MapEntry::Occupied(mut slot) => {
                let id = slot.key().clone();
                if let Some(due) = slot.get().next {
                    self.timer.remove(&(fires_at(&slot.get().spec, due), idx, id.clone()));
                }
                if let Some(due) = next {
                    self.timer.insert((fires_at(&spec, due), idx, id));
                }
                // A replaced entry keeps its generation (a rebuild marks what it confirms
                // itself) ...
                let e = slot.get_mut();
                (e.spec, e.next) = (spec, next);
            }
            MapEntry::Vacant(slot) => {
                if let Some(due) = next {
                    self.timer.insert((fires_at(&spec, due), idx, slot.key().clone()));
                }
                // ... a new one takes the site's newest, so a notify during a rebuild is not
                // undone by it.
                slot.insert(Entry { spec, next, generation: site.generation });
            }
        }
    }

    /// Moves the next run of a planned schedule (nothing when it is not planned).
    pub fn set_next(&mut self, idx: usize, id: &Arc<str>, next: Option<DateTime<Utc>>) {
        let Some(entry) = self.sites[idx].entries.get_mut(id) else { return };
        if let Some(due) = entry.next {
            self.timer.remove(&(fires_at(&entry.spec, due), idx, id.clone()));
        }
        if let Some(due) = next {
            self.timer.insert((fires_at(&entry.spec, due), idx, id.clone()));
        }
        entry.next = next;
        if let Some(m) = self.metrics.get(idx) {
            m.next_run(id, next);
        }
    }

    /// Forgets `id`; whether it was planned.
    pub fn remove(&mut self, idx: usize, id: &str) -> bool {
        match self.sites[idx].entries.remove_entry(id) {
            Some((key, e)) => {
                if let Some(m) = self.metrics.get(idx) {
                    m.forget(&key);
                }
                if let Some(due) = e.next {
                    self.timer.remove(&(fires_at(&e.spec, due), idx, key.clone()));
                }
                self.changed.push((idx, key));
                true
            }
            None => false,
        }
    }

    /// The schedules set or removed since the last call.
    pub fn take_changed(&mut self) -> Vec<(usize, Arc<str>)> {
        std::mem::take(&mut self.changed)
    }

    /// When the timer fires next (the earliest due instant plus its schedule's jitter).
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.timer.first().map(|(at, _, _)| *at)
    }

    /// The planned runs whose timer fires exactly at `at`: `(site, id, spec, due instant)`.
    pub fn runs_at(
        &self,
        at: DateTime<Utc>,
    ) -> impl Iterator<Item = (usize, &Arc<str>, &Arc<ScheduleSpec>, DateTime<Utc>)> {
        self.timer.iter().take_while(move |(t, _, _)| *t == at).filter_map(|(_, idx, id)| {
            let e = self.sites[*idx].entries.get(id)?;
            Some((*idx, id, &e.spec, e.next?))
        })
    }

    /// Takes the earliest planned run if its timer fires by `now`. Its schedule then has no
    /// next run until [`Plan::set_next`] gives it one.
    pub fn pop_due(&mut self, now: DateTime<Utc>) -> Option<DueRun> {
        while self.timer.first().is_some_and(|(at, _, _)| *at <= now) {
            let (at, site, id) = self.timer.pop_first()?;
            match self.sites[site].entries.get_mut(&id) {
                Some(entry) if entry.next.is_some_and(|due| fires_at(&entry.spec, due) == at) => {
                    let due = entry.next.take()?;
                    let spec = entry.spec.clone();
                    return Some(DueRun { site, id, due, spec });
                }
                _ => continue, // a stale key (cannot happen: the invariant above)
            }
        }
        None
    }

    /// Planned schedules in the order of their next run, of one site or all: `(site, id, entry)`.
    pub fn soonest(&self, site: Option<usize>) -> impl Iterator<Item = (usize, &Arc<str>, &Entry)> {
        self.timer
            .iter()
            .filter(move |(_, i, _)| site.is_none_or(|s| s == *i))
            .filter_map(|(_, idx, id)| Some((*idx, id, self.sites[*idx].entries.get(id)?)))
    }

    /// What the site plans, as a rebuild's source needs it: rows with these fingerprints come
    /// back as small `Unchanged` markers instead of full specs.
    pub fn known_fingerprints(&self, idx: usize) -> KnownFingerprints {
        self.sites[idx].entries.iter().map(|(id, e)| (id.clone(), e.spec.fingerprint)).collect()
    }

    // ---- rebuild generations ----------------------------------------------------------------

    /// A new generation for a load of site `idx` (see the module docs).
    pub fn begin_generation(&mut self, idx: usize) -> u64 {
        let site = &mut self.sites[idx];
        site.generation += 1;
        site.generation
    }

    /// What a rebuild row of `generation` with `fingerprint` meets for `id`; a matching entry
    /// is marked as confirmed.
    pub fn confirm(&mut self, idx: usize, id: &str, generation: u64, fingerprint: Fingerprint) -> Confirmation {
        match self.sites[idx].entries.get_mut(id) {
            Some(e) if e.generation == generation => Confirmation::Duplicate,
            Some(e) if e.spec.fingerprint == fingerprint => {
                e.generation = generation;
                Confirmation::Same
            }
            Some(_) => Confirmation::Differs,
            None => Confirmation::Missing,
        }
    }

    /// Marks `id` as confirmed by the load of `generation`.
    pub fn mark(&mut self, idx: usize, id: &str, generation: u64) {
        if let Some(e) = self.sites[idx].entries.get_mut(id) {
            e.generation = generation;
        }
    }

    /// Ids the load of `generation` did not confirm.
    pub fn unconfirmed(&self, idx: usize, generation: u64) -> Vec<String> {
        self.sites[idx]
            .entries
            .iter()
            .filter(|(_, e)| e.generation != generation)
            .map(|(id, _)| id.to_string())
            .collect()
    }

    // ---- rows that do not run -----------------------------------------------------------------

    /// Records why `schedule` does not run; logs it when the reason is new.
    pub fn skip(&mut self, idx: usize, schedule: &str, reason: &SkipReason) {
        let site = &mut self.sites[idx];
        if site.skipped.get(schedule) != Some(reason) {
            log_skip(&site.name, schedule, reason);
            site.skipped.insert(schedule.to_string(), reason.clone());
        }
    }

    /// Forgets why `schedule` did not run (it runs now).
    pub fn unskip(&mut self, idx: usize, schedule: &str) {
        self.sites[idx].skipped.remove(schedule);
    }

    /// Replaces the site's skipped rows (a rebuild read them all).
    pub fn set_skipped(&mut self, idx: usize, skipped: HashMap<String, SkipReason>) {
        self.sites[idx].skipped = skipped;
    }

    /// Adds skipped rows to the site's (a rebuild read only some).
    pub fn extend_skipped(&mut self, idx: usize, skipped: HashMap<String, SkipReason>) {
        self.sites[idx].skipped.extend(skipped);
    }
}

/// One log line for a schedule that does not run, louder the more likely it is a mistake.
pub(super) fn log_skip(site: &str, schedule: &str, reason: &SkipReason) {
    match reason {
        SkipReason::Disabled | SkipReason::NotFound => {
            debug!(site, schedule, reason = %reason, "schedule does not run")
        }
        SkipReason::TaskDraft { .. } | SkipReason::TaskCancelled { .. } | SkipReason::TaskNotSubmitted { .. } => {
            info!(site, schedule, reason = %reason, "schedule does not run")
        }
        _ => warn!(site, schedule, reason = %reason, "schedule skipped"),
    }
}

/// The skipped rows of a site, sorted by schedule id (for reports).
pub(super) fn sorted_skips(skipped: &HashMap<String, SkipReason>) -> Vec<(String, SkipReason)> {
    let mut list: Vec<_> = skipped.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{RowOutcome, plain_row};

    fn spec(site: &str, id: &str, cron: &str) -> Arc<ScheduleSpec> {
        match plain_row(site, id, cron) {
            RowOutcome::Loaded(s) => Arc::new(s),
            other => panic!("{other:?}"),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).unwrap()
    }

    #[test]
    fn timer_follows_every_change_of_a_next_run() {
        let mut plan = Plan::new(["a".to_string(), "b".to_string()]);
        let (s1, s2) = (spec("a", "S1", "* * * * *"), spec("b", "S2", "* * * * *"));
        plan.set(0, s1.id.clone(), s1.clone(), Some(at("2030-01-01T00:02:00Z")));
        plan.set(1, s2.id.clone(), s2.clone(), Some(at("2030-01-01T00:01:00Z")));
        assert_eq!(plan.next_due(), Some(at("2030-01-01T00:01:00Z")));
        plan.set_next(1, &s2.id, Some(at("2030-01-01T00:03:00Z")));
        assert_eq!(plan.next_due(), Some(at("2030-01-01T00:02:00Z")));

        assert!(plan.pop_due(at("2030-01-01T00:01:59Z")).is_none(), "nothing due yet");
        let run = plan.pop_due(at("2030-01-01T00:02:00Z")).expect("due");
        assert_eq!((run.site, &*run.id, run.due), (0, "S1", at("2030-01-01T00:02:00Z")));
        assert_eq!(plan.entry(0, "S1").map(|e| e.next), Some(None), "no next run until it is set");
        plan.set_next(0, &run.id, Some(at("2030-01-01T00:04:00Z")));
        let order: Vec<_> = plan.soonest(None).map(|(_, id, e)| (id.to_string(), e.next)).collect();
        assert_eq!(
            order,
            vec![
                ("S2".to_string(), Some(at("2030-01-01T00:03:00Z"))),
                ("S1".to_string(), Some(at("2030-01-01T00:04:00Z")))
            ]
        );
        assert_eq!(plan.soonest(Some(0)).count(), 1);

        assert!(plan.remove(1, "S2"));
        assert!(!plan.remove(1, "S2"));
        assert_eq!(plan.next_due(), Some(at("2030-01-01T00:04:00Z")));
        plan.set_next(0, &run.id, None);
        assert_eq!(plan.next_due(), None, "a schedule without a next run is not in the timer");
    }

    #[test]
    fn a_load_removes_only_what_it_did_not_confirm() {
        let mut plan = Plan::new(["a".to_string()]);
        let (kept, gone) = (spec("a", "KEPT", "0 * * * *"), spec("a", "GONE", "0 * * * *"));
        plan.set(0, kept.id.clone(), kept.clone(), None);
        plan.set(0, gone.id.clone(), gone.clone(), None);

        let generation = plan.begin_generation(0);
        assert_eq!(plan.confirm(0, "KEPT", generation, kept.fingerprint), Confirmation::Same);
        assert_eq!(plan.confirm(0, "KEPT", generation, kept.fingerprint), Confirmation::Duplicate);
        assert_eq!(plan.confirm(0, "NEW", generation, kept.fingerprint), Confirmation::Missing);
        let changed = spec("a", "GONE", "30 * * * *");
        assert_eq!(plan.confirm(0, "GONE", generation, changed.fingerprint), Confirmation::Differs);
        // A schedule a notify adds while the load runs belongs to that load.
        let notified = spec("a", "NOTIFIED", "0 * * * *");
        plan.set(0, notified.id.clone(), notified, None);
        assert_eq!(plan.unconfirmed(0, generation), vec!["GONE".to_string()]);
    }

    #[test]
    fn a_schedule_is_found_on_the_one_site_that_knows_it() {
        let mut plan = Plan::new(["a".to_string(), "b".to_string()]);
        let s = spec("b", "S", "0 * * * *");
        plan.set(1, s.id.clone(), s, None);
        plan.skip(0, "OFF", &SkipReason::Disabled);
        assert_eq!(plan.find_site(None, "S").ok(), Some(1));
        assert_eq!(plan.find_site(None, "OFF").ok(), Some(0));
        assert!(matches!(plan.find_site(None, "NONE"), Err(EngineError::UnknownSchedule { .. })));
        assert!(matches!(plan.site_index(None), Err(EngineError::SiteRequired(_))));
        assert!(matches!(plan.site(0).runnable("OFF"), Err(EngineError::NotRunnable { .. })));
    }
}
