//! The MariaDB connections of every site under one cap ([`ConnCap`], `[mariadb]
//! max_connections`): a site's connection is opened when a load needs one, kept idle for the
//! next load of the same site, and closed when it has been idle for [`IDLE_TTL`] or when
//! another site needs its slot. However many sites there are, at most `max` connections are
//! open at once.
//!
//! A slot is a semaphore permit held for the whole life of a connection (idle ones included),
//! given back only once the connection is closed. Work that finds every slot taken by busy
//! connections waits for one (counted; logged once). A site whose last connect failed
//! connects only while holding one of a few probe permits as well, so sites waiting on a dead
//! server never hold more than a quarter of the slots the healthy ones need; a connect gives
//! up after [`CONNECT_TIMEOUT`].

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tracing::{info, warn};

/// An idle connection is closed after this long unused.
pub const IDLE_TTL: Duration = Duration::from_secs(60);
/// Longest a connect may take (a host that drops packets would otherwise hold a slot for
/// the kernel's TCP timeout).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// An idle connection unused this long is pinged before it is handed out (the server may
/// have closed it: restart, `wait_timeout`).
const PING_AFTER: Duration = Duration::from_secs(5);
/// Longest a ping of an idle connection, or a polite close, may take.
const SHORT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why no connection could be had.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Db(#[from] mysql_async::Error),
    #[error("no connection within {} s", CONNECT_TIMEOUT.as_secs())]
    Timeout,
}

/// The cap shared by every site's [`SitePool`]. Cheap to clone.
#[derive(Clone)]
pub struct ConnCap {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ConnCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnCap").field("max", &self.inner.max).field("open", &self.open()).finish()
    }
}

struct Inner {
    max: usize,
    /// One permit per connection that may be open.
    slots: Arc<Semaphore>,
    /// Held besides a slot while a site whose last connect failed connects.
    probes: Arc<Semaphore>,
    /// Idle connections of every site, oldest first.
    idle: Mutex<VecDeque<Idle>>,
    /// Tasks waiting for a slot.
    waiting: AtomicUsize,
    open: AtomicUsize,
    waits: AtomicU64,
    wait_logged: AtomicBool,
    next_site: AtomicU64,
    reaper: AtomicBool,
    metrics: OnceLock<(Gauge, Counter)>,
}

struct Idle {
    site: u64,
    conn: Conn,
    slot: OwnedSemaphorePermit,
    since: Instant,
}

impl ConnCap {
    /// A cap of `max` open connections (at least 1).
    pub fn new(max: usize) -> ConnCap {
        let max = max.max(1);
        ConnCap {
            inner: Arc::new(Inner {
                max,
                slots: Arc::new(Semaphore::new(max)),
                probes: Arc::new(Semaphore::new((max / 4).max(1))),
                idle: Mutex::new(VecDeque::new()),
                waiting: AtomicUsize::new(0),
                open: AtomicUsize::new(0),
                waits: AtomicU64::new(0),
                wait_logged: AtomicBool::new(false),
                next_site: AtomicU64::new(0),
                reaper: AtomicBool::new(false),
                metrics: OnceLock::new(),
            }),
        }
    }

    pub fn max(&self) -> usize {
        self.inner.max
    }

    /// Connections open now (busy and idle).
    pub fn open(&self) -> usize {
        self.inner.open.load(Ordering::Relaxed)
    }

    /// How many times work waited for a slot.
    pub fn waits(&self) -> u64 {
        self.inner.waits.load(Ordering::Relaxed)
    }

    /// Keeps `open` (connections open now) and `waits` (times work waited for a slot) up to
    /// date from now on; the first call wins.
    pub fn report_to(&self, open: Gauge, waits: Counter) {
        open.set(i64::try_from(self.open()).unwrap_or(i64::MAX));
        waits.inc_by(self.waits());
        let _ = self.inner.metrics.set((open, waits));
    }

    /// The pool of one site, connecting with `opts`.
    pub fn site(&self, opts: Opts) -> SitePool {
        SitePool {
            cap: self.clone(),
            id: self.inner.next_site.fetch_add(1, Ordering::Relaxed),
            opts,
            failing: Arc::new(AtomicBool::new(false)),
        }
    }

    fn take_idle(&self, site: u64) -> Option<Idle> {
        let mut idle = self.inner.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // The newest of the site's: the likeliest still to be alive.
        let i = idle.iter().rposition(|c| c.site == site)?;
        idle.remove(i)
    }

    fn take_oldest_idle(&self) -> Option<Idle> {
        self.inner.idle.lock().unwrap_or_else(PoisonError::into_inner).pop_front()
    }

