//! The metric families the daemon exports, their registry, and per-site handles the engine
//! counts through. Names, units and labels follow Prometheus conventions; docs/operations.md
//! describes each one.
//!
//! Counting is always on (an atomic add per run or request); only the HTTP listener that
//! serves them is optional. Hot paths use [`SiteMetrics`], whose handles are looked up once
//! per site, so a run costs no label hashing or allocation.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::ready::Snapshot;
use crate::outcome::RunOutcome;

/// Enqueue time minus due instant: 1 ms to 60 s (later runs are catch-ups: `+Inf`).
const LATENESS_BUCKETS: [f64; 15] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
/// One site's load: 10 ms (a few schedules) to 2 min (100k rows over a slow link).
const REBUILD_BUCKETS: [f64; 12] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0];
/// One socket request: 100 µs (ping) to 10 s (a rebuild answered when done).
const REQUEST_BUCKETS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0];

type FloatGauge = Gauge<f64, AtomicU64>;
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The kinds of schedule rows `btu_schedules` counts (issue 9 adds `paused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScheduleState {
    /// Planned: has a next run.
    Planned,
    /// The row is disabled.
    Disabled,
    /// The row cannot run (task missing, bad cron or zone, bad arguments, …).
    Invalid,
}

impl ScheduleState {
    pub const ALL: [ScheduleState; 3] = [ScheduleState::Planned, ScheduleState::Disabled, ScheduleState::Invalid];

    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleState::Planned => "planned",
            ScheduleState::Disabled => "disabled",
            ScheduleState::Invalid => "invalid",
        }
    }
}

/// A `&'static str` label value: the enums above and request kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Word(&'static str);

