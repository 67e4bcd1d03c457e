//! The engine task: one owner of all scheduling state, so firing, rebuilding and commands
//! never race each other. Slow I/O (source loads, batches of enqueues, history reads) runs in
//! spawned tasks whose results come back into the loop; the loop itself only waits on
//! short pipelined Redis writes.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::backoff::Backoff;
use super::jobs::{JobSettings, build_job, prepare_run};
use super::store::{self, HistoryEntry, PlanWrite};
use super::{
    Command, EngineError, EngineHandle, NOTIFY_NEXT_RUNS, RebuildReport, RunNowResult, ScheduleState, ScheduleStatus,
    SiteRebuild, SiteStatus, StatusReport, UpcomingRun, planner,
};
use crate::config::{Config, Secret};
use crate::rq::{self, Claim, EnqueueOutcome, HistoryAppend, PreparedRun, RqError, RqWriter};
use crate::source::{
    KnownFingerprints, RebuildRow, RowOutcome, RowSink, ScheduleSpec, SkipReason, SkippedRow, Source, SourceError,
};

/// Longest the timer sleeps before looking at the clock again, so a wall-clock step (NTP)
/// cannot leave a run waiting on a stale monotonic deadline for long.
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// How long shutdown waits for in-flight enqueues.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(15);
/// Runs written per script call. Redis runs scripts one after another, so a burst costs the
/// sum of its calls: batching removes the per-call cost, and several batches in flight let
/// the client encode the next one while Redis runs the previous.
const ENQUEUE_BATCH: usize = 200;
/// How long before a due instant the payloads of its runs are built (see `prepare_next`):
/// long enough for 10k runs on a busy machine, short enough to hold one instant's payloads.
const PREPARE_AHEAD: TimeDelta = TimeDelta::seconds(2);

#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub redis_url: Secret,
    pub key_prefix: String,
    pub grace: Duration,
    pub rebuild_interval: Duration,
    pub jobs: JobSettings,
    /// Entries kept per schedule history list.
    pub history_max: usize,
    /// Keep per-run lateness samples for [`EngineHandle::take_lateness`] (benchmarks).
    pub record_lateness: bool,
}

impl EngineOptions {
    pub fn from_config(config: &Config) -> Self {
        EngineOptions {
            redis_url: config.redis.url.clone(),
            key_prefix: config.redis.key_prefix.clone(),
            grace: config.daemon.missed_run_grace,
            rebuild_interval: config.daemon.rebuild_interval,
            jobs: JobSettings::from_config(config),
            history_max: 100,
            record_lateness: false,
        }
    }
}

struct Entry {
    spec: Arc<ScheduleSpec>,
    next: Option<DateTime<Utc>>,
    /// The site's rebuild generation that last confirmed this schedule; a rebuild removes the
    /// entries it did not confirm (no set of 100k loaded ids is built for that).
    generation: u64,
}

struct Site {
    name: String,
    entries: HashMap<Arc<str>, Entry>,
    /// Rows that do not run, with why (logged once per change).
    skipped: HashMap<String, SkipReason>,
    /// The stored state of a previous daemon has been merged in.
    synced: bool,
    /// Rows loaded while Redis was down, applied when it is back.
    pending_rows: Option<Vec<RebuildRow>>,
    /// Incremented by every load applied; see [`Entry::generation`].
    generation: u64,
    /// The load being applied, batch by batch.
    load: Option<SiteLoad>,
    source_ok: Option<bool>,
    last_loaded: Option<DateTime<Utc>>,
    last_error: Option<String>,
    retry_at: Option<Instant>,
    backoff: Backoff,
}

type TimerKey = (DateTime<Utc>, usize, Arc<str>);

struct FireItem {
    site: usize,
    id: Arc<str>,
    due: DateTime<Utc>,
    planned_next: Option<DateTime<Utc>>,
    job_id: String,
    on_time: bool,
    /// Appended after the batch answered `Enqueued`, outside the atomic step.
    history: Option<HistoryAppend>,
}

struct FireResult {
    item: FireItem,
    outcome: Result<EnqueueOutcome, RqError>,
    done_at: DateTime<Utc>,
}

/// Payloads built ahead for the runs of one due instant, with the spec each was built from
/// (a rebuild or notify that changes a schedule replaces its spec, which voids its payload).
struct Prepared {
    due: DateTime<Utc>,
    runs: HashMap<(usize, Arc<str>), (Arc<ScheduleSpec>, Payload)>,
}

/// A run ready for the writer, or why its job could not be built (bad data; never sent).
type Payload = Result<PreparedRun, RqError>;

/// A rebuild of one site in progress: its rows arrive in batches while the source is read.
struct SiteLoad {
    /// Entries confirmed by this load carry it.
    generation: u64,
    /// A previous daemon's plan (the site's first load only).
    stored: Option<store::SiteState>,
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

type LoadResults = Vec<(usize, Result<(), SourceError>)>;

/// A schedule and its next run after a fired run was confirmed, per site index.
type PlannedNext = (Arc<ScheduleSpec>, Option<DateTime<Utc>>);

pub struct Engine {
    opts: EngineOptions,
    sources: Arc<Vec<Source>>,
    sites: Vec<Site>,
    timer: BTreeSet<TimerKey>,
    rx: mpsc::Receiver<Command>,
    conn: Option<ConnectionManager>,
    writer: Option<RqWriter>,
    redis_up: bool,
    redis_ever_up: bool,
    redis_down_logged: bool,
    redis_retry_at: Option<Instant>,
    redis_backoff: Backoff,
    connecting: Option<JoinHandle<Result<ConnectionManager, RqError>>>,
    in_flight: JoinSet<Vec<FireResult>>,
    prepared: Option<Prepared>,
    preparing: Option<(DateTime<Utc>, JoinHandle<Prepared>)>,
    loading: Option<JoinHandle<LoadResults>>,
    /// Batches of rows of the running load.
    load_rows: Option<mpsc::Receiver<(usize, Vec<RebuildRow>)>>,
    rebuild_again: bool,
    rebuild_waiters: Vec<oneshot::Sender<RebuildReport>>,
    rebuild_waiters_next: Vec<oneshot::Sender<RebuildReport>>,
    started_at: DateTime<Utc>,
    last_rebuild: Option<DateTime<Utc>>,
    runs_enqueued: u64,
    runs_claimed: u64,
    runs_missed: u64,
    lateness: Vec<Duration>,
    stopping: bool,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn grace_delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

impl Engine {
    /// An engine over `sources` (one per site) and a handle to it. Nothing happens until
    /// [`Engine::run`] is awaited.
    pub fn new(opts: EngineOptions, sources: Vec<Source>) -> (Engine, EngineHandle) {
        let (tx, rx) = mpsc::channel(1024);
        let sources = Arc::new(sources);
        let sites = sources
            .iter()
            .map(|s| Site {
                name: s.site().to_string(),
                entries: HashMap::new(),
                skipped: HashMap::new(),
                synced: false,
                pending_rows: None,
                generation: 0,
                load: None,
                source_ok: None,
                last_loaded: None,
                last_error: None,
                retry_at: None,
                backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
            })
            .collect();
        let engine = Engine {
            opts,
            sources: sources.clone(),
            sites,
            timer: BTreeSet::new(),
            rx,
            conn: None,
            writer: None,
            redis_up: false,
            redis_ever_up: false,
            redis_down_logged: false,
            redis_retry_at: None,
            redis_backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
            connecting: None,
            in_flight: JoinSet::new(),
            prepared: None,
            preparing: None,
            loading: None,
            load_rows: None,
            rebuild_again: false,
            rebuild_waiters: Vec::new(),
            rebuild_waiters_next: Vec::new(),
            started_at: Utc::now(),
            last_rebuild: None,
            runs_enqueued: 0,
            runs_claimed: 0,
            runs_missed: 0,
            lateness: Vec::new(),
            stopping: false,
        };
        (engine, EngineHandle { tx, sources })
    }

