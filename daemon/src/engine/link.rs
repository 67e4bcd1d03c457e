//! The Redis link: the engine's one connection to Redis, the RQ writer over it, and its
//! health.
//!
//! Whether Redis may be used is answered in one place, [`RedisLink::usable`]: connected, and
//! nothing failed since. Every part of the engine asks it (firing, rebuilds, notify, cancel,
//! history, run-now, status), and every Redis failure is reported to [`RedisLink::failed`],
//! which logs once per outage and schedules a reconnect with backoff. The plan-writing calls
//! here do both themselves: they do nothing while Redis is not usable, and mark it failed
//! when a write fails, so a caller only learns [`RedisDown`].
//!
//! While idle, the link pings Redis every [`CHECK_EVERY`], so an outage is seen (and readiness
//! and `btu_redis_up` turn) within seconds rather than at the next write. Each new connection
//! also reads Redis' `maxmemory-policy`: anything but `noeviction` can silently drop queued
//! jobs, which is reported (metric and one warning), not fatal.
//!
//! Reconnecting uses a fresh connection rather than waiting for the old connection manager's
//! own reconnect cycle, whose delays would add to ours (seconds after Redis is back).
//!
//! With Redis Sentinel (`[redis] sentinels`) every connect asks the sentinels for the master
//! ([`rq::connect_redis`]), and the idle check is `ROLE` instead of `PING`: an old master that
//! became a replica after a failover (writes answer `READONLY`, which fails the link like any
//! write error) is left at the next check even when nothing is written. A connect that
//! reaches another master than the last one logs the change (old → new address) once, and
//! [`RedisLink::take_master_change`] tells the engine, which re-sends its last runs.

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::backoff::Backoff;
use super::store::{self, PlanWrite, SiteState};
use crate::config::RedisConfig;
use crate::metrics::Metrics;
use crate::rq::{self, RedisConnection, RqError, RqWriter, WorkerInfo};

/// How often a usable link pings Redis.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// A ping (or the policy read) slower than this counts as a failure.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection to Redis and the RQ writer over it (both cheap to clone: one multiplexed
/// connection underneath).
#[derive(Clone)]
pub(super) struct Connected {
    pub conn: ConnectionManager,
    pub writer: RqWriter,
}

/// Redis was not usable, or failed during the call (and is now marked failed): the caller
/// keeps its change in memory; the resync after recovery writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RedisDown;

/// What a finished connection attempt returns.
pub(super) type ConnectResult = Result<Result<RedisConnection, RqError>, JoinError>;
/// What a finished ping returns.
pub(super) type CheckResult = Result<Result<(), String>, JoinError>;

/// What the link's background work yields to the engine loop.
pub(super) enum LinkEvent {
    Connected(ConnectResult),
    Checked(CheckResult),
}

/// A task's result (pending when there is no task).
async fn join<T>(task: &mut Option<JoinHandle<T>>) -> Result<T, JoinError> {
    match task.as_mut() {
        Some(task) => task.await,
        None => std::future::pending().await,
    }
}

pub(super) struct RedisLink {
    redis: Arc<RedisConfig>,
    key_prefix: String,
    /// The server of the last connection (the master's `host:port` with Sentinel).
    address: Option<String>,
    /// A connect reached another master than the one before, not yet taken.
    master_changed: bool,
    /// With Sentinel: asks the sentinels which master they name (the idle check).
    probe: Option<rq::SentinelProbe>,
    connected: Option<Connected>,
    /// Connected and no failure since the connection was made.
    up: bool,
    /// The outage has been logged (one line per outage, one when it ends).
    down_logged: bool,
    retry_at: Option<Instant>,
    backoff: Backoff,
    connecting: Option<JoinHandle<Result<RedisConnection, RqError>>>,
    /// The running ping, and when the next one is due.
    checking: Option<JoinHandle<Result<(), String>>>,
    check_at: Instant,
    metrics: Arc<Metrics>,
}

impl RedisLink {
    /// A link to the Redis `redis` names (not connected yet: see [`RedisLink::connect`]); RQ
    /// keys start with its `key_prefix`.
    pub fn new(redis: RedisConfig, metrics: Arc<Metrics>) -> Self {
        RedisLink {
            key_prefix: redis.key_prefix.clone(),
            address: None,
            master_changed: false,
            probe: redis.sentinel.clone().map(|s| rq::SentinelProbe::new(s, redis.tls_ca_file.clone())),
            redis: Arc::new(redis),
            connected: None,
            up: false,
            down_logged: false,
            retry_at: None,
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
            connecting: None,
            checking: None,
            check_at: Instant::now(),
            metrics,
        }
    }

