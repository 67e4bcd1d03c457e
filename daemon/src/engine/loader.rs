//! The loader: when and which sites reload their schedules, and what the engine knows about
//! each site's source (reachable or not, when it last loaded, when to retry).
//!
//! A load reads the sources of some sites (every site at start, on the rebuild interval and
//! on SIGHUP; one site on request or when its source failed) in one spawned task. The rows
//! stream back in batches through a bounded channel, and the engine applies each batch as it
//! arrives ([`super::rebuild`]), firing runs in between. One load runs at a time: sites asked
//! for meanwhile are loaded right after it, and a caller who asked meanwhile waits for that
//! next load (the running one may have read its source before the request).
//!
//! A load reads at most [`concurrency`] sites at a time (three quarters of the MariaDB
//! connection cap, so notifications keep slots of their own): a bench of hundreds of sites is
//! walked without a task, a connection or a batch of rows per site at once.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::backoff::Backoff;
use super::link::RedisLink;
use super::plan::Plan;
use super::rebuild::{Finished, SiteLoad, resync};
use super::reports::{RebuildReport, SiteRebuild};
use crate::metrics::{Metrics, SiteMetrics};
use crate::source::{ConnCap, KnownFingerprints, RebuildRow, RowSink, SourceError, SourceSet};

type LoadResults = Vec<(usize, Result<(), SourceError>)>;

/// What the engine knows about one site's source and its loads.
pub(super) struct SiteSource {
    /// The plan a previous daemon stored in Redis has been taken over: from now on memory is
    /// authoritative.
    synced: bool,
    /// Rows loaded while Redis was down, applied when it is back.
    pending_rows: Option<Vec<RebuildRow>>,
    /// The load being applied, batch by batch.
    load: Option<SiteLoad>,
    /// None before the first load attempt finished.
    pub source_ok: Option<bool>,
    pub last_loaded: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    retry_at: Option<Instant>,
    backoff: Backoff,
}

impl SiteSource {
    fn new() -> Self {
        SiteSource {
            synced: false,
            pending_rows: None,
            load: None,
            source_ok: None,
            last_loaded: None,
            last_error: None,
            retry_at: None,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
        }
    }
}

/// A caller waiting for a rebuild, of one site or all.
struct Waiter {
    site: Option<String>,
    reply: oneshot::Sender<RebuildReport>,
}

/// What the running load yields to the engine loop.
pub(super) enum LoadEvent {
    /// A batch of rows of site `.0`.
    Rows(usize, Vec<RebuildRow>),
    /// The load task ended: per site, whether its source was read to the end.
    Done(Result<LoadResults, JoinError>),
}

pub(super) struct Loader {
    sources: SourceSet,
    sites: Vec<SiteSource>,
    task: Option<JoinHandle<LoadResults>>,
    /// Batches of rows of the running load.
    rows: Option<mpsc::Receiver<(usize, Vec<RebuildRow>)>>,
    /// Sites to load as soon as the running load ends.
    again: BTreeSet<usize>,
    /// Answered when the running load ends …
    waiters: Vec<Waiter>,
    /// … and these when the one after it ends.
    waiters_next: Vec<Waiter>,
    last_rebuild: Option<DateTime<Utc>>,
    /// When the running load started (its sites' rebuild duration).
    started: Option<Instant>,
    /// Per site (in site order): rebuild durations.
    metrics: Vec<SiteMetrics>,
}

impl Loader {
    /// A loader over `sources`, one per site, in the plan's site order.
    pub fn new(sources: SourceSet, metrics: Vec<SiteMetrics>) -> Self {
        let sites = sources.snapshot().iter().map(|_| SiteSource::new()).collect();
        Loader {
            sources,
            sites,
            task: None,
            rows: None,
            again: BTreeSet::new(),
            waiters: Vec::new(),
            waiters_next: Vec::new(),
            last_rebuild: None,
            started: None,
            metrics,
        }
    }

