//! Readiness: what the daemon must have before it is ready, and the JSON `/readyz` answers.
//!
//! Ready = Redis answers (the engine's link is usable; it pings Redis every second while
//! idle), every site's source has loaded once, and the socket listens. The engine's part comes
//! as a [`Snapshot`] asked of it at request time through [`StateSource`] (so a stuck engine is
//! not ready either); the socket's part is a flag the binary sets.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// What the engine knows, as metrics and readiness need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub redis_up: bool,
    pub sites: Vec<SiteSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteSnapshot {
    pub name: String,
    /// None before the first load attempt ended.
    pub source_up: Option<bool>,
    /// The last load that read the source to the end.
    pub last_loaded: Option<DateTime<Utc>>,
    pub planned: usize,
    /// Rows that do not run, of which `disabled` are disabled.
    pub skipped: usize,
    pub disabled: usize,
}

/// Where the HTTP listener gets a [`Snapshot`] (the engine; None when it does not answer).
pub trait StateSource: Clone + Send + Sync + 'static {
    fn snapshot(&self) -> impl Future<Output = Option<Snapshot>> + Send;
}

/// The parts of readiness outside the engine.
#[derive(Debug, Default)]
pub struct Readiness {
    socket: AtomicBool,
}

impl Readiness {
    /// The socket listens (true) or has stopped (false).
    pub fn set_socket(&self, listening: bool) {
        self.socket.store(listening, Ordering::Relaxed);
    }

    pub fn socket(&self) -> bool {
        self.socket.load(Ordering::Relaxed)
    }

    /// Whether the daemon is ready, and the body saying which part is not:
    /// `{"ready": false, "not_ready": ["redis"], "redis": false, "socket": true,
    /// "engine": true, "sources": {"site1": true}}`.
    pub fn evaluate(&self, snapshot: Option<&Snapshot>) -> (bool, Value) {
        let socket = self.socket();
        let mut not_ready: Vec<String> = Vec::new();
        if snapshot.is_none() {
            not_ready.push("engine".into());
        }
        let redis = snapshot.is_some_and(|s| s.redis_up);
        if !redis {
            not_ready.push("redis".into());
        }
        let mut sources = serde_json::Map::new();
        for s in snapshot.map(|s| s.sites.as_slice()).unwrap_or_default() {
            let loaded = s.last_loaded.is_some();
            if !loaded {
                not_ready.push(format!("source:{}", s.name));
            }
            sources.insert(s.name.clone(), Value::Bool(loaded));
        }
        if !socket {
            not_ready.push("socket".into());
        }
        let ready = not_ready.is_empty();
        let body = json!({
            "ready": ready,
            "not_ready": not_ready,
            "engine": snapshot.is_some(),
            "redis": redis,
            "socket": socket,
            "sources": sources,
        });
        (ready, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(redis_up: bool, loaded: bool) -> Snapshot {
        Snapshot {
            redis_up,
            sites: vec![SiteSnapshot {
                name: "s1".into(),
                source_up: Some(loaded),
                last_loaded: loaded.then(Utc::now),
                planned: 1,
                skipped: 0,
                disabled: 0,
            }],
        }
    }

    #[test]
    fn ready_needs_redis_every_source_and_the_socket() {
        let r = Readiness::default();
        r.set_socket(true);
        assert!(r.evaluate(Some(&snapshot(true, true))).0);
        let (ready, body) = r.evaluate(Some(&snapshot(false, true)));
        assert!(!ready);
        assert_eq!(body["not_ready"], json!(["redis"]));
        assert_eq!(body["redis"], json!(false));
        let (ready, body) = r.evaluate(Some(&snapshot(true, false)));
        assert!(!ready);
        assert_eq!(body["not_ready"], json!(["source:s1"]));
        assert_eq!(body["sources"]["s1"], json!(false));
        r.set_socket(false);
        let (_, body) = r.evaluate(None);
        assert_eq!(body["not_ready"], json!(["engine", "redis", "socket"]));
    }
}