    /// The connection, when Redis may be used: the one answer every part of the engine asks.
    pub fn usable(&self) -> Option<&Connected> {
        self.connected.as_ref().filter(|_| self.up)
    }

    pub fn is_usable(&self) -> bool {
        self.usable().is_some()
    }

    /// Redis failed: not usable until a reconnect succeeds. Logs once per outage and
    /// schedules that reconnect with backoff.
    pub fn failed(&mut self, error: &dyn Display) {
        if !self.down_logged {
            warn!(redis = %self.redis.describe(), error = %error,
                "redis unreachable; runs wait, retrying with backoff");
            self.down_logged = true;
        }
        self.up = false;
        self.retry_at = Some(Instant::now() + self.backoff.next_delay());
    }

    // ---- connecting ---------------------------------------------------------------------------

    /// Starts a connection attempt; [`RedisLink::next_event`] yields its result.
    pub fn connect(&mut self) {
        let redis = self.redis.clone();
        self.connecting = Some(tokio::spawn(async move { rq::connect_redis(&redis).await }));
    }

    /// When the next reconnect is due (none while an attempt is running).
    pub fn retry_at(&self) -> Option<Instant> {
        if self.connecting.is_none() { self.retry_at } else { None }
    }

    /// The reconnect [`RedisLink::retry_at`] asked for.
    pub fn retry(&mut self) {
        self.retry_at = None;
        self.connect();
    }

    /// The running connection attempt's or ping's result (pending while neither runs).
    pub async fn next_event(&mut self) -> LinkEvent {
        let (connecting, checking) = (&mut self.connecting, &mut self.checking);
        tokio::select! {
            res = join(connecting), if connecting.is_some() => LinkEvent::Connected(res),
            res = join(checking), if checking.is_some() => LinkEvent::Checked(res),
            else => std::future::pending().await,
        }
    }

