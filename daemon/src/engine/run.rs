//! The engine task: one owner of all scheduling state, so firing, rebuilding and requests
//! never race each other. It is a loop over one `select!`: whichever comes first — a request,
//! the timer of the next due run, a batch of enqueues answering, a batch of loaded rows, a
//! Redis (re)connection, the rebuild interval, a retry, a re-read of followed schedules due or
//! done — is handed to the component that owns it. Slow I/O (source loads, re-reads, batches
//! of enqueues, history reads) runs in spawned tasks whose results come back into the loop;
//! the loop itself only waits on short pipelined Redis writes.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{error, info};

use super::answers;
use super::firing::{FireSettings, Firing};
use super::follow::FollowSet;
use super::handle::{Command, EngineHandle};
use super::jobs::JobSettings;
use super::link::{LinkEvent, RedisLink};
use super::loader::Loader;
use super::plan::Plan;
use super::reread::Reread;
use crate::config::{Config, Mode, RedisConfig};
use crate::metrics::{Metrics, SiteMetrics};
use crate::rq;
use crate::source::{Source, SourceSet};

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Which Redis (a URL, or Sentinel), its TLS CA and the RQ key prefix.
    pub redis: RedisConfig,
    pub grace: Duration,
    pub rebuild_interval: Duration,
    pub jobs: JobSettings,
    /// Entries kept per schedule history list.
    pub history_max: usize,
    /// How long a schedule named by a legacy request is followed (`legacy_follow_secs`).
    pub legacy_follow: Duration,
    /// Keep per-run lateness samples for [`EngineHandle::take_lateness`] (benchmarks).
    pub record_lateness: bool,
    /// Some source is in Frappe mode: the job id form is decided from the registered workers
    /// (`docs/rq.md`, "Job ids"); otherwise every id is portable.
    pub frappe_ids: bool,
    /// Where runs, rebuilds and Redis' state are counted (served only with `[metrics]`).
    pub metrics: Arc<Metrics>,
}

impl EngineOptions {
    pub fn from_config(config: &Config) -> Self {
        EngineOptions {
            redis: config.redis.clone(),
            grace: config.daemon.missed_run_grace,
            rebuild_interval: config.daemon.rebuild_interval,
            jobs: JobSettings::from_config(config),
            history_max: 100,
            legacy_follow: config.daemon.legacy_follow,
            record_lateness: false,
            frappe_ids: config.sites.iter().any(|s| s.mode == Mode::Frappe)
                || config.file.iter().any(|f| f.mode == Mode::Frappe),
            metrics: Arc::new(Metrics::new(config.metrics.per_schedule)),
        }
    }
}

/// The scheduling engine: the plan, the Redis link, the loader and firing, driven by one
/// loop. Create it with [`Engine::new`], then await [`Engine::run`].
pub struct Engine {
    plan: Plan,
    /// To give sites found later in a bench their metrics handles.
    metrics: Arc<Metrics>,
    link: RedisLink,
    loader: Loader,
    firing: Firing,
    follows: FollowSet,
    reread: Reread,
    rx: mpsc::Receiver<Command>,
    rebuild_interval: Duration,
    started_at: DateTime<Utc>,
    stopping: bool,
    frappe_ids: bool,
}

impl Engine {
    /// An engine over `sources` (one per site) and a handle to it. Nothing happens until
    /// [`Engine::run`] is awaited.
    pub fn new(opts: EngineOptions, sources: Vec<Source>) -> (Engine, EngineHandle) {
        Engine::with_source_set(opts, SourceSet::fixed(sources))
    }

    /// An engine over a [`SourceSet`], whose sites may change at each full rebuild (a bench).
    pub fn with_source_set(opts: EngineOptions, sources: SourceSet) -> (Engine, EngineHandle) {
        let (tx, rx) = mpsc::channel(1024);
        if let Some(cap) = sources.conn_cap() {
            let (open, waits) = opts.metrics.mariadb(cap.max());
            cap.report_to(open, waits);
        }
        let site_metrics: Vec<SiteMetrics> = sources.snapshot().iter().map(|s| opts.metrics.site(s.site())).collect();
        let keep_recent = opts.redis.sentinel.is_some();
        let engine = Engine {
            plan: Plan::new(sources.snapshot().iter().map(|s| s.site().to_string())).with_metrics(site_metrics.clone()),
            metrics: opts.metrics.clone(),
            link: RedisLink::new(opts.redis, opts.metrics),
            loader: Loader::new(sources.clone(), site_metrics.clone()),
            firing: Firing::new(FireSettings {
                jobs: opts.jobs,
                grace: opts.grace,
                history_max: opts.history_max,
                record_lateness: opts.record_lateness,
                metrics: site_metrics,
                keep_recent,
            }),
            follows: FollowSet::new(sources.snapshot().iter().map(Source::follows_rows), opts.legacy_follow),
            reread: Reread::new(sources.clone()),
            rx,
            rebuild_interval: opts.rebuild_interval,
            started_at: Utc::now(),
            stopping: false,
            frappe_ids: opts.frappe_ids,
        };
        (engine, EngineHandle::new(tx, sources))
    }