    /// Re-reads a bench's sites (a no-op without one) before a full load: a new site gets
    /// the next index here and in `plan`; a dropped one loads no rows from now on.
    /// Returns the sites added, each with the metrics handle it was given.
    pub fn refresh_sites(&mut self, plan: &mut Plan, metrics: &Metrics) -> Vec<SiteMetrics> {
        let mut added = Vec::new();
        for name in self.sources.refresh() {
            let m = metrics.site(&name);
            plan.add_site(name, m.clone());
            self.sites.push(SiteSource::new());
            self.metrics.push(m.clone());
            added.push(m);
        }
        added
    }

    pub fn site(&self, idx: usize) -> &SiteSource {
        &self.sites[idx]
    }

    /// When the last load ended.
    pub fn last_rebuild(&self) -> Option<DateTime<Utc>> {
        self.last_rebuild
    }

    /// Every site.
    pub fn all(&self) -> Vec<usize> {
        (0..self.sites.len()).collect()
    }

    /// A rebuild asked for by a caller: of site `site` (every site when `None`); `reply` gets
    /// the report of the sites loaded.
    pub fn request(&mut self, site: Option<usize>, reply: Option<oneshot::Sender<RebuildReport>>, plan: &Plan) {
        let waiter = reply.map(|reply| Waiter { site: site.map(|i| plan.name(i).to_string()), reply });
        // A load already running may have read the sources before this request: its caller
        // waits for the next one.
        let waiters = if self.task.is_some() { &mut self.waiters_next } else { &mut self.waiters };
        waiters.extend(waiter);
        self.start(site.map_or_else(|| self.all(), |i| vec![i]), plan);
    }

    /// Loads `sites` now, or right after the running load.
    pub fn start(&mut self, sites: Vec<usize>, plan: &Plan) {
        if self.task.is_some() {
            self.again.extend(sites);
            return;
        }
        for s in &mut self.sites {
            s.load = None; // left over only if the previous load task failed
        }
        // What each site already plans: rows that match come back as small `Unchanged`
        // markers instead of full specs, so a rebuild never holds a second copy of the plan.
        let known: Vec<_> = sites.into_iter().map(|idx| (idx, plan.known_fingerprints(idx))).collect();
        // Rows stream in batches: the source waits while the engine applies, so at most
        // these batches of built specs exist beside the plan.
        let (tx, rx) = mpsc::channel(2);
        self.rows = Some(rx);
        self.started = Some(Instant::now());
        let sources = self.sources.snapshot();
        let limit = concurrency(self.sources.conn_cap().map(ConnCap::max));
        self.task = Some(tokio::spawn(async move {
            let mut set = JoinSet::new();
            let mut sites = known.into_iter();
            let spawn = |set: &mut JoinSet<_>, (idx, known): (usize, KnownFingerprints)| {
                let sources = sources.clone();
                let mut sink = RowSink::new(idx, tx.clone());
                set.spawn(async move { (idx, sources[idx].load_rebuild(&known, &mut sink).await) });
            };
            for site in sites.by_ref().take(limit) {
                spawn(&mut set, site);
            }
            let mut out = Vec::new();
            while let Some(r) = set.join_next().await {
                if let Ok(r) = r {
                    out.push(r);
                }
                if let Some(site) = sites.next() {
                    spawn(&mut set, site);
                }
            }
            drop(tx);
            out.sort_by_key(|(i, _)| *i);
            out
        }));
    }

    /// When the earliest retry of a site whose source failed is due.
    pub fn retry_at(&self) -> Option<Instant> {
        self.sites.iter().filter_map(|s| s.retry_at).min()
    }

    /// Loads the sites whose retry is due.
    pub fn retry(&mut self, plan: &Plan) {
        let now = Instant::now();
        let due: Vec<usize> =
            (0..self.sites.len()).filter(|&i| self.sites[i].retry_at.is_some_and(|t| t <= now)).collect();
        if due.is_empty() {
            return;
        }
        for &i in &due {
            self.sites[i].retry_at = None;
        }
        self.start(due, plan);
    }