    /// Runs until [`EngineHandle::shutdown`] (or every handle is dropped); then waits for
    /// in-flight enqueues and returns.
    pub async fn run(mut self) {
        info!(sites = ?self.sites.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), "engine starting");
        self.start_connect();
        self.start_load();
        let mut rebuild_tick =
            tokio::time::interval_at(Instant::now() + self.opts.rebuild_interval, self.opts.rebuild_interval);
        rebuild_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        while !self.stopping {
            self.prepare_next();
            let timer_at = self.timer_deadline();
            let site_retry_at = self.sites.iter().filter_map(|s| s.retry_at).min();
            let redis_retry_at = if self.connecting.is_none() { self.redis_retry_at } else { None };
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd).await,
                    None => self.stopping = true,
                },
                _ = sleep_until_opt(timer_at), if timer_at.is_some() => self.fire_due().await,
                Some(done) = self.in_flight.join_next(), if !self.in_flight.is_empty() => {
                    if let Ok(results) = done { self.on_fired(results).await; }
                }
                res = join_preparing(&mut self.preparing), if self.preparing.is_some() => self.on_prepared(res),
                Some((idx, rows)) = recv_rows(&mut self.load_rows) => self.on_rows(idx, rows).await,
                res = join_opt(&mut self.loading), if self.loading.is_some() => {
                    self.loading = None;
                    self.drain_rows().await;
                    match res {
                        Ok(results) => self.on_loaded(results).await,
                        Err(e) => error!(error = %e, "schedule load task failed"),
                    }
                }
                res = join_opt(&mut self.connecting), if self.connecting.is_some() => {
                    self.connecting = None;
                    self.on_connected(res).await;
                }
                _ = rebuild_tick.tick() => self.start_load(),
                _ = sleep_until_opt(site_retry_at), if site_retry_at.is_some() => {
                    for s in &mut self.sites { s.retry_at = None; }
                    self.start_load();
                }
                _ = sleep_until_opt(redis_retry_at), if redis_retry_at.is_some() => {
                    self.redis_retry_at = None;
                    self.probe_redis().await;
                }
            }
        }

        info!(in_flight = self.in_flight.len(), "engine stopping: finishing in-flight enqueues");
        if let Some(h) = self.loading.take() {
            h.abort();
        }
        if let Some(h) = self.connecting.take() {
            h.abort();
        }
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        while !self.in_flight.is_empty() {
            match tokio::time::timeout_at(deadline, self.in_flight.join_next()).await {
                Ok(Some(Ok(results))) => self.on_fired(results).await,
                Ok(Some(Err(_))) => {}
                Ok(None) => break,
                Err(_) => {
                    warn!(in_flight = self.in_flight.len(), "shutdown: gave up waiting for enqueues");
                    break;
                }
            }
        }
        for s in self.sources.iter() {
            s.close().await;
        }
        info!("engine stopped");
    }

    // ---- Redis connection ---------------------------------------------------------------

    fn start_connect(&mut self) {
        let url = self.opts.redis_url.clone();
        self.connecting = Some(tokio::spawn(async move { rq::connect(url.expose()).await }));
    }

    async fn on_connected(&mut self, res: Result<Result<ConnectionManager, RqError>, tokio::task::JoinError>) {
        match res {
            Ok(Ok(conn)) => {
                self.writer = Some(RqWriter::new(conn.clone(), &self.opts.key_prefix));
                self.conn = Some(conn);
                self.on_redis_up().await;
            }
            Ok(Err(e)) => self.redis_failed(&e.to_string()),
            Err(e) => self.redis_failed(&e.to_string()),
        }
    }

    /// Retries Redis with a fresh connection: waiting for the old connection manager's own
    /// reconnect cycle would add its delays to ours (seconds after Redis is back).
    async fn probe_redis(&mut self) {
        self.start_connect();
    }

    /// Marks Redis down (one log line per transition) and schedules a retry with backoff.
    fn redis_failed(&mut self, error: &str) {
        if !self.redis_down_logged {
            warn!(url = %rq::redacted_url(self.opts.redis_url.expose()), error,
                "redis unreachable; runs wait, retrying with backoff");
            self.redis_down_logged = true;
        }
        self.redis_up = false;
        self.redis_retry_at = Some(Instant::now() + self.redis_backoff.next_delay());
    }

    async fn on_redis_up(&mut self) {
        let was_down = !self.redis_up;
        self.redis_up = true;
        self.redis_backoff.reset();
        self.redis_retry_at = None;
        if was_down {
            let url = rq::redacted_url(self.opts.redis_url.expose());
            if self.redis_down_logged {
                info!(url = %url, "redis reachable again; resyncing plans, then firing what is due");
            } else {
                info!(url = %url, "redis connected");
            }
        }
        self.redis_down_logged = false;
        self.redis_ever_up = true;
        for idx in 0..self.sites.len() {
            if !self.redis_up {
                break;
            }
            let was_synced = self.sites[idx].synced;
            // While a newer load of the site is being applied, it supersedes these rows.
            if let Some(rows) = self.sites[idx].pending_rows.take()
                && self.sites[idx].load.is_none()
            {
                let report = self.reconcile(idx, rows).await;
                self.log_rebuild(&report);
            }
            if was_synced && was_down && self.redis_up {
                self.resync(idx).await;
            }
        }
        if self.loading.is_none() && std::mem::take(&mut self.rebuild_again) {
            self.start_load(); // a pending reconcile found rows it could not apply
        }
        // Overdue runs fire from the timer under the missed-run rule.
    }

    /// After an outage: Redis may have lost or kept our keys; memory is authoritative.
    async fn resync(&mut self, idx: usize) {
        let Some(conn) = self.conn.as_mut() else { return };
        let site = &self.sites[idx];
        let stored = match store::load_site_state(conn, &site.name).await {
            Ok(s) => s,
            Err(e) => return self.redis_failed(&e.to_string()),
        };
        let stale: Vec<String> = stored.into_keys().filter(|id| !site.entries.contains_key(id.as_str())).collect();
        let plans: Vec<PlanWrite> =
            site.entries.values().map(|e| PlanWrite { spec: &e.spec, next: e.next, describe: true }).collect();
        let res = async {
            store::write_plans(conn, &site.name, &plans).await?;
            store::remove(conn, &site.name, &stale).await
        }
        .await;
        if let Err(e) = res {
            self.redis_failed(&e.to_string());
        }
    }

    // ---- loading and reconciling ----------------------------------------------------------

    fn start_load(&mut self) {
        if self.loading.is_some() {
            self.rebuild_again = true;
            return;
        }
        let sources = self.sources.clone();
        // What each site already plans: rows that match come back as small `Unchanged`
        // markers instead of full specs, so a rebuild never holds a second copy of the plan.
        let known: Vec<KnownFingerprints> = self
            .sites
            .iter_mut()
            .map(|s| {
                s.load = None; // left over only if the previous load task failed
                s.entries.iter().map(|(id, e)| (id.clone(), e.spec.fingerprint)).collect()
            })
            .collect();
        // Rows stream in batches: the source waits while the engine applies, so at most
        // these batches of built specs exist beside the plan.
        let (tx, rx) = mpsc::channel(2);
        self.load_rows = Some(rx);
        self.loading = Some(tokio::spawn(async move {
            let mut set = JoinSet::new();
            for (idx, known) in known.into_iter().enumerate() {
                let sources = sources.clone();
                let mut sink = RowSink::new(idx, tx.clone());
                set.spawn(async move { (idx, sources[idx].load_rebuild(&known, &mut sink).await) });
            }
            drop(tx);
            let mut out = Vec::new();
            while let Some(r) = set.join_next().await {
                if let Ok(r) = r {
                    out.push(r);
                }
            }
            out.sort_by_key(|(i, _)| *i);
            out
        }));
    }

    /// Applies the batches still buffered when the load task ended.
    async fn drain_rows(&mut self) {
        let Some(mut rx) = self.load_rows.take() else { return };
        while let Ok((idx, rows)) = rx.try_recv() {
            self.on_rows(idx, rows).await;
        }
    }

    /// One batch of a site's rows, as the source reads them.
    async fn on_rows(&mut self, idx: usize, rows: Vec<RebuildRow>) {
        let mut load = match self.sites[idx].load.take() {
            Some(load) => load,
            None => self.begin_load(idx).await,
        };
        self.apply_batch(idx, &mut load, rows).await;
        self.sites[idx].load = Some(load);
    }

    async fn on_loaded(&mut self, results: LoadResults) {
        let mut report = RebuildReport::default();
        for (idx, res) in results {
            let site_name = self.sites[idx].name.clone();
            match res {
                Ok(()) => {
                    let site = &mut self.sites[idx];
                    if site.source_ok == Some(false) {
                        info!(site = %site_name, "schedule source reachable again; rebuilding");
                    }
                    site.source_ok = Some(true);
                    site.last_error = None;
                    site.last_loaded = Some(Utc::now());
                    site.retry_at = None;
                    site.backoff.reset();
                    let mut r = self.finish_load(idx).await;
                    if r.deferred && self.redis_up {
                        // Redis came back while the source was read.
                        if let Some(rows) = self.sites[idx].pending_rows.take() {
                            r = self.reconcile(idx, rows).await;
                        }
                    }
                    report.sites.push(r);
                }
                Err(e) => {
                    self.abandon_load(idx).await;
                    let site = &mut self.sites[idx];
                    let msg = e.to_string();
                    if site.source_ok != Some(false) {
                        warn!(site = %site_name, error = %msg, planned = site.entries.len(),
                            "schedule source unreachable; keeping the last loaded schedules");
                    }
                    site.source_ok = Some(false);
                    site.last_error = Some(msg.clone());
                    site.retry_at = Some(Instant::now() + site.backoff.next_delay());
                    report.sites.push(SiteRebuild { site: site_name, error: Some(msg), ..Default::default() });
                }
            }
        }
        self.last_rebuild = Some(Utc::now());
        for r in &report.sites {
            self.log_rebuild(r);
        }
        for w in self.rebuild_waiters.drain(..) {
            let _ = w.send(report.clone());
        }
        self.rebuild_waiters = std::mem::take(&mut self.rebuild_waiters_next);
        if std::mem::take(&mut self.rebuild_again) {
            self.start_load();
        }
    }

    fn log_rebuild(&self, r: &SiteRebuild) {
        if r.deferred && r.added + r.changed + r.removed == 0 {
            info!(site = %r.site, skipped = r.skipped.len(), "schedules loaded; planning waits for redis");
        } else if r.error.is_none() && (r.added + r.changed + r.removed > 0 || r.deferred) {
            info!(site = %r.site, added = r.added, changed = r.changed, removed = r.removed,
                unchanged = r.unchanged, skipped = r.skipped.len(), deferred = r.deferred, "schedules rebuilt");
        } else if r.error.is_none() {
            debug!(site = %r.site, unchanged = r.unchanged, skipped = r.skipped.len(), "schedules rebuilt, nothing changed");
        }
    }

    /// Records skip reasons, logging each schedule only when its reason is new.
    fn note_skips(&mut self, idx: usize, rows: &[RebuildRow]) -> Vec<(String, SkipReason)> {
        let site = &mut self.sites[idx];
        let mut now_skipped = HashMap::new();
        for row in rows {
            if let RebuildRow::Skipped(s) = row {
                if site.skipped.get(&s.schedule) != Some(&s.reason) {
                    log_skip(&site.name, &s.schedule, &s.reason);
                }
                now_skipped.insert(s.schedule.clone(), s.reason.clone());
            }
        }
        site.skipped = now_skipped;
        sorted_skips(&site.skipped)
    }

    /// Makes site `idx` plan exactly `rows` at once (rows loaded while Redis was down).
    async fn reconcile(&mut self, idx: usize, rows: Vec<RebuildRow>) -> SiteRebuild {
        let mut load = self.begin_load(idx).await;
        self.apply_batch(idx, &mut load, rows).await;
        self.sites[idx].load = Some(load);
        self.finish_load(idx).await
    }

    /// Starts applying a load of site `idx`. On the site's first load a previous daemon's plan
    /// in Redis is read, to be taken over (the missed-run rule applies to runs it recorded in
    /// the past). Without Redis the rows are kept whole until it is back.
    async fn begin_load(&mut self, idx: usize) -> SiteLoad {
        let site_name = self.sites[idx].name.clone();
        let mut load = SiteLoad {
            generation: 0,
            stored: None,
            report: SiteRebuild { site: site_name.clone(), ..Default::default() },
            skipped: HashMap::new(),
            raced: 0,
            write_failed: false,
            deferred: None,
        };
        let Some(mut conn) = self.conn.clone().filter(|_| self.redis_up) else {
            load.deferred = Some(Vec::new());
            return load;
        };
        if !self.sites[idx].synced {
            match store::load_site_state(&mut conn, &site_name).await {
                Ok(s) => load.stored = Some(s),
                Err(e) => {
                    self.redis_failed(&e.to_string());
                    load.deferred = Some(Vec::new());
                    return load;
                }
            }
        }
        let site = &mut self.sites[idx];
        site.generation += 1;
        load.generation = site.generation;
        load
    }

    /// Applies one batch: new schedules are planned (or take over a stored plan), changed
    /// ones are replanned from now, unchanged ones keep their next run; the batch's plans are
    /// written to Redis in one pipeline.
    async fn apply_batch(&mut self, idx: usize, load: &mut SiteLoad, rows: Vec<RebuildRow>) {
        if let Some(deferred) = &mut load.deferred {
            deferred.extend(rows);
            return;
        }
        let now = Utc::now();
        let generation = load.generation;
        let site_name = self.sites[idx].name.clone();
        let mut writes: Vec<(Arc<ScheduleSpec>, Option<DateTime<Utc>>)> = Vec::new();
        for row in rows {
            match row {
                RebuildRow::Skipped(s) => {
                    let SkippedRow { schedule, reason } = *s;
                    if self.sites[idx].skipped.get(&schedule) != Some(&reason) && !load.skipped.contains_key(&schedule)
                    {
                        log_skip(&site_name, &schedule, &reason);
                    }
                    load.skipped.insert(schedule, reason);
                }
                RebuildRow::Unchanged { id, fingerprint } => match self.sites[idx].entries.get_mut(&id) {
                    Some(e) if e.generation == generation => {} // a duplicate id: the first row wins
                    Some(e) => {
                        e.generation = generation;
                        if e.spec.fingerprint == fingerprint {
                            load.report.unchanged += 1;
                        } else {
                            load.raced += 1; // replanned by a notify while loading: keep that plan
                        }
                    }
                    None => load.raced += 1, // cancelled while loading: only a full row can replan it
                },
                RebuildRow::Loaded(spec) => {
                    let id = spec.id.clone();
                    match self.sites[idx].entries.get_mut(&id) {
                        Some(e) if e.generation == generation => {} // a duplicate id: the first row wins
                        Some(e) if e.spec.fingerprint == spec.fingerprint => {
                            e.generation = generation;
                            load.report.unchanged += 1;
                        }
                        Some(_) => {
                            load.report.changed += 1;
                            let next = spec.schedule.next_after(now);
                            info!(site = %site_name, schedule = %id, next = ?next.map(rfc3339), "schedule changed; replanned");
                            self.set_entry(idx, id.clone(), spec.clone(), next);
                            self.mark(idx, &id, generation);
                            writes.push((spec, next));
                        }
                        None => {
                            load.report.added += 1;
                            let recorded = load
                                .stored
                                .as_ref()
                                .and_then(|st| st.get(&*id))
                                .filter(|p| p.fingerprint == Some(spec.fingerprint))
                                .and_then(|p| p.next);
                            // A recorded run (even a past one) is kept: the timer then applies the
                            // missed-run rule to it. Otherwise plan from now, without catch-up.
                            let next = recorded.or_else(|| spec.schedule.next_after(now));
                            debug!(site = %site_name, schedule = %id, next = ?next.map(rfc3339), resumed = recorded.is_some(), "schedule planned");
                            self.set_entry(idx, id.clone(), spec.clone(), next);
                            self.mark(idx, &id, generation);
                            writes.push((spec, next));
                        }
                    }
                }
            }
        }
        if writes.is_empty() {
            return;
        }
        match self.conn.clone().filter(|_| self.redis_up) {
            Some(mut conn) => {
                let plans: Vec<PlanWrite> =
                    writes.iter().map(|(spec, next)| PlanWrite { spec, next: *next, describe: true }).collect();
                if let Err(e) = store::write_plans(&mut conn, &site_name, &plans).await {
                    self.redis_failed(&e.to_string());
                    load.write_failed = true;
                }
            }
            None => load.write_failed = true,
        }
    }

    /// Ends a load the source read completely: entries it did not confirm are removed (and
    /// ids a previous daemon stored that are not planned now).
    async fn finish_load(&mut self, idx: usize) -> SiteRebuild {
        let load = match self.sites[idx].load.take() {
            Some(load) => load,
            None => self.begin_load(idx).await, // the source had no rows
        };
        if let Some(rows) = load.deferred {
            let skipped = self.note_skips(idx, &rows);
            self.sites[idx].pending_rows = Some(rows);
            return SiteRebuild { site: self.sites[idx].name.clone(), skipped, deferred: true, ..Default::default() };
        }
        let SiteLoad { generation, stored, mut report, skipped, raced, mut write_failed, .. } = load;
        let site_name = report.site.clone();
        if raced > 0 {
            // The snapshot of known fingerprints was taken before a notify or cancel changed
            // these schedules; a follow-up load compares them afresh.
            debug!(site = %site_name, schedules = raced, "plan changed while loading; loading again");
            self.rebuild_again = true;
        }
        let mut removed: Vec<String> = self.sites[idx]
            .entries
            .iter()
            .filter(|(_, e)| e.generation != generation)
            .map(|(id, _)| id.to_string())
            .collect();
        for id in &removed {
            self.remove_entry(idx, id);
            info!(site = %site_name, schedule = %id, "schedule removed from the plan");
        }
        report.removed = removed.len();
        if let Some(st) = stored {
            let entries = &self.sites[idx].entries;
            removed.extend(st.into_keys().filter(|id| !entries.contains_key(id.as_str())));
        }
        if !removed.is_empty() {
            match self.conn.clone().filter(|_| self.redis_up) {
                Some(mut conn) => {
                    if let Err(e) = store::remove(&mut conn, &site_name, &removed).await {
                        self.redis_failed(&e.to_string());
                        write_failed = true;
                    }
                }
                None => write_failed = true,
            }
        }
        let site = &mut self.sites[idx];
        site.skipped = skipped;
        report.skipped = sorted_skips(&site.skipped);
        // The stored state is merged into memory: from now on memory is authoritative.
        site.synced = true;
        if write_failed {
            report.deferred = true;
            if self.redis_up {
                self.resync(idx).await; // Redis failed and came back while loading
            }
        }
        report
    }

    /// Drops a load the source could not finish. The batches already applied stay (they are
    /// genuine rows); nothing is removed, since the rows not read may still exist.
    async fn abandon_load(&mut self, idx: usize) {
        let Some(load) = self.sites[idx].load.take() else { return };
        let site = &mut self.sites[idx];
        site.skipped.extend(load.skipped);
        // A first load that did not finish leaves `synced` false: the next one takes over
        // the stored plan again for the schedules this one did not reach.
        if load.write_failed && self.redis_up && site.synced {
            self.resync(idx).await;
        }
    }

    /// Marks an entry as confirmed by the load of `generation`.
    fn mark(&mut self, idx: usize, id: &str, generation: u64) {
        if let Some(e) = self.sites[idx].entries.get_mut(id) {
            e.generation = generation;
        }
    }

    fn set_entry(&mut self, idx: usize, id: Arc<str>, spec: Arc<ScheduleSpec>, next: Option<DateTime<Utc>>) {
        let site = &mut self.sites[idx];
        if let Some(due) = site.entries.get(&id).and_then(|old| old.next) {
            self.timer.remove(&(due, idx, id.clone()));
        }
        if let Some(due) = next {
            self.timer.insert((due, idx, id.clone()));
        }
        // A replaced entry keeps its generation (a rebuild marks what it confirms itself).
        let generation = site.entries.get(&id).map_or(site.generation, |e| e.generation);
        site.entries.insert(id, Entry { spec, next, generation });
    }

    fn remove_entry(&mut self, idx: usize, id: &str) -> bool {
        let site = &mut self.sites[idx];
        match site.entries.remove_entry(id) {
            Some((key, e)) => {
                if let Some(due) = e.next {
                    self.timer.remove(&(due, idx, key));
                }
                true
            }
            None => false,
        }
    }

    // ---- firing ---------------------------------------------------------------------------

    fn timer_deadline(&self) -> Option<Instant> {
        if !self.redis_up || self.stopping {
            return None; // runs wait for Redis; recovery applies the missed-run rule
        }
        let (due, _, _) = self.timer.first()?;
        // Wake once before the instant to build its payloads, unless that is done.
        let wake = if self.due_to_prepare().is_some() { *due - PREPARE_AHEAD } else { *due };
        let wait = (wake - Utc::now()).to_std().unwrap_or(Duration::ZERO).min(MAX_SLEEP);
        Some(Instant::now() + wait)
    }

    /// The next due instant if its payloads should be built now: not while a burst is being
    /// written (both would compete for the same cores; the loop comes back here when it is
    /// written), and once per instant.
    fn due_to_prepare(&self) -> Option<DateTime<Utc>> {
        if !self.redis_up || self.stopping || !self.in_flight.is_empty() || self.preparing.is_some() {
            return None;
        }
        let (due, _, _) = self.timer.first()?;
        if self.prepared.as_ref().is_some_and(|p| p.due == *due) {
            return None;
        }
        Some(*due)
    }

    /// Builds the payloads (job, validation, pickle + zlib) of every run due at the next
    /// instant on a blocking thread, `PREPARE_AHEAD` before it, so that at the instant only
    /// the script calls remain.
    fn prepare_next(&mut self) {
        let Some(due) = self.due_to_prepare() else { return };
        let now = Utc::now();
        if due <= now || due - now > PREPARE_AHEAD {
            return; // past: fire_due builds it; far: timer_deadline wakes us in time
        }
        let runs: Vec<(usize, Arc<str>, Arc<ScheduleSpec>)> = self
            .timer
            .iter()
            .take_while(|(d, _, _)| *d == due)
            .filter_map(|(_, idx, id)| Some((*idx, id.clone(), self.sites[*idx].entries.get(id)?.spec.clone())))
            .collect();
        let sites: Vec<String> = self.sites.iter().map(|s| s.name.clone()).collect();
        let settings = self.opts.jobs.clone();
        let claim_ttl = planner::claim_ttl_secs(grace_delta(self.opts.grace));
        let task = tokio::task::spawn_blocking(move || {
            let created_at = Utc::now();
            let runs = runs
                .into_iter()
                .map(|(idx, id, spec)| {
                    let run = prepare_run(&sites[idx], &spec, due, &settings, claim_ttl, created_at);
                    ((idx, id), (spec, run))
                })
                .collect();
            Prepared { due, runs }
        });
        self.preparing = Some((due, task));
    }

    fn on_prepared(&mut self, res: Result<Prepared, tokio::task::JoinError>) {
        let Some((due, _)) = self.preparing.take() else { return };
        self.prepared = Some(res.unwrap_or_else(|e| {
            // A bug, not data: fire_due builds these runs itself. Recorded as done so the
            // loop does not retry it.
            error!(due = %rfc3339(due), error = %e, "building payloads ahead failed");
            Prepared { due, runs: HashMap::new() }
        }));
    }

    /// The payload built ahead for this run, if it was built for this very due instant from
    /// the schedule as it is now.
    fn take_prepared(
        &mut self,
        idx: usize,
        id: &Arc<str>,
        due: DateTime<Utc>,
        spec: &Arc<ScheduleSpec>,
    ) -> Option<Payload> {
        let prepared = self.prepared.as_mut().filter(|p| p.due == due)?;
        let (built_from, run) = prepared.runs.remove(&(idx, id.clone()))?;
        Arc::ptr_eq(&built_from, spec).then_some(run)
    }

    async fn fire_due(&mut self) {
        let Some(writer) = self.writer.clone() else { return };
        let now = Utc::now();
        let grace = grace_delta(self.opts.grace);
        if self.preparing.as_ref().is_some_and(|(due, _)| *due <= now) {
            // This instant's payloads are still being built: waiting costs less than
            // building them a second time on the same cores.
            if let Some((_, task)) = &mut self.preparing {
                let res = task.await;
                self.on_prepared(res);
            }
        }
        let mut batch: Vec<(FireItem, Payload)> = Vec::new();
        // Schedules whose missed run was skipped: nothing to enqueue, but Redis must learn
        // their new next run.
        let mut replanned: Vec<(usize, Arc<ScheduleSpec>, Option<DateTime<Utc>>)> = Vec::new();
        while let Some((due, _, _)) = self.timer.first() {
            if *due > now {
                break;
            }
            let Some((due, idx, id)) = self.timer.pop_first() else { break };
            let site = &mut self.sites[idx];
            let Some(entry) = site.entries.get_mut(&id) else { continue };
            if entry.next != Some(due) {
                continue; // stale timer key (cannot happen: set_entry keeps both in step)
            }
            let spec = entry.spec.clone();
            let r = planner::resume(&spec.schedule, Some(due), now, grace);
            entry.next = r.next;
            if let Some(n) = r.next {
                self.timer.insert((n, idx, id.clone()));
            }
            if let Some((first, last)) = r.skipped {
                self.runs_missed += 1;
                if r.fire.is_some() {
                    warn!(site = %site.name, schedule = %id, first = %rfc3339(first), last = %rfc3339(last),
                        "missed runs skipped (only the latest missed run is caught up)");
                } else {
                    warn!(site = %site.name, schedule = %id, first = %rfc3339(first), last = %rfc3339(last),
                        grace_secs = self.opts.grace.as_secs(), "missed runs skipped (older than the grace period)");
                }
            }
            let Some(fire) = r.fire else {
                replanned.push((idx, spec.clone(), r.next));
                if r.next.is_none() {
                    info!(site = %site.name, schedule = %id, "schedule has no further runs");
                }
                continue;
            };
            let on_time = now - fire < TimeDelta::seconds(1) && fire == due;
            if !on_time {
                info!(site = %site.name, schedule = %id, due = %rfc3339(fire), "catching up a missed run");
            }
            let site_name = site.name.clone();
            // Built ahead when possible; otherwise (a catch-up, a schedule changed since,
            // no time to build ahead) here, which costs lateness but is the same run.
            let run = self.take_prepared(idx, &id, fire, &spec).unwrap_or_else(|| {
                prepare_run(&site_name, &spec, fire, &self.opts.jobs, planner::claim_ttl_secs(grace), now)
            });
            let job_id = rq::job_id(&site_name, &id, fire);
            // The history entry is made now, not ahead, so its enqueue time is the real one.
            let history = history_append(self.opts.history_max, &site_name, &id, &job_id, fire, now);
            batch.push((FireItem { site: idx, id, due: fire, planned_next: r.next, job_id, on_time, history }, run));
            if batch.len() == ENQUEUE_BATCH {
                // Sent while the rest of the burst is collected: Redis starts on it at once,
                // and the multiplexed connection pipelines the batches behind each other.
                self.in_flight.spawn(enqueue_batch(writer.clone(), std::mem::take(&mut batch)));
            }
        }
        if !batch.is_empty() {
            self.in_flight.spawn(enqueue_batch(writer, batch));
        }
        if self.prepared.as_ref().is_some_and(|p| p.due <= now) {
            self.prepared = None; // used up; leftovers belong to schedules changed since
        }
        if !replanned.is_empty()
            && let Some(mut conn) = self.conn.clone()
        {
            replanned.sort_by_key(|(idx, _, _)| *idx);
            for group in replanned.chunk_by(|a, b| a.0 == b.0) {
                let plans: Vec<PlanWrite> =
                    group.iter().map(|(_, spec, next)| PlanWrite { spec, next: *next, describe: false }).collect();
                if let Err(e) = store::write_plans(&mut conn, &self.sites[group[0].0].name, &plans).await {
                    self.redis_failed(&e.to_string());
                    break;
                }
            }
        }
    }

    async fn on_fired(&mut self, results: Vec<FireResult>) {
        let mut confirmed: HashMap<usize, Vec<PlannedNext>> = HashMap::new();
        let mut redis_error: Option<String> = None;
        for r in results {
            let FireResult { item, outcome, done_at } = r;
            let site_name = self.sites[item.site].name.clone();
            match outcome {
                Ok(o) => {
                    if o == EnqueueOutcome::Enqueued {
                        self.runs_enqueued += 1;
                        info!(site = %site_name, schedule = %item.id, job_id = %item.job_id, due = %rfc3339(item.due),
                            lateness_ms = (done_at - item.due).num_milliseconds(), "run enqueued");
                    } else {
                        self.runs_claimed += 1;
                        debug!(site = %site_name, schedule = %item.id, job_id = %item.job_id, due = %rfc3339(item.due),
                            "run already enqueued by an earlier attempt or another daemon");
                    }
                    if self.opts.record_lateness && item.on_time {
                        self.lateness.push((done_at - item.due).to_std().unwrap_or(Duration::ZERO));
                    }
                    if let Some(e) = self.sites[item.site].entries.get(&item.id)
                        && e.next == item.planned_next
                    {
                        confirmed.entry(item.site).or_default().push((e.spec.clone(), e.next));
                    }
                }
                Err(RqError::Redis(e)) => {
                    // Not written: put the run back as the schedule's next one, so recovery
                    // applies the missed-run rule to it.
                    let due = item.due;
                    if let Some(e) = self.sites[item.site].entries.get(&item.id)
                        && e.next == item.planned_next
                    {
                        let spec = e.spec.clone();
                        self.set_entry(item.site, item.id.clone(), spec, Some(due));
                    }
                    redis_error.get_or_insert_with(|| e.to_string());
                }
                Err(e) => {
                    // The job itself is unacceptable (bad data), or one of its keys holds
                    // another Redis type: skip this run, keep the plan.
                    error!(site = %site_name, schedule = %item.id, job_id = %item.job_id, due = %rfc3339(item.due),
                        error = %e, "run not enqueued");
                }
            }
        }
        if let Some(e) = redis_error {
            self.redis_failed(&e);
        }
        if !self.redis_up {
            return; // the resync after recovery records the plans
        }
        let Some(mut conn) = self.conn.clone() else { return };
        for (idx, items) in confirmed {
            let plans: Vec<PlanWrite> =
                items.iter().map(|(spec, next)| PlanWrite { spec, next: *next, describe: false }).collect();
            if let Err(e) = store::write_plans(&mut conn, &self.sites[idx].name, &plans).await {
                self.redis_failed(&e.to_string());
                return;
            }
        }
    }

    // ---- commands -------------------------------------------------------------------------

    fn site_index(&self, site: Option<&str>) -> Result<usize, EngineError> {
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
    fn find_site(&self, site: Option<&str>, schedule: &str) -> Result<usize, EngineError> {
        if site.is_some() || self.sites.len() == 1 {
            return self.site_index(site);
        }
        self.sites
            .iter()
            .position(|s| s.entries.contains_key(schedule))
            .or_else(|| self.sites.iter().position(|s| s.skipped.contains_key(schedule)))
            .ok_or_else(|| EngineError::UnknownSchedule { site: "*".into(), schedule: schedule.to_string() })
    }

    async fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Apply { rows, reply } => {
                let states = self.apply_rows(rows).await;
                let _ = reply.send(states);
            }
            Command::Cancel { site, schedule, reply } => {
                let res = self.cancel(site.as_deref(), &schedule).await;
                let _ = reply.send(res);
            }
            Command::Rebuild { reply } => {
                // A load already running may have read the sources before this request:
                // its caller waits for the next one.
                let waiters =
                    if self.loading.is_some() { &mut self.rebuild_waiters_next } else { &mut self.rebuild_waiters };
                waiters.extend(reply);
                self.start_load();
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::Upcoming { site, schedule, count, reply } => {
                let _ = reply.send(self.upcoming(site.as_deref(), schedule.as_deref(), count));
            }
            Command::History { site, schedule, count, reply } => {
                let idx = match self.find_site(site.as_deref(), &schedule) {
                    Ok(i) => i,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return;
                    }
                };
                let Some(mut conn) = self.conn.clone() else {
                    let _ = reply.send(Err(EngineError::Redis("not connected".into())));
                    return;
                };
                let site = self.sites[idx].name.clone();
                // A schedule the engine does not know and that never ran is a typo, not an
                // empty history; a deleted schedule's past runs are still shown.
                let known = self.sites[idx].entries.contains_key(schedule.as_str())
                    || self.sites[idx].skipped.contains_key(&schedule);
                tokio::spawn(async move {
                    let res = match store::history(&mut conn, &site, &schedule, count).await {
                        Ok(runs) if runs.is_empty() && !known => Err(EngineError::UnknownSchedule { site, schedule }),
                        Ok(runs) => Ok(runs),
                        Err(e) => Err(EngineError::Redis(e.to_string())),
                    };
                    let _ = reply.send(res);
                });
            }
            Command::RunNow { site, schedule, reply } => self.run_now(site.as_deref(), schedule, reply),
            Command::TakeLateness { reply } => {
                let _ = reply.send(std::mem::take(&mut self.lateness));
            }
            Command::Shutdown => self.stopping = true,
        }
    }

    async fn apply_rows(&mut self, rows: Vec<RowOutcome>) -> Vec<ScheduleState> {
        let now = Utc::now();
        let mut states = Vec::with_capacity(rows.len());
        let mut writes: Vec<(usize, Arc<ScheduleSpec>, Option<DateTime<Utc>>)> = Vec::new();
        let mut removals: Vec<(usize, String)> = Vec::new();
        for row in rows {
            let Some(idx) = self.sites.iter().position(|s| s.name == row.site()) else { continue };
            match row {
                RowOutcome::Loaded(spec) => {
                    let id: Arc<str> = spec.id.clone();
                    self.sites[idx].skipped.remove(&*spec.id);
                    let unchanged =
                        self.sites[idx].entries.get(&id).is_some_and(|e| e.spec.fingerprint == spec.fingerprint);
                    if !unchanged {
                        let spec = Arc::new(spec);
                        let next = spec.schedule.next_after(now);
                        info!(site = %self.sites[idx].name, schedule = %id, next = ?next.map(rfc3339), "schedule planned (notify)");
                        self.set_entry(idx, id.clone(), spec.clone(), next);
                        writes.push((idx, spec, next));
                    }
                    states.push(self.state_of(idx, &id));
                }
                RowOutcome::Skipped { site, schedule, reason } => {
                    if self.remove_entry(idx, &schedule) {
                        info!(site = %site, schedule = %schedule, reason = %reason, "schedule removed from the plan (notify)");
                    }
                    removals.push((idx, schedule.clone()));
                    if reason != SkipReason::NotFound && self.sites[idx].skipped.get(&schedule) != Some(&reason) {
                        log_skip(&site, &schedule, &reason);
                        self.sites[idx].skipped.insert(schedule.clone(), reason.clone());
                    }
                    states.push(ScheduleState { site, schedule, status: ScheduleStatus::NotRunning(reason) });
                }
            }
        }
        if self.redis_up
            && let Some(mut conn) = self.conn.clone()
        {
            let mut res = Ok(());
            for (idx, spec, next) in &writes {
                let plan = [PlanWrite { spec, next: *next, describe: true }];
                res = store::write_plans(&mut conn, &self.sites[*idx].name, &plan).await;
                if res.is_err() {
                    break;
                }
            }
            if res.is_ok() {
                for (idx, id) in &removals {
                    res = store::remove(&mut conn, &self.sites[*idx].name, std::slice::from_ref(id)).await;
                    if res.is_err() {
                        break;
                    }
                }
            }
            if let Err(e) = res {
                self.redis_failed(&e.to_string());
            }
        }
        states
    }

    fn state_of(&self, idx: usize, id: &str) -> ScheduleState {
        let site = &self.sites[idx];
        let status = match site.entries.get(id) {
            Some(e) => {
                let mut next_runs = Vec::new();
                if let Some(n) = e.next {
                    next_runs.push(n);
                    next_runs.extend(e.spec.schedule.runs_after(n).take(NOTIFY_NEXT_RUNS - 1));
                }
                ScheduleStatus::Planned {
                    task: e.spec.task.as_deref().map(str::to_string),
                    cron: e.spec.cron.to_string(),
                    zone: e.spec.zone.to_string(),
                    queue: e.spec.queue.clone(),
                    next_runs,
                }
            }
            None => ScheduleStatus::NotRunning(site.skipped.get(id).cloned().unwrap_or(SkipReason::NotFound)),
        };
        ScheduleState { site: site.name.clone(), schedule: id.to_string(), status }
    }

    async fn cancel(&mut self, site: Option<&str>, schedule: &str) -> Result<bool, EngineError> {
        let idx = match self.find_site(site, schedule) {
            Ok(i) => i,
            Err(EngineError::UnknownSchedule { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        let existed = self.remove_entry(idx, schedule);
        if existed {
            info!(site = %self.sites[idx].name, schedule, "schedule cancelled");
        }
        if let (true, Some(mut conn)) = (self.redis_up, self.conn.clone())
            && let Err(e) = store::remove(&mut conn, &self.sites[idx].name, &[schedule.to_string()]).await
        {
            self.redis_failed(&e.to_string());
        }
        Ok(existed)
    }

    fn status(&self) -> StatusReport {
        StatusReport {
            started_at: self.started_at,
            redis_up: self.redis_up,
            sites: self
                .sites
                .iter()
                .map(|s| SiteStatus {
                    name: s.name.clone(),
                    source_ok: s.source_ok,
                    planned: s.entries.len(),
                    skipped: s.skipped.len(),
                    last_loaded: s.last_loaded,
                    last_error: s.last_error.clone(),
                })
                .collect(),
            next_due: self.timer.first().map(|(d, _, _)| *d),
            last_rebuild: self.last_rebuild,
            runs_enqueued: self.runs_enqueued,
            runs_already_claimed: self.runs_claimed,
            runs_missed: self.runs_missed,
        }
    }

    fn upcoming(
        &self,
        site: Option<&str>,
        schedule: Option<&str>,
        count: usize,
    ) -> Result<Vec<UpcomingRun>, EngineError> {
        let site_filter = match site {
            Some(name) => Some(self.site_index(Some(name))?),
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
            let idx = self.find_site(site, schedule)?;
            let (id, e) = self.sites[idx].entries.get_key_value(schedule).ok_or_else(|| {
                match self.sites[idx].skipped.get(schedule) {
                    Some(reason) => EngineError::NotRunnable {
                        site: self.sites[idx].name.clone(),
                        schedule: schedule.to_string(),
                        reason: reason.clone(),
                    },
                    None => EngineError::UnknownSchedule {
                        site: self.sites[idx].name.clone(),
                        schedule: schedule.to_string(),
                    },
                }
            })?;
            push_runs(idx, id, e);
        } else {
            // The `count` earliest runs overall belong to at most `count` schedules, and those
            // are among the first `count` timer keys (a schedule's first run is its earliest).
            for (_, idx, id) in self.timer.iter().filter(|(_, i, _)| site_filter.is_none_or(|f| f == *i)).take(count) {
                if let Some(e) = self.sites[*idx].entries.get(id) {
                    push_runs(*idx, id, e);
                }
            }
        }
        runs.sort();
        runs.truncate(count);
        Ok(runs
            .into_iter()
            .filter_map(|(due, idx, id)| {
                let e = self.sites[idx].entries.get(&id)?;
                let local = due.with_timezone(&e.spec.schedule.tz()).format("%Y-%m-%d %H:%M:%S%:z").to_string();
                Some(UpcomingRun {
                    site: self.sites[idx].name.clone(),
                    schedule: id.to_string(),
                    task: e.spec.task.as_deref().map(str::to_string),
                    due,
                    zone: e.spec.zone.to_string(),
                    local,
                })
            })
            .collect())
    }

    fn run_now(
        &mut self,
        site: Option<&str>,
        schedule: String,
        reply: oneshot::Sender<Result<RunNowResult, EngineError>>,
    ) {
        let idx = match self.find_site(site, &schedule) {
            Ok(i) => i,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let s = &self.sites[idx];
        let Some(e) = s.entries.get(schedule.as_str()) else {
            let err = match s.skipped.get(&schedule) {
                Some(reason) => EngineError::NotRunnable { site: s.name.clone(), schedule, reason: reason.clone() },
                None => EngineError::UnknownSchedule { site: s.name.clone(), schedule },
            };
            let _ = reply.send(Err(err));
            return;
        };
        let Some(writer) = self.writer.clone().filter(|_| self.redis_up) else {
            let _ = reply.send(Err(EngineError::Redis("redis is not reachable".into())));
            return;
        };
        let mut now = Utc::now();
        if now.timestamp_subsec_nanos() == 0 {
            // Keep the id apart from the scheduled run of the same second.
            now += TimeDelta::nanoseconds(1);
        }
        let job_id = rq::job_id(&s.name, &schedule, now);
        let job = build_job(&e.spec, now, job_id.clone(), &self.opts.jobs);
        let claim = Claim {
            key: store::claim_key(&s.name, &job_id),
            ttl_secs: planner::claim_ttl_secs(grace_delta(self.opts.grace)),
        };
        let history = history_append(self.opts.history_max, &s.name, &schedule, &job_id, now, now);
        let result = RunNowResult { site: s.name.clone(), schedule, job_id, queue: job.queue.clone() };
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
}

fn log_skip(site: &str, schedule: &str, reason: &SkipReason) {
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

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The next batch of the running load (pending when there is none).
async fn recv_rows(rx: &mut Option<mpsc::Receiver<(usize, Vec<RebuildRow>)>>) -> Option<(usize, Vec<RebuildRow>)> {
    match rx.as_mut() {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn sorted_skips(skipped: &HashMap<String, SkipReason>) -> Vec<(String, SkipReason)> {
    let mut list: Vec<_> = skipped.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    list
}

async fn join_opt<T>(h: &mut Option<JoinHandle<T>>) -> Result<T, tokio::task::JoinError> {
    match h.as_mut() {
        Some(h) => h.await,
        None => std::future::pending().await,
    }
}

async fn join_preparing(
    p: &mut Option<(DateTime<Utc>, JoinHandle<Prepared>)>,
) -> Result<Prepared, tokio::task::JoinError> {
    match p.as_mut() {
        Some((_, h)) => h.await,
        None => std::future::pending().await,
    }
}

/// Writes one batch of runs with one script call and answers for every run; runs whose job
/// could not be built never reach Redis. Then appends the history of the runs it enqueued in
/// one pipelined round trip: outside the atomic step, which halves Redis' work per run, and
/// after `done_at`, because the job is in its queue (visible to workers) by then. A crash in
/// between loses history entries, never a run; a failed append is logged, the run stands.
async fn enqueue_batch(writer: RqWriter, batch: Vec<(FireItem, Payload)>) -> Vec<FireResult> {
    let mut results = Vec::with_capacity(batch.len());
    let (mut items, mut runs) = (Vec::with_capacity(batch.len()), Vec::with_capacity(batch.len()));
    for (item, run) in batch {
        match run {
            Ok(run) => {
                items.push(item);
                runs.push(run);
            }
            Err(e) => results.push(FireResult { item, outcome: Err(e), done_at: Utc::now() }),
        }
    }
    let outcomes = writer.enqueue_many(&runs, Utc::now()).await;
    let done_at = Utc::now();
    match outcomes {
        Ok(outcomes) => {
            results.extend(items.into_iter().zip(outcomes).map(|(item, outcome)| FireResult { item, outcome, done_at }))
        }
        Err(e) => results.extend(items.into_iter().map(|item| FireResult { item, outcome: Err(e.clone()), done_at })),
    }
    let (written, history): (Vec<&FireItem>, Vec<HistoryAppend>) = results
        .iter()
        .filter(|r| matches!(r.outcome, Ok(EnqueueOutcome::Enqueued)))
        .filter_map(|r| Some((&r.item, r.item.history.clone()?)))
        .unzip();
    match writer.append_history(&history).await {
        Ok(answers) => {
            for ((item, h), res) in written.iter().zip(&history).zip(answers) {
                if let Err(e) = res {
                    warn!(schedule = %item.id, job_id = %item.job_id, due = %rfc3339(item.due), history = %h.key,
                        error = %e, "history entry not written; the run is enqueued");
                }
            }
        }
        Err(e) => {
            warn!(runs = history.len(), error = %e, "history entries of an enqueued batch not written; the runs are enqueued")
        }
    }
    results
}

fn history_append(
    max: usize,
    site: &str,
    id: &str,
    job_id: &str,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<HistoryAppend> {
    let entry = HistoryEntry {
        job_id: job_id.to_string(),
        due: rfc3339(due),
        enqueued_at: now.to_rfc3339_opts(SecondsFormat::Millis, true),
    };
    let entry = serde_json::to_string(&entry).ok()?;
    Some(HistoryAppend { key: store::history_key(site, id), entry, max: max.max(1) })
}
