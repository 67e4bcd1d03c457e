//! The one way the Rust test files name their keys, databases and directories.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `prefix` + a name no other test shares: tests run in parallel threads of one process, and
/// two can read the same clock value, so a counter tells them apart (ended by `x`, so that no
/// token is part of another and a test's `*token*` clean-up never reaches another's keys).
pub fn token(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}{:x}{:x}n{n}x", std::process::id(), nanos % 0xffff_ffff)
}
