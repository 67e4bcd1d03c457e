//! The schedule model every source produces: [`ScheduleSpec`], and the [`Interner`] that lets
//! 100k of them share their repeated texts and parsed schedules.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::fingerprint::Fingerprint;
use super::skip::SkipReason;
use crate::config::Mode;
use crate::cron::{self, DstGap, DstOverlap, LocalSchedule};
use crate::policy::Policies;
use crate::pyvalue::Kwargs;

/// One runnable schedule, everything a fired run needs.
///
/// Kept small because the engine holds one per planned schedule (100k of them on a large
/// bench): the texts many schedules share (site, task, description, cron, zone) and the parsed
/// schedule are shared `Arc`s handed out by an [`Interner`], and the id is the same `Arc` the
/// engine keys its plan by.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    pub site: Arc<str>,
    /// Schedule id (`TS-000001` in BTU, the `id` in a schedules file).
    pub id: Arc<str>,
    /// BTU Task id; in frappe mode the runner loads it.
    pub task: Option<Arc<str>>,
    pub task_description: Option<Arc<str>>,
    /// Dotted path of the Python function (the task's `function_string` in BTU).
    pub function: String,
    pub cron: Arc<str>,
    /// IANA zone the cron string is read in.
    pub zone: Arc<str>,
    /// Parsed `cron` + `zone`, shared by every schedule with the same pair.
    pub schedule: Arc<LocalSchedule>,
    /// Full RQ queue name (Frappe's bench prefix included).
    pub queue: String,
    /// Merged keyword arguments (task's, overridden by the schedule's).
    pub kwargs: Kwargs,
    pub timeout_secs: i64,
    pub mode: Mode,
    /// The effective policies (config defaults overridden by the row's own settings); the DST
    /// ones are also in `schedule`.
    pub policies: Policies,
    /// Changes whenever anything that shapes a run or its job changes; stored in Redis so a
    /// restarted daemon knows whether the stored next run still belongs to this schedule.
    pub fingerprint: Fingerprint,
}

/// Shares repeated texts and parsed schedules among the schedules of one load, so 100k
/// schedules of a handful of tasks, zones and cron strings hold each of those once.
#[derive(Debug, Default)]
pub struct Interner {
    texts: HashSet<Arc<str>, FastHash>,
    schedules: HashMap<ScheduleKey, Arc<LocalSchedule>, FastHash>,
}

impl Interner {
    /// The shared copy of `text`.
    pub fn text(&mut self, text: &str) -> Arc<str> {
        if let Some(t) = self.texts.get(text) {
            return t.clone();
        }
        let t: Arc<str> = Arc::from(text);
        self.texts.insert(t.clone());
        t
    }

    /// The parsed `cron` in `zone` under the DST policies, parsed once per combination; errors
    /// are not remembered (bad rows are rare and each one reports its own problem).
    pub(super) fn schedule(
        &mut self,
        cron: &str,
        zone: &str,
        gap: DstGap,
        overlap: DstOverlap,
    ) -> Result<SharedSchedule, SkipReason> {
        let (cron, zone) = (self.text(cron), self.text(zone));
        let key = (cron.clone(), zone.clone(), gap, overlap);
        if let Some(s) = self.schedules.get(&key) {
            return Ok((cron, zone, s.clone()));
        }
        let tz = cron::parse_zone(&zone)
            .map_err(|e| SkipReason::UnknownZone { zone: zone.to_string(), error: e.to_string() })?;
        let expr = cron::CronExpr::parse(&cron)
            .map_err(|e| SkipReason::InvalidCron { cron: cron.to_string(), error: e.to_string() })?;
        let s = Arc::new(LocalSchedule::new(expr, tz).with_dst(gap, overlap));
        self.schedules.insert(key, s.clone());
        Ok((cron, zone, s))
    }
}

/// What a parsed schedule depends on: cron text, zone name, DST policies.
type ScheduleKey = (Arc<str>, Arc<str>, DstGap, DstOverlap);

/// A cron text, a zone name and the schedule parsed from them, each shared.
type SharedSchedule = (Arc<str>, Arc<str>, Arc<LocalSchedule>);

/// The fingerprints of the schedules a caller already plans, by id: a rebuild skips building
/// (parsing, allocating) every row whose fingerprint is listed.
pub type KnownFingerprints = HashMap<Arc<str>, Fingerprint, FastHash>;

/// The hasher of the maps a rebuild touches for every schedule (seeded randomly per map, as
/// std's is; the keys are schedule ids and texts of the site's own database). About five times
/// cheaper than std's SipHash on short ids.
pub type FastHash = foldhash::fast::RandomState;
