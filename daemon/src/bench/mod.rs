//! Zero-configuration on a Frappe bench: from `[frappe] bench_path` alone, the sites, their
//! databases, the queue Redis (with RQ auth) and the bench id, read exactly as Frappe v15
//! reads them.
//!
//! | file              | one job                                                          | I/O |
//! |-------------------|------------------------------------------------------------------|-----|
//! | `frappe_conf.rs`  | Frappe's rules over parsed JSON: bench id, queue Redis, site DB    | no  |
//! | `walk.rs`         | the bench on disk: site folders (Frappe's `get_sites`), JSON text | files |
//! | `discovery.rs`    | [`Discovery`]: sites served / left out; filling in a `Config`     | no  |
//! | `error.rs`        | [`BenchError`]: the bench as a whole cannot be read               | no  |
//!
//! Whether a site has the BTU app installed needs its database: `source::mariadb` asks
//! when it loads the site.

mod discovery;
mod error;
pub mod frappe_conf;
mod walk;

use std::path::Path;

use crate::config::Config;

pub use discovery::{BTU_APP, Discovery, Excluded, same_db};
pub use error::BenchError;

/// Reads the bench at `path` with the process environment (`$FRAPPE_REDIS_QUEUE`,
/// `$FRAPPE_DB_*`, as Frappe honours them).
pub fn discover(path: &Path) -> Result<Discovery, BenchError> {
    let env = |key: &str| std::env::var(key).ok();
    discover_with(path, &env)
}

/// `config` as the daemon uses it: with `[frappe] bench_path`, filled in from the bench
/// ([`Discovery::apply`]); otherwise unchanged.
pub fn effective(config: &Config) -> Result<Config, BenchError> {
    match &config.frappe.bench_path {
        None => Ok(config.clone()),
        Some(path) => Ok(discover(path)?.apply(config)),
    }
}

/// [`discover`] with an explicit environment (tests).
pub fn discover_with(path: &Path, env: frappe_conf::Env<'_>) -> Result<Discovery, BenchError> {
    Ok(Discovery::from_files(walk::read(path)?, env))
}