    /// A free slot, or the slot of the oldest idle connection (closed first), without waiting.
    async fn try_slot(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(slot) = self.inner.slots.clone().try_acquire_owned() {
            return Some(slot);
        }
        let old = self.take_oldest_idle()?;
        Some(self.close(old.conn, old.slot).await)
    }

    /// A slot for a new connection: free, taken from an idle connection, or waited for.
    async fn slot(&self) -> OwnedSemaphorePermit {
        if let Some(slot) = self.try_slot().await {
            return slot;
        }
        self.inner.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Decrement(&self.inner.waiting);
        // A connection made idle just before `waiting` went up was not closed for us.
        if let Some(slot) = self.try_slot().await {
            return slot;
        }
        self.inner.waits.fetch_add(1, Ordering::Relaxed);
        if let Some((_, waits)) = self.inner.metrics.get() {
            waits.inc();
        }
        if !self.inner.wait_logged.swap(true, Ordering::Relaxed) {
            info!(
                max_connections = self.inner.max,
                "every MariaDB connection slot is busy: work waits for one (logged once; counted in btu_mariadb_connection_waits_total)"
            );
        }
        match self.inner.slots.clone().acquire_owned().await {
            Ok(slot) => slot,
            // The semaphore is never closed.
            Err(_) => std::future::pending().await,
        }
    }

    /// Closes `conn` politely (bounded by [`SHORT_TIMEOUT`]) and hands back its slot.
    async fn close(&self, conn: Conn, slot: OwnedSemaphorePermit) -> OwnedSemaphorePermit {
        // A close that does not finish in time drops the connection (the socket closes).
        let _ = tokio::time::timeout(SHORT_TIMEOUT, conn.disconnect()).await;
        self.opened(-1);
        slot
    }

    /// Closes `conn` in the background; its slot is free once it is closed.
    fn close_later(&self, conn: Conn, slot: OwnedSemaphorePermit) {
        let cap = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move { drop(cap.close(conn, slot).await) });
            }
            Err(_) => {
                drop(conn);
                self.opened(-1);
            }
        }
    }

    fn opened(&self, delta: isize) {
        let now = if delta > 0 {
            self.inner.open.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.inner.open.fetch_sub(1, Ordering::Relaxed).saturating_sub(1)
        };
        if let Some((open, _)) = self.inner.metrics.get() {
            open.set(i64::try_from(now).unwrap_or(i64::MAX));
        }
    }

    /// Keeps a connection that finished its work cleanly for the next load of its site, unless
    /// someone waits for a slot (then it is closed and its slot goes to them).
    fn keep(&self, site: u64, conn: Conn, slot: OwnedSemaphorePermit) {
        self.inner.idle.lock().unwrap_or_else(PoisonError::into_inner).push_back(Idle {
            site,
            conn,
            slot,
            since: Instant::now(),
        });
        if self.inner.waiting.load(Ordering::SeqCst) > 0
            && let Some(old) = self.take_oldest_idle()
        {
            self.close_later(old.conn, old.slot);
        }
        self.start_reaper();
    }

    /// Closes idle connections of `site` (its source was replaced or the daemon stops).
    async fn close_site(&self, site: u64) {
        while let Some(idle) = self.take_idle(site) {
            drop(self.close(idle.conn, idle.slot).await);
        }
    }

    /// One task per cap closes connections idle longer than [`IDLE_TTL`].
    fn start_reaper(&self) {
        if self.inner.reaper.swap(true, Ordering::Relaxed) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.inner.reaper.store(false, Ordering::Relaxed);
            return;
        };
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        rt.spawn(async move {
            loop {
                tokio::time::sleep(IDLE_TTL / 4).await;
                let Some(inner) = weak.upgrade() else { return };
                let cap = ConnCap { inner };
                let expired: Vec<Idle> = {
                    let mut idle = cap.inner.idle.lock().unwrap_or_else(PoisonError::into_inner);
                    let (old, fresh): (VecDeque<Idle>, VecDeque<Idle>) =
                        idle.drain(..).partition(|c| c.since.elapsed() >= IDLE_TTL);
                    *idle = fresh;
                    old.into()
                };
                for c in expired {
                    drop(cap.close(c.conn, c.slot).await);
                }
            }
        });
    }
}

/// Decrements the counter when dropped (a waiter that was cancelled stops counting too).
struct Decrement<'a>(&'a AtomicUsize);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One site's connections under the shared [`ConnCap`]. Cheap to clone (clones share the
/// site's idle connections).
#[derive(Clone)]
pub struct SitePool {
    cap: ConnCap,
    id: u64,
    opts: Opts,
    /// The last connect failed: the next one takes a probe permit too.
    failing: Arc<AtomicBool>,
}

