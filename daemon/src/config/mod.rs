//! Daemon configuration: one TOML file, in the structured format of this project or in the
//! original BTU scheduler's flat format (so an existing `/etc/btu_scheduler/btu_scheduler.toml`
//! keeps working).
//!
//! Structured format (every key optional except where a source needs it):
//!
//! ```toml
//! [daemon]
//! rebuild_interval_secs = 300      # full rebuild period
//! missed_run_grace_secs = 300      # missed runs younger than this are caught up once
//! time_zone = "America/Los_Angeles" # zone of cron strings when the site does not say
//! log_level = "info"               # RUST_LOG wins when set
//! log_format = "text"              # or "json": one JSON object per line
//! socket_path = "/tmp/btu_scheduler.sock"
//! socket_file_group_owner = "frappe"
//! allowed_uids = [1000]            # optional peer allowlist (SO_PEERCRED); see docs/server.md
//! allowed_gids = [1001]
//!
//! [redis]
//! url = "redis://:password@127.0.0.1:6379/0"   # rediss://, unix:///path?db=0 too
//! key_prefix = "rq"
//! # or, with Redis Sentinel (instead of url; docs/operations.md "Redis Sentinel"):
//! # sentinels = ["10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"]
//! # master_name = "mymaster"
//! # password = "..."   username = "..."   db = 0   tls = false   sentinel_password = "..."
//!
//! [frappe]
//! runner = "btu_hooks.runner.run_task"
//! queue_prefix = "frappe-bench:"   # "<bench_id>:" for Frappe v14+, "" for v13
//! user = "Administrator"
//!
//! [[sites]]
//! name = "site1.local"
//! host = "127.0.0.1"  port = 3306  user = "..."  password = "..."  database = "_abc"
//! # or: url = "mysql://user:password@host:3306/_abc"
//! # mode = "frappe" (default) | "plain"
//!
//! [metrics]                        # off unless listen is set; docs/operations.md
//! listen = "127.0.0.1:9464"        # GET /metrics /healthz /readyz
//! per_schedule = false             # a next-run and last-enqueue series per schedule
//!
//! [file]
//! path = "/etc/btu_scheduler/schedules.toml"
//! site = "local"      # namespace of these schedules in Redis
//! mode = "plain"      # (default) | "frappe"
//! ```
//!
//! The flat keys of the original daemon are mapped onto the same model; see `docs/daemon.md`.

mod layout;
mod model;
mod validate;

use std::path::{Path, PathBuf};

pub use crate::secret::Secret;
pub use model::{
    CONFIG_ENV, Config, ConfigError, DEFAULT_CONFIG_PATH, DEFAULT_MAX_CONNECTIONS, DaemonConfig, DbConfig, FileConfig,
    FrappeConfig, LogFormat, MetricsConfig, Mode, MysqlUrl, RedisConfig, SentinelConfig, SiteConfig,
};

/// `--config` if given, else `$BTU_CONFIG`, else [`DEFAULT_CONFIG_PATH`].
pub fn resolve_path(cli: Option<&Path>) -> PathBuf {
    if let Some(p) = cli {
        return p.to_path_buf();
    }
    match std::env::var_os(CONFIG_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_CONFIG_PATH),
    }
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::parse(&text, path)
    }

    /// Parses configuration text (once: unused keys are collected on the way); `path` is
    /// used in messages and to resolve a relative `[file] path` (relative to the
    /// configuration file's directory).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let (raw, unused_keys) = layout::read(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        validate::config(raw, unused_keys, path)
    }
}

#[cfg(test)]
mod tests;