impl EncodeLabelValue for Word {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.0, encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SiteLabel {
    site: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RunLabels {
    site: String,
    outcome: Word,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabels {
    site: String,
    state: Word,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    kind: Word,
    result: Word,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabel {
    kind: Word,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    protocol_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ScheduleLabels {
    site: String,
    schedule: String,
}

/// Every family, registered once. Share it as `Arc<Metrics>`.
pub struct Metrics {
    registry: Registry,
    per_schedule: bool,
    lateness: Histograms<SiteLabel>,
    runs: Family<RunLabels, Counter>,
    schedules: Family<StateLabels, Gauge>,
    rebuild_duration: Histograms<SiteLabel>,
    rebuild_last_success: Family<SiteLabel, FloatGauge>,
    redis_up: Gauge,
    eviction_ok: Gauge,
    /// The eviction-policy warning has been logged (once per process).
    eviction_warned: AtomicBool,
    source_up: Family<SiteLabel, Gauge>,
    requests: Family<RequestLabels, Counter>,
    request_duration: Histograms<KindLabel>,
    next_run: Family<ScheduleLabels, FloatGauge>,
    last_enqueue: Family<ScheduleLabels, FloatGauge>,
    mariadb_open: Gauge,
    mariadb_max: Gauge,
    mariadb_waits: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("per_schedule", &self.per_schedule).finish_non_exhaustive()
    }
}

impl Metrics {
    /// The families; `per_schedule` adds the two per-schedule gauges (a series per schedule:
    /// off by default).
    pub fn new(per_schedule: bool) -> Metrics {
        let mut m = Metrics {
            registry: Registry::default(),
            per_schedule,
            lateness: Family::new_with_constructor(|| Histogram::new(LATENESS_BUCKETS)),
            runs: Family::default(),
            schedules: Family::default(),
            rebuild_duration: Family::new_with_constructor(|| Histogram::new(REBUILD_BUCKETS)),
            rebuild_last_success: Family::default(),
            redis_up: Gauge::default(),
            eviction_ok: Gauge::default(),
            eviction_warned: AtomicBool::new(false),
            source_up: Family::default(),
            requests: Family::default(),
            request_duration: Family::new_with_constructor(|| Histogram::new(REQUEST_BUCKETS)),
            next_run: Family::default(),
            last_enqueue: Family::default(),
            mariadb_open: Gauge::default(),
            mariadb_max: Gauge::default(),
            mariadb_waits: Counter::default(),
        };
        let r = &mut m.registry;
        r.register_with_unit(
            "btu_run_lateness",
            "Enqueue time minus due instant of each run enqueued",
            Unit::Seconds,
            m.lateness.clone(),
        );
        r.register("btu_runs", "Due runs by outcome", m.runs.clone());
        r.register("btu_schedules", "Schedule rows by state, as of the last scrape", m.schedules.clone());
        r.register_with_unit(
            "btu_rebuild_duration",
            "Duration of each successful load of a site's schedules",
            Unit::Seconds,
            m.rebuild_duration.clone(),
        );
        r.register_with_unit(
            "btu_rebuild_last_success_timestamp",
            "Unix time of the last successful load of a site's schedules",
            Unit::Seconds,
            m.rebuild_last_success.clone(),
        );
        r.register("btu_redis_up", "1 while Redis answers the daemon", m.redis_up.clone());
        r.register(
            "btu_redis_eviction_policy_ok",
            "1 when Redis' maxmemory-policy is noeviction (others can drop queued jobs)",
            m.eviction_ok.clone(),
        );
        r.register("btu_source_up", "1 while a site's schedule source could be read", m.source_up.clone());
        r.register("btu_requests", "Socket requests by kind and result", m.requests.clone());
        r.register_with_unit(
            "btu_request_duration",
            "Time to answer a socket request",
            Unit::Seconds,
            m.request_duration.clone(),
        );
        r.register(
            "btu_mariadb_connections",
            "MariaDB connections open now, over every site (busy and idle)",
            m.mariadb_open.clone(),
        );
        r.register(
            "btu_mariadb_max_connections",
            "The cap on MariaDB connections over every site ([mariadb] max_connections)",
            m.mariadb_max.clone(),
        );
        r.register(
            "btu_mariadb_connection_waits",
            "Times work waited because every MariaDB connection slot was busy",
            m.mariadb_waits.clone(),
        );
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
                protocol_version: btu_protocol::PROTOCOL_VERSION.to_string(),
            })
            .set(1);
        r.register("btu_build_info", "The daemon's version and protocol version (always 1)", build);
        if per_schedule {
            r.register_with_unit(
                "btu_schedule_next_run_timestamp",
                "Unix time of each planned schedule's next run",
                Unit::Seconds,
                m.next_run.clone(),
            );
            r.register_with_unit(
                "btu_schedule_last_enqueue_timestamp",
                "Unix time each schedule's last run was enqueued",
                Unit::Seconds,
                m.last_enqueue.clone(),
            );
        }
        m
    }

    /// Handles for site `site`; every outcome and state starts at 0.
    pub fn site(&self, site: &str) -> SiteMetrics {
        let label = SiteLabel { site: site.to_string() };
        for state in ScheduleState::ALL {
            let _ = self.schedules.get_or_create(&StateLabels { site: site.to_string(), state: Word(state.as_str()) });
        }
        SiteMetrics {
            site: site.to_string(),
            lateness: self.lateness.get_or_create_owned(&label),
            runs: RunOutcome::ALL.map(|o| {
                self.runs.get_or_create_owned(&RunLabels { site: site.to_string(), outcome: Word(o.as_str()) })
            }),
            rebuild_duration: self.rebuild_duration.get_or_create_owned(&label),
            per_schedule: self.per_schedule.then(|| (self.next_run.clone(), self.last_enqueue.clone())),
        }
    }

    /// The handles the MariaDB connection cap of `max` keeps up to date: connections open now
    /// and waits for a slot.
    pub fn mariadb(&self, max: usize) -> (Gauge, Counter) {
        self.mariadb_max.set(i64::try_from(max).unwrap_or(i64::MAX));
        (self.mariadb_open.clone(), self.mariadb_waits.clone())
    }

    /// One socket request of `kind` answered with `result` (`ok` or an error code) in
    /// `elapsed`.
    pub fn request(&self, kind: &'static str, result: &'static str, elapsed: Duration) {
        self.requests.get_or_create(&RequestLabels { kind: Word(kind), result: Word(result) }).inc();
        self.request_duration.get_or_create(&KindLabel { kind: Word(kind) }).observe(elapsed.as_secs_f64());
    }

    /// Redis' `maxmemory-policy` (None: Redis refused `CONFIG GET`). True when the caller
    /// should log the warning: the policy is not `noeviction` and this is the first time.
    pub fn eviction_policy(&self, policy: Option<&str>) -> bool {
        let ok = policy == Some("noeviction");
        self.eviction_ok.set(i64::from(ok));
        !ok && !self.eviction_warned.swap(true, Ordering::Relaxed)
    }

    /// Sets the gauges that describe state the engine owns, from its answer at scrape time.
    pub fn apply(&self, snapshot: &Snapshot) {
        self.redis_up.set(i64::from(snapshot.redis_up));
        for s in &snapshot.sites {
            let label = SiteLabel { site: s.name.clone() };
            self.source_up.get_or_create(&label).set(i64::from(s.source_up == Some(true)));
            if let Some(t) = s.last_loaded {
                self.rebuild_last_success.get_or_create(&label).set(timestamp(t));
            }
            let invalid = s.skipped.saturating_sub(s.disabled);
            for (state, n) in [
                (ScheduleState::Planned, s.planned),
                (ScheduleState::Disabled, s.disabled),
                (ScheduleState::Invalid, invalid),
            ] {
                let labels = StateLabels { site: s.name.clone(), state: Word(state.as_str()) };
                self.schedules.get_or_create(&labels).set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }

    /// The Prometheus (OpenMetrics) text of every family.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// One site's handles, looked up once: counting a run is an atomic add.
#[derive(Clone)]
pub struct SiteMetrics {
    site: String,
    lateness: Histogram,
    runs: [Counter; RunOutcome::ALL.len()],
    rebuild_duration: Histogram,
    /// `per_schedule = true`: the next-run and last-enqueue families.
    per_schedule: Option<(Family<ScheduleLabels, FloatGauge>, Family<ScheduleLabels, FloatGauge>)>,
}

impl std::fmt::Debug for SiteMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteMetrics").field("site", &self.site).finish_non_exhaustive()
    }
}

impl SiteMetrics {
    /// A run of `schedule` due at `due` was written to its queue at `at`, as `outcome`
    /// (enqueued, or replaced a still-queued previous job).
    pub fn enqueued(&self, schedule: &str, due: DateTime<Utc>, at: DateTime<Utc>, outcome: RunOutcome) {
        let lateness = (at - due).to_std().unwrap_or(Duration::ZERO);
        self.lateness.observe(lateness.as_secs_f64());
        self.runs[outcome.index()].inc();
        if let Some((_, last)) = &self.per_schedule {
            last.get_or_create(&self.schedule_label(schedule)).set(timestamp(at));
        }
    }

    /// A due run ended as `outcome` (other than enqueued: see [`SiteMetrics::enqueued`]).
    pub fn run(&self, outcome: RunOutcome) {
        self.runs[outcome.index()].inc();
    }

    /// A load of the site's source read it to the end in `elapsed`.
    pub fn rebuilt(&self, elapsed: Duration) {
        self.rebuild_duration.observe(elapsed.as_secs_f64());
    }

    /// `schedule`'s next run is now `next` (None: no further run).
    pub fn next_run(&self, schedule: &str, next: Option<DateTime<Utc>>) {
        let Some((family, _)) = &self.per_schedule else { return };
        let label = self.schedule_label(schedule);
        match next {
            Some(t) => {
                family.get_or_create(&label).set(timestamp(t));
            }
            None => {
                family.remove(&label);
            }
        }
    }

    /// `schedule` is no longer planned: its per-schedule series go.
    pub fn forget(&self, schedule: &str) {
        if let Some((next, last)) = &self.per_schedule {
            let label = self.schedule_label(schedule);
            next.remove(&label);
            last.remove(&label);
        }
    }

    fn schedule_label(&self, schedule: &str) -> ScheduleLabels {
        ScheduleLabels { site: self.site.clone(), schedule: schedule.to_string() }
    }
}

fn timestamp(t: DateTime<Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ready::SiteSnapshot;

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
    }

    #[test]
    fn families_are_named_and_labelled_as_documented() {
        let m = Metrics::new(true);
        let site = m.site("s1");
        let due = Utc::now();
        site.enqueued("TS-1", due, due + chrono::TimeDelta::milliseconds(3), RunOutcome::Enqueued);
        site.run(RunOutcome::DuplicateClaim);
        site.next_run("TS-1", Some(due));
        m.request("ping", "ok", Duration::from_micros(300));
        m.apply(&Snapshot {
            redis_up: true,
            sites: vec![SiteSnapshot {
                name: "s1".into(),
                source_up: Some(true),
                last_loaded: Some(due),
                planned: 4,
                skipped: 3,
                disabled: 1,
            }],
        });
        let text = m.encode();
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(line(&text, "btu_run_lateness_seconds_count{"), "btu_run_lateness_seconds_count{site=\"s1\"} 1");
        assert!(line(&text, "btu_run_lateness_seconds_bucket{le=\"0.005\",site=\"s1\"}").ends_with(" 1"));
        assert!(line(&text, "btu_run_lateness_seconds_bucket{le=\"0.001\",site=\"s1\"}").ends_with(" 0"));
        assert_eq!(
            line(&text, "btu_runs_total{site=\"s1\",outcome=\"enqueued\"}"),
            "btu_runs_total{site=\"s1\",outcome=\"enqueued\"} 1"
        );
        line(&text, "btu_runs_total{site=\"s1\",outcome=\"skipped_missed\"} 0");
        line(&text, "btu_runs_total{site=\"s1\",outcome=\"duplicate_claim\"} 1");
        line(&text, "btu_schedules{site=\"s1\",state=\"planned\"} 4");
        line(&text, "btu_schedules{site=\"s1\",state=\"disabled\"} 1");
        line(&text, "btu_schedules{site=\"s1\",state=\"invalid\"} 2");
        line(&text, "btu_redis_up 1");
        line(&text, "btu_source_up{site=\"s1\"} 1");
        line(&text, "btu_rebuild_last_success_timestamp_seconds{site=\"s1\"} ");
        line(&text, "btu_requests_total{kind=\"ping\",result=\"ok\"} 1");
        line(&text, "btu_request_duration_seconds_count{kind=\"ping\"} 1");
        line(&text, "btu_build_info{version=\"");
        line(&text, "btu_schedule_next_run_timestamp_seconds{site=\"s1\",schedule=\"TS-1\"} ");
        line(&text, "btu_schedule_last_enqueue_timestamp_seconds{site=\"s1\",schedule=\"TS-1\"} ");
        line(&text, "btu_redis_eviction_policy_ok 0");
        line(&text, "btu_mariadb_connections 0");
        line(&text, "btu_mariadb_connection_waits_total 0");
        let (open, waits) = m.mariadb(16);
        open.set(3);
        waits.inc();
        let text = m.encode();
        line(&text, "btu_mariadb_connections 3");
        line(&text, "btu_mariadb_max_connections 16");
        line(&text, "btu_mariadb_connection_waits_total 1");
    }

    #[test]
    fn per_schedule_series_are_off_by_default_and_forgotten_with_their_schedule() {
        let off = Metrics::new(false);
        off.site("s1").next_run("TS-1", Some(Utc::now()));
        assert!(!off.encode().contains("btu_schedule_next_run"));
        let on = Metrics::new(true);
        let site = on.site("s1");
        site.next_run("TS-1", Some(Utc::now()));
        site.forget("TS-1");
        assert!(!on.encode().contains("schedule=\"TS-1\""));
    }

    #[test]
    fn the_eviction_warning_is_asked_for_once() {
        let m = Metrics::new(false);
        assert!(m.eviction_policy(Some("allkeys-lru")));
        assert!(!m.eviction_policy(Some("allkeys-lru")));
        assert!(!m.eviction_policy(Some("noeviction")));
        assert!(m.encode().contains("btu_redis_eviction_policy_ok 1"));
    }
}
