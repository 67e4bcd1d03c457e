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
//! socket_path = "/tmp/btu_scheduler.sock"
//! socket_file_group_owner = "frappe"
//! allowed_uids = [1000]            # optional peer allowlist (SO_PEERCRED); see docs/server.md
//! allowed_gids = [1001]
//!
//! [redis]
//! url = "redis://:password@127.0.0.1:6379/0"   # rediss://, unix:///path?db=0 too
//! key_prefix = "rq"
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
//! [file]
//! path = "/etc/btu_scheduler/schedules.toml"
//! site = "local"      # namespace of these schedules in Redis
//! mode = "plain"      # (default) | "frappe"
//! ```
//!
//! The flat keys of the original daemon are mapped onto the same model; see `docs/daemon.md`.

mod layout;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use crate::secret::Secret;
use crate::secret::redacted_url;

/// Where the daemon looks when neither `--config` nor `BTU_CONFIG` is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/btu_scheduler/btu_scheduler.toml";
/// Environment variable overriding [`DEFAULT_CONFIG_PATH`] (a `--config` flag wins over it).
pub const CONFIG_ENV: &str = "BTU_CONFIG";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const DEFAULT_RUNNER: &str = "btu_hooks.runner.run_task";

/// What a fired run calls: Frappe's `execute_job` wrapping the task runner, or the schedule's
/// own function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Frappe,
    Plain,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Frappe => "frappe",
            Mode::Plain => "plain",
        })
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from (for messages).
    pub path: PathBuf,
    pub daemon: DaemonConfig,
    pub redis: RedisConfig,
    pub frappe: FrappeConfig,
    pub sites: Vec<SiteConfig>,
    pub file: Option<FileConfig>,
    /// Keys present in the file that the daemon does not use (original daemon's
    /// webserver settings and the like); reported in one warning.
    pub unused_keys: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub rebuild_interval: Duration,
    pub missed_run_grace: Duration,
    /// Fallback zone for cron strings (validated IANA name).
    pub time_zone: Option<String>,
    pub log_level: Option<String>,
    pub socket_path: PathBuf,
    pub socket_file_group_owner: Option<String>,
    /// Peer uids allowed on the socket (besides the daemon's own); empty with `allowed_gids`
    /// empty = anyone who can open the socket file.
    pub allowed_uids: Vec<u32>,
    /// Peer primary gids allowed on the socket.
    pub allowed_gids: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// May hold a password: use [`crate::secret::redacted_url`] for messages.
    pub url: Secret,
    /// RQ key prefix (`rq`; rq 3.0 workers may run with `RQ_KEY_PREFIX`).
    pub key_prefix: String,
}

#[derive(Debug, Clone)]
pub struct FrappeConfig {
    /// Dotted path of the task runner that `execute_job` calls.
    pub runner: String,
    /// Prepended to every queue name: `<bench_id>:` on Frappe v14+, empty on v13.
    pub queue_prefix: String,
    /// The `user` Frappe's `execute_job` connects as.
    pub user: String,
}

#[derive(Debug, Clone)]
pub struct SiteConfig {
    pub name: String,
    pub db: DbConfig,
    pub mode: Mode,
}

#[derive(Debug, Clone)]
pub enum DbConfig {
    Params { host: String, port: u16, user: String, password: Secret, database: String },
    Url(MysqlUrl),
}

impl DbConfig {
    /// A description safe for logs: no password.
    pub fn describe(&self) -> String {
        match self {
            DbConfig::Params { host, port, user, database, .. } => {
                format!("mysql://{user}@{host}:{port}/{database}")
            }
            DbConfig::Url(url) => redacted_url(url.text.expose()),
        }
    }
}

/// A `mysql://` URL, parsed by the MariaDB driver when the configuration is read, so a
/// malformed one stops the daemon at start-up instead of failing every load.
#[derive(Clone)]
pub struct MysqlUrl {
    text: Secret,
    opts: mysql_async::Opts,
}

impl MysqlUrl {
    /// Checks the URL; the error says what is wrong without repeating the URL.
    fn parse(text: Secret) -> Result<MysqlUrl, String> {
        if !text.expose().starts_with("mysql://") {
            return Err("must start with mysql://".into());
        }
        match mysql_async::Opts::from_url(text.expose()) {
            Ok(opts) => Ok(MysqlUrl { text, opts }),
            Err(e) => Err(format!("not a valid MySQL URL: {e}")),
        }
    }

    /// The driver's connection options (they hold the password: never log them).
    pub fn opts(&self) -> &mysql_async::Opts {
        &self.opts
    }
}

impl fmt::Debug for MysqlUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MysqlUrl").field(&redacted_url(self.text.expose())).finish()
    }
}

#[derive(Debug, Clone)]
pub struct FileConfig {
    pub path: PathBuf,
    pub site: String,
    pub mode: Mode,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the configuration file: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: key `{key}`: {problem}")]
    Invalid { path: PathBuf, key: String, problem: String },
}

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