    /// Runs until [`EngineHandle::shutdown`] (or every handle is dropped); then waits for
    /// in-flight enqueues and returns.
    pub async fn run(mut self) {
        info!(sites = ?self.plan.sites().iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), "engine starting");
        self.link.connect();
        self.loader.start(self.loader.all(), &self.plan);
        let mut rebuild_tick = tokio::time::interval_at(Instant::now() + self.rebuild_interval, self.rebuild_interval);
        rebuild_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        while !self.stopping {
            self.firing.on_plan_changed(&mut self.plan, &self.link);
            self.firing.prepare_next(&self.plan, &self.link);
            let timer_at = self.firing.deadline(&self.plan, &self.link);
            let site_retry_at = self.loader.retry_at();
            let redis_retry_at = self.link.retry_at();
            let follow_at = self.follows.read_at();
            let redis_check_at = self.link.check_at();
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd).await,
                    None => self.stopping = true,
                },
                _ = sleep_until_opt(timer_at), if timer_at.is_some() => {
                    self.firing.fire_due(&mut self.plan, &mut self.link).await;
                }
                event = self.firing.next_event() => self.firing.on_event(event, &mut self.plan, &mut self.link).await,
                event = self.loader.next_event() => self.loader.on_event(event, &mut self.plan, &mut self.link).await,
                event = self.link.next_event() => match event {
                    LinkEvent::Connected(res) => {
                        if let Some(was_down) = self.link.on_connect(res) {
                            if self.link.take_master_change() {
                                self.firing.resend_recent(&self.link);
                            }
                            self.decide_id_form().await;
                            self.loader.on_redis_up(was_down, &mut self.plan, &mut self.link).await;
                        }
                    }
                    LinkEvent::Checked(res) => self.link.on_check(res),
                },
                _ = rebuild_tick.tick() => {
                    self.decide_id_form().await;
                    self.refresh_sites();
                    self.loader.start(self.loader.all(), &self.plan);
                }
                _ = sleep_until_opt(site_retry_at), if site_retry_at.is_some() => self.loader.retry(&self.plan),
                _ = sleep_until_opt(redis_retry_at), if redis_retry_at.is_some() => self.link.retry(),
                _ = sleep_until_opt(follow_at), if follow_at.is_some() => {
                    self.reread.start(self.follows.start_read(Instant::now()));
                }
                res = self.reread.done() => {
                    match res {
                        Ok(results) => answers::followed(results, &mut self.follows, &mut self.plan, &mut self.link).await,
                        Err(e) => error!(error = %e, "re-read of followed schedules failed"),
                    }
                    self.follows.end_read(Instant::now());
                }
                _ = sleep_until_opt(redis_check_at), if redis_check_at.is_some() => self.link.ping(),
            }
        }

        self.loader.abort();
        self.reread.abort();
        self.link.abort();
        self.firing.finish(&mut self.plan, &mut self.link).await;
        self.loader.close().await;
        info!("engine stopped");
    }

    /// Decides the id form of Frappe-mode runs from the workers registered in this Redis (at
    /// each connect and rebuild, not per run). Without Redis the form stays as it was.
    async fn decide_id_form(&mut self) {
        if !self.frappe_ids {
            return;
        }
        if let Ok(workers) = self.link.workers().await {
            self.firing.set_id_form(&rq::choose_form(&workers));
        }
    }

    async fn on_command(&mut self, cmd: Command) {
        let (plan, link) = (&mut self.plan, &mut self.link);
        match cmd {
            Command::Apply { rows, reply } => {
                let _ = reply.send(answers::notify(rows, plan, link).await);
            }
            Command::Cancel { site, schedule, reply } => {
                let _ = reply.send(answers::cancel(site.as_deref(), &schedule, plan, link).await);
            }
            Command::Rebuild { site, reply } => {
                self.decide_id_form().await;
                if site.is_none() {
                    self.refresh_sites();
                }
                self.loader.request(site, reply, &self.plan);
            }
            Command::Legacy { kind, schedule, rows, reply } => {
                let _ = reply.send(answers::legacy(kind, &schedule, rows, plan, link, &mut self.follows).await);
            }
            Command::Status { reply } => {
                let _ = reply.send(answers::status(self.started_at, plan, link, &self.loader, &self.firing));
            }
            Command::Upcoming { site, schedule, count, reply } => {
                let _ = reply.send(answers::upcoming(plan, site.as_deref(), schedule.as_deref(), count));
            }
            Command::History { site, schedule, count, reply } => {
                answers::history(plan, link, site.as_deref(), schedule, count, reply);
            }
            Command::RunNow { site, schedule, reply } => {
                answers::run_now(plan, link, &self.firing, site.as_deref(), &schedule, reply);
            }
            Command::Target { site, schedule, runnable, reply } => {
                let _ = reply.send(answers::target(plan, link, &self.firing, site.as_deref(), &schedule, runnable));
            }
            Command::Redis { site, schedule, reply } => {
                let _ = reply.send(answers::redis_access(plan, link, site.as_deref(), schedule.as_deref()));
            }
            Command::TakeLateness { reply } => {
                let _ = reply.send(self.firing.take_lateness());
            }
            Command::Shutdown => self.stopping = true,
        }
    }
}

impl Engine {
    /// Re-reads a bench's sites before a full load; new sites join the plan, the loader and
    /// the legacy follows (as database sites) at the next indices.
    fn refresh_sites(&mut self) {
        for m in self.loader.refresh_sites(&mut self.plan, &self.metrics) {
            self.follows.add_site(true);
            self.firing.add_site(m);
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