    /// The next batch of rows or the end of the running load (pending while none runs).
    pub async fn next_event(&mut self) -> LoadEvent {
        let Some(task) = self.task.as_mut() else { return std::future::pending().await };
        let Some(rows) = self.rows.as_mut() else { return LoadEvent::Done(task.await) };
        tokio::select! {
            // Batches first: a load's rows are applied before it is concluded.
            biased;
            Some((idx, batch)) = rows.recv() => LoadEvent::Rows(idx, batch),
            res = task => LoadEvent::Done(res),
        }
    }

    pub async fn on_event(&mut self, event: LoadEvent, plan: &mut Plan, link: &mut RedisLink) {
        match event {
            LoadEvent::Rows(idx, rows) => self.on_rows(idx, rows, plan, link).await,
            LoadEvent::Done(res) => {
                self.task = None;
                // Apply the batches still buffered when the task ended.
                if let Some(mut rx) = self.rows.take() {
                    while let Ok((idx, rows)) = rx.try_recv() {
                        self.on_rows(idx, rows, plan, link).await;
                    }
                }
                match res {
                    Ok(results) => self.on_loaded(results, plan, link).await,
                    Err(e) => error!(error = %e, "schedule load task failed"),
                }
            }
        }
    }

    /// One batch of a site's rows, as the source reads them.
    async fn on_rows(&mut self, idx: usize, rows: Vec<RebuildRow>, plan: &mut Plan, link: &mut RedisLink) {
        let mut load = match self.sites[idx].load.take() {
            Some(load) => load,
            None => SiteLoad::begin(idx, self.sites[idx].synced, plan, link).await,
        };
        load.apply(rows, plan, link).await;
        self.sites[idx].load = Some(load);
    }