impl std::fmt::Debug for SitePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SitePool").field("id", &self.id).finish_non_exhaustive()
    }
}

impl SitePool {
    pub fn cap(&self) -> &ConnCap {
        &self.cap
    }

    /// A connection to the site: an idle one of its own, or a new one in a slot of the cap.
    pub async fn get(&self) -> Result<CappedConn, ConnectError> {
        if let Some(idle) = self.cap.take_idle(self.id) {
            let mut conn = idle.conn;
            if idle.since.elapsed() < PING_AFTER
                || matches!(tokio::time::timeout(SHORT_TIMEOUT, conn.ping()).await, Ok(Ok(())))
            {
                return Ok(self.wrap(conn, idle.slot));
            }
            // Closed by the server meanwhile: its slot serves a fresh connection.
            let slot = self.cap.close(conn, idle.slot).await;
            return self.connect(slot).await;
        }
        // A site whose server did not answer last time waits for a probe permit before it
        // takes a slot, so such sites hold few slots.
        let _probe = if self.failing.load(Ordering::Relaxed) {
            self.cap.inner.probes.clone().acquire_owned().await.ok()
        } else {
            None
        };
        let slot = self.cap.slot().await;
        self.connect(slot).await
    }

    async fn connect(&self, slot: OwnedSemaphorePermit) -> Result<CappedConn, ConnectError> {
        let result = match tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(self.opts.clone())).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(ConnectError::Db(e)),
            Err(_) => Err(ConnectError::Timeout),
        };
        let was_failing = self.failing.swap(result.is_err(), Ordering::Relaxed);
        match result {
            Ok(conn) => {
                self.cap.opened(1);
                Ok(self.wrap(conn, slot))
            }
            Err(e) => {
                if !was_failing {
                    warn!(error = %e, "MariaDB connect failed; this site's connects now wait for a probe slot");
                }
                drop(slot);
                Err(e)
            }
        }
    }

    fn wrap(&self, conn: Conn, slot: OwnedSemaphorePermit) -> CappedConn {
        CappedConn { conn: Some(conn), slot: Some(slot), pool: self.clone() }
    }

    /// Closes the site's idle connections (its source was replaced, or shutdown).
    pub async fn close(&self) {
        self.cap.close_site(self.id).await;
    }
}

/// A connection holding its slot. [`CappedConn::release`] keeps it for the site's next load;
/// dropped otherwise (an error, a result not read to the end, a cancelled load), it is closed
/// in the background and its slot freed once it is.
pub struct CappedConn {
    conn: Option<Conn>,
    slot: Option<OwnedSemaphorePermit>,
    pool: SitePool,
}

impl CappedConn {
    /// The work ended cleanly: the connection may serve the site's next load.
    pub fn release(mut self) {
        if let (Some(conn), Some(slot)) = (self.conn.take(), self.slot.take()) {
            self.pool.cap.keep(self.pool.id, conn, slot);
        }
    }
}

impl Deref for CappedConn {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        // Present until release or drop, which consume it.
        self.conn.as_ref().unwrap_or_else(|| unreachable!("connection used after release"))
    }
}

impl DerefMut for CappedConn {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().unwrap_or_else(|| unreachable!("connection used after release"))
    }
}

impl Drop for CappedConn {
    fn drop(&mut self) {
        if let (Some(conn), Some(slot)) = (self.conn.take(), self.slot.take()) {
            self.pool.cap.close_later(conn, slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_are_the_cap() {
        let cap = ConnCap::new(2);
        let a = cap.slot().await;
        let _b = cap.slot().await;
        assert!(cap.try_slot().await.is_none());
        drop(a);
        assert!(cap.try_slot().await.is_some());
        assert_eq!(cap.inner.probes.available_permits(), 1);
        assert_eq!(ConnCap::new(0).max(), 1);
        assert_eq!(ConnCap::new(16).inner.probes.available_permits(), 4);
    }

    #[tokio::test]
    async fn a_waiter_counts_once_and_gets_the_next_free_slot() {
        let cap = ConnCap::new(1);
        let held = cap.slot().await;
        let waiter = {
            let cap = cap.clone();
            tokio::spawn(async move { cap.slot().await })
        };
        while cap.waits() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(cap.inner.waiting.load(Ordering::SeqCst), 1);
        drop(held);
        let _slot = waiter.await.expect("waiter");
        assert_eq!(cap.inner.waiting.load(Ordering::SeqCst), 0);
    }
}