    /// Takes a finished attempt's result. `Some(was_down)` when Redis is usable now.
    pub fn on_connect(&mut self, res: ConnectResult) -> Option<bool> {
        self.connecting = None;
        let RedisConnection { conn, address } =
            match res.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
                Ok(c) => c,
                Err(e) => {
                    self.failed(&e);
                    return None;
                }
            };
        self.check_policy(conn.clone());
        let writer = RqWriter::new(conn.clone(), &self.key_prefix);
        self.connected = Some(Connected { conn, writer });
        let was_down = !self.up;
        self.up = true;
        self.backoff.reset();
        self.retry_at = None;
        match self.address.replace(address.clone()) {
            Some(old) if old != address => {
                warn!(old = %old, new = %address, master_name = self.master_name(),
                    "redis master changed; re-sending the last runs to the new master");
                self.master_changed = true;
            }
            _ => {}
        }
        if was_down {
            let redis = self.redis.describe();
            if self.down_logged {
                info!(redis = %redis, address = %address, "redis reachable again; resyncing plans, then firing what is due");
            } else {
                info!(redis = %redis, address = %address, "redis connected");
            }
        }
        self.down_logged = false;
        Some(was_down)
    }

    fn master_name(&self) -> &str {
        self.redis.sentinel.as_ref().map_or("", |s| s.master_name.as_str())
    }

    /// Whether the master changed since the last call.
    pub fn take_master_change(&mut self) -> bool {
        std::mem::take(&mut self.master_changed)
    }

    /// Stops a running connection attempt or ping (shutdown).
    pub fn abort(&mut self) {
        if let Some(task) = self.connecting.take() {
            task.abort();
        }
        if let Some(task) = self.checking.take() {
            task.abort();
        }
    }

    // ---- health -------------------------------------------------------------------------------

    /// When the next ping is due (none while Redis is not usable or a ping runs).
    pub fn check_at(&self) -> Option<Instant> {
        (self.is_usable() && self.checking.is_none()).then_some(self.check_at)
    }

    /// Starts the ping [`RedisLink::check_at`] asked for: `PING`, or with Sentinel `ROLE` and
    /// the sentinels' answer (a server that is no longer the master, or that the sentinels no
    /// longer name, fails the check, so the reconnect asks the sentinels again).
    pub fn ping(&mut self) {
        let Some(c) = self.usable() else { return };
        let mut conn = c.conn.clone();
        let probe = self.probe.clone().zip(self.address.clone());
        self.checking = Some(tokio::spawn(async move {
            let check = async {
                let Some((probe, address)) = probe else {
                    return redis::cmd("PING").query_async::<()>(&mut conn).await.map_err(|e| e.to_string());
                };
                match rq::is_master(&mut conn).await {
                    Ok(true) => {}
                    Ok(false) => return Err(format!("{address} is no longer the master (ROLE)")),
                    Err(e) => return Err(e.to_string()),
                }
                match probe.master_address().await {
                    Ok(named) if named != address => Err(format!("the sentinels now name {named} as master")),
                    Ok(_) => Ok(()),
                    // The master answers: a sentinel outage alone does not stop the runs.
                    Err(e) => {
                        debug!(error = %e, "no sentinel answered; the master still says it is master");
                        Ok(())
                    }
                }
            };
            match tokio::time::timeout(CHECK_TIMEOUT, check).await {
                Ok(res) => res,
                Err(_) => Err(format!("no answer to the health check within {CHECK_TIMEOUT:?}")),
            }
        }));
    }

    /// Takes a ping's result: a failure marks Redis failed.
    pub fn on_check(&mut self, res: CheckResult) {
        self.checking = None;
        self.check_at = Instant::now() + CHECK_EVERY;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.failed(&e),
            Err(e) => self.failed(&e),
        }
    }

    /// Reads `maxmemory-policy` on a new connection (in the background) and reports it.
    fn check_policy(&self, mut conn: ConnectionManager) {
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            let mut cmd = redis::cmd("CONFIG");
            cmd.arg("GET").arg("maxmemory-policy");
            let get = cmd.query_async::<Vec<String>>(&mut conn);
            let policy = match tokio::time::timeout(CHECK_TIMEOUT, get).await {
                Ok(Ok(pair)) => pair.into_iter().nth(1),
                Ok(Err(e)) => {
                    debug!(error = %e, "cannot read redis' maxmemory-policy (CONFIG GET refused?)");
                    None
                }
                Err(_) => None,
            };
            if metrics.eviction_policy(policy.as_deref()) {
                warn!(
                    policy = policy.as_deref().unwrap_or("unknown"),
                    "redis maxmemory-policy is not noeviction: under memory pressure Redis may drop queued jobs"
                );
            }
        });
    }

    // ---- the plan in Redis ------------------------------------------------------------------

    /// The connection to write with, or [`RedisDown`].
    fn conn(&self) -> Result<ConnectionManager, RedisDown> {
        self.usable().map(|c| c.conn.clone()).ok_or(RedisDown)
    }

    /// Marks Redis failed on an error.
    fn check<T>(&mut self, res: redis::RedisResult<T>) -> Result<T, RedisDown> {
        res.map_err(|e| {
            self.failed(&e);
            RedisDown
        })
    }

    /// Records plans of `site` ([`store::write_plans`]).
    pub async fn write_plans(&mut self, site: &str, plans: &[PlanWrite<'_>]) -> Result<(), RedisDown> {
        let mut conn = self.conn()?;
        let res = store::write_plans(&mut conn, site, plans).await;
        self.check(res)
    }

    /// Forgets schedules of `site` ([`store::remove`]).
    pub async fn remove(&mut self, site: &str, ids: &[String]) -> Result<(), RedisDown> {
        let mut conn = self.conn()?;
        let res = store::remove(&mut conn, site, ids).await;
        self.check(res)
    }

    /// The plan a previous daemon left for `site` ([`store::load_site_state`]).
    pub async fn site_state(&mut self, site: &str) -> Result<SiteState, RedisDown> {
        let mut conn = self.conn()?;
        let res = store::load_site_state(&mut conn, site).await;
        self.check(res)
    }

    /// The registered rq workers ([`rq::read_workers`]).
    pub async fn workers(&mut self) -> Result<Vec<WorkerInfo>, RedisDown> {
        let mut conn = self.conn()?;
        let res = rq::read_workers(&mut conn, &self.key_prefix).await;
        self.check(res)
    }
}