    async fn on_loaded(&mut self, results: LoadResults, plan: &mut Plan, link: &mut RedisLink) {
        let mut report = RebuildReport::default();
        let elapsed = self.started.take().map(|t| t.elapsed());
        for (idx, res) in results {
            let site_name = plan.name(idx).to_string();
            match res {
                Ok(()) => {
                    let site = &mut self.sites[idx];
                    if site.source_ok == Some(false) {
                        info!(site = %site_name, "schedule source reachable again; rebuilding");
                    }
                    site.source_ok = Some(true);
                    if let (Some(m), Some(elapsed)) = (self.metrics.get(idx), elapsed) {
                        m.rebuilt(elapsed);
                    }
                    let site = &mut self.sites[idx];
                    site.last_error = None;
                    site.last_loaded = Some(Utc::now());
                    site.retry_at = None;
                    site.backoff.reset();
                    let load = match self.sites[idx].load.take() {
                        Some(load) => load,
                        None => SiteLoad::begin(idx, self.sites[idx].synced, plan, link).await, // no rows
                    };
                    let mut r = self.conclude(idx, load, plan, link).await;
                    if r.deferred
                        && link.is_usable()
                        && let Some(rows) = self.sites[idx].pending_rows.take()
                    {
                        r = self.reconcile(idx, rows, plan, link).await; // Redis came back while reading
                    }
                    report.sites.push(r);
                }
                Err(e) => {
                    if let Some(load) = self.sites[idx].load.take() {
                        load.abandon(self.sites[idx].synced, plan, link).await;
                    }
                    let site = &mut self.sites[idx];
                    let msg = e.to_string();
                    if site.source_ok != Some(false) {
                        warn!(site = %site_name, error = %msg, planned = plan.site(idx).planned(),
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
            log_rebuild(r);
        }
        for w in self.waiters.drain(..) {
            let mut answer = report.clone();
            if let Some(site) = &w.site {
                answer.sites.retain(|r| r.site == *site);
            }
            let _ = w.reply.send(answer);
        }
        self.waiters = std::mem::take(&mut self.waiters_next);
        if !self.again.is_empty() {
            let again = std::mem::take(&mut self.again).into_iter().collect();
            self.start(again, plan);
        }
    }

    /// Redis is usable again (or for the first time): rows kept while it was down are
    /// applied, and after an outage every synced site's plan is rewritten (Redis may have
    /// lost it). Overdue runs then fire from the timer under the missed-run rule.
    pub async fn on_redis_up(&mut self, was_down: bool, plan: &mut Plan, link: &mut RedisLink) {
        for idx in 0..self.sites.len() {
            if !link.is_usable() {
                break;
            }
            let was_synced = self.sites[idx].synced;
            // While a newer load of the site is being applied, it supersedes these rows.
            if let Some(rows) = self.sites[idx].pending_rows.take()
                && self.sites[idx].load.is_none()
            {
                let report = self.reconcile(idx, rows, plan, link).await;
                log_rebuild(&report);
            }
            if was_synced && was_down && link.is_usable() {
                resync(idx, plan, link).await;
            }
        }
        if self.task.is_none() && !self.again.is_empty() {
            // A pending reconcile found rows it could not apply.
            let again = std::mem::take(&mut self.again).into_iter().collect();
            self.start(again, plan);
        }
    }

    /// Makes site `idx` plan exactly `rows` at once (rows loaded while Redis was down).
    async fn reconcile(
        &mut self,
        idx: usize,
        rows: Vec<RebuildRow>,
        plan: &mut Plan,
        link: &mut RedisLink,
    ) -> SiteRebuild {
        let mut load = SiteLoad::begin(idx, self.sites[idx].synced, plan, link).await;
        load.apply(rows, plan, link).await;
        self.conclude(idx, load, plan, link).await
    }

    /// Finishes a load whose source was read to the end, and keeps what it left for later.
    async fn conclude(&mut self, idx: usize, load: SiteLoad, plan: &mut Plan, link: &mut RedisLink) -> SiteRebuild {
        match load.finish(plan, link).await {
            Finished::Applied { report, again } => {
                self.sites[idx].synced = true;
                if again {
                    self.again.insert(idx);
                }
                report
            }
            Finished::Deferred { report, rows } => {
                self.sites[idx].pending_rows = Some(rows);
                report
            }
        }
    }

    /// Stops the running load (shutdown).
    pub fn abort(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Releases the sources' connections (shutdown).
    pub async fn close(&self) {
        for s in self.sources.snapshot().iter() {
            s.close().await;
        }
    }
}

/// Sites a load reads at once: three quarters of the MariaDB connection cap (at least one),
/// so notifications and re-reads keep slots while hundreds of sites are walked; 16 without a
/// database source.
fn concurrency(cap: Option<usize>) -> usize {
    cap.map_or(16, |max| (max - max / 4).max(1))
}

fn log_rebuild(r: &SiteRebuild) {
    if r.deferred && r.added + r.changed + r.removed == 0 {
        info!(site = %r.site, skipped = r.skipped.len(), "schedules loaded; planning waits for redis");
    } else if r.error.is_none() && (r.added + r.changed + r.removed > 0 || r.deferred) {
        info!(site = %r.site, added = r.added, changed = r.changed, removed = r.removed,
            unchanged = r.unchanged, skipped = r.skipped.len(), deferred = r.deferred, "schedules rebuilt");
    } else if r.error.is_none() {
        debug!(site = %r.site, unchanged = r.unchanged, skipped = r.skipped.len(), "schedules rebuilt, nothing changed");
    }
}

#[cfg(test)]
mod tests {
    use super::concurrency;

    #[test]
    fn loads_leave_a_quarter_of_the_connection_cap_free() {
        assert_eq!(concurrency(Some(16)), 12);
        assert_eq!(concurrency(Some(4)), 3);
        assert_eq!(concurrency(Some(1)), 1);
        assert_eq!(concurrency(None), 16);
    }
}
