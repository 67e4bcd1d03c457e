//! systemd `Type=notify` (docs/operations.md): `READY=1` once the first plan is in Redis,
//! `STATUS=` with sites and schedule counts, `WATCHDOG=1` while the engine answers (when the
//! unit sets `WatchdogSec`), `STOPPING=1` on shutdown. Without `NOTIFY_SOCKET` (Supervisor, a
//! terminal) it does nothing at all, so the engine is not asked anything.

use std::time::Duration;

use tracing::{debug, info};

use crate::engine::{EngineHandle, StatusReport};

use sd_notify::NotifyState;

/// How often the engine's state is read when no watchdog asks for more.
const POLL: Duration = Duration::from_secs(1);
/// How long one status question may take before the watchdog ping is skipped.
const ENGINE_WAIT: Duration = Duration::from_secs(5);

/// Whether a service manager listens.
pub fn enabled() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty())
}

/// Reports to systemd until the future is dropped (at shutdown): READY once, STATUS on
/// change, WATCHDOG after each answer of the engine.
pub async fn report(handle: EngineHandle) {
    if !enabled() {
        return std::future::pending().await;
    }
    let watchdog = sd_notify::watchdog_enabled();
    let every = watchdog.map_or(POLL, |w| (w / 2).min(POLL));
    if let Some(w) = watchdog {
        info!(watchdog_secs = w.as_secs_f64(), "systemd watchdog enabled");
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut ready, mut last_status) = (false, String::new());
    loop {
        tick.tick().await;
        // A stuck engine answers nothing: no watchdog ping, and systemd restarts the daemon.
        let Ok(Ok(report)) = tokio::time::timeout(ENGINE_WAIT, handle.status()).await else { continue };
        let status = status_line(&report);
        let mut states = Vec::new();
        if !ready && first_plan_stored(&report) {
            ready = true;
            states.push(NotifyState::Ready);
            info!(status = %status, "ready (systemd notified)");
        }
        if status != last_status {
            states.push(NotifyState::Status(&status));
        }
        if watchdog.is_some() {
            states.push(NotifyState::Watchdog);
        }
        if let Err(e) = sd_notify::notify(&states) {
            debug!(error = %e, "systemd notify failed");
        }
        last_status = status;
    }
}

/// Tells systemd the daemon is stopping.
pub fn stopping() {
    if enabled() {
        let _ = sd_notify::notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }
}

/// The first plan is in Redis: Redis is usable and every site's source was tried once (a site
/// whose source is down does not hold the others back; `STATUS` names it).
fn first_plan_stored(r: &StatusReport) -> bool {
    r.redis_up && r.sites.iter().all(|s| s.source_ok.is_some())
}

/// `2 sites, 1200 schedules planned, 3 not running; redis up; source down: site2`.
pub fn status_line(r: &StatusReport) -> String {
    let planned: usize = r.sites.iter().map(|s| s.planned).sum();
    let skipped: usize = r.sites.iter().map(|s| s.skipped).sum();
    let mut line = format!(
        "{} site{}, {planned} schedules planned, {skipped} not running; redis {}",
        r.sites.len(),
        if r.sites.len() == 1 { "" } else { "s" },
        if r.redis_up { "up" } else { "down" }
    );
    let down: Vec<&str> = r.sites.iter().filter(|s| s.source_ok == Some(false)).map(|s| s.name.as_str()).collect();
    if !down.is_empty() {
        line.push_str(&format!("; source down: {}", down.join(", ")));
    }
    let waiting = r.sites.iter().filter(|s| s.source_ok.is_none()).count();
    if waiting > 0 {
        line.push_str(&format!("; {waiting} loading"));
    }
    line
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::engine::SiteStatus;

    fn site(name: &str, source_ok: Option<bool>) -> SiteStatus {
        SiteStatus {
            name: name.into(),
            source_ok,
            planned: 10,
            skipped: 2,
            disabled: 1,
            last_loaded: None,
            last_error: None,
        }
    }

    fn report(redis_up: bool, sites: Vec<SiteStatus>) -> StatusReport {
        StatusReport {
            started_at: Utc::now(),
            redis_up,
            sites,
            next_due: None,
            last_rebuild: None,
            runs_enqueued: 0,
            runs_already_claimed: 0,
            runs_missed: 0,
        }
    }

    #[test]
    fn ready_waits_for_redis_and_a_first_load_of_every_site() {
        assert!(!first_plan_stored(&report(false, vec![site("a", Some(true))])));
        assert!(!first_plan_stored(&report(true, vec![site("a", Some(true)), site("b", None)])));
        assert!(first_plan_stored(&report(true, vec![site("a", Some(true)), site("b", Some(false))])));
    }

    #[test]
    fn status_names_counts_and_what_is_down() {
        let r = report(true, vec![site("a", Some(true)), site("b", Some(false))]);
        assert_eq!(status_line(&r), "2 sites, 20 schedules planned, 4 not running; redis up; source down: b");
        let r = report(false, vec![site("a", None)]);
        assert_eq!(status_line(&r), "1 site, 10 schedules planned, 2 not running; redis down; 1 loading");
    }
}
