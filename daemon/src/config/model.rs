//! The checked configuration the rest of the daemon reads: one struct per section, with the
//! defaults and the errors a file can have.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::secret::{Secret, redacted_url};

/// Where the daemon looks when neither `--config` nor `BTU_CONFIG` is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/btu_scheduler/btu_scheduler.toml";
/// Environment variable overriding [`DEFAULT_CONFIG_PATH`] (a `--config` flag wins over it).
pub const CONFIG_ENV: &str = "BTU_CONFIG";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const DEFAULT_RUNNER: &str = "btu_hooks.runner.run_task";
/// How long a schedule named by a legacy request is followed by default (`legacy_follow_secs`).
pub const DEFAULT_LEGACY_FOLLOW_SECS: u64 = 60;
/// The longest `legacy_follow_secs` accepted.
pub const MAX_LEGACY_FOLLOW_SECS: u64 = 3600;

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
    pub metrics: MetricsConfig,
    /// `[defaults]` (or the flat `default_*` keys): the policies of schedules that do not set
    /// their own.
    pub defaults: crate::policy::Policies,
    pub mariadb: MariaDbConfig,
    /// Keys present in the file that the daemon does not use (original daemon's
    /// webserver settings and the like); reported in one warning.
    pub unused_keys: Vec<String>,
}

/// `[daemon] max_connections` when unset: the 1,000 concurrent clients benchmarked fit, and a
/// flood stays far below the open-files limit the daemon raises at start.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub rebuild_interval: Duration,
    pub missed_run_grace: Duration,
    /// How long the rows of a schedule named by a legacy request are followed (re-read until
    /// the app's transaction has committed); zero = not at all.
    pub legacy_follow: Duration,
    /// Fallback zone for cron strings (validated IANA name).
    pub time_zone: Option<String>,
    pub log_level: Option<String>,
    pub log_format: LogFormat,
    pub socket_path: PathBuf,
    pub socket_file_group_owner: Option<String>,
    /// Peer uids allowed on the socket (besides the daemon's own); empty with `allowed_gids`
    /// empty = anyone who can open the socket file.
    pub allowed_uids: Vec<u32>,
    /// Peer primary gids allowed on the socket.
    pub allowed_gids: Vec<u32>,
    /// Socket connections served at once; more are refused (closed at once).
    pub max_connections: usize,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event (the default).
    #[default]
    Text,
    /// One JSON object per line, with the same fields, for log shippers.
    Json,
}

/// `[mariadb] max_connections` when unset.
pub const DEFAULT_MARIADB_MAX_CONNECTIONS: usize = 16;

/// The connections to the sites' databases (`[mariadb]`, or the flat `mariadb_*` keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MariaDbConfig {
    /// MariaDB connections open at once, over every site together (not per site, and not the
    /// socket's `[daemon] max_connections`).
    pub max_connections: usize,
}

impl Default for MariaDbConfig {
    fn default() -> Self {
        MariaDbConfig { max_connections: DEFAULT_MARIADB_MAX_CONNECTIONS }
    }
}

/// The metrics and health listener (`[metrics]`, or the flat `metrics_*` keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Where `/metrics`, `/healthz` and `/readyz` are served; None: no listener.
    pub listen: Option<std::net::SocketAddr>,
    /// Export a next-run and a last-enqueue series per schedule.
    pub per_schedule: bool,
}

#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// May hold a password: use [`crate::secret::redacted_url`] for messages. Not used when
    /// [`RedisConfig::sentinel`] is set (say which Redis with [`RedisConfig::describe`]).
    pub url: Secret,
    /// `[redis] sentinels` + `master_name`: the master is found through Redis Sentinel.
    pub sentinel: Option<SentinelConfig>,
    /// RQ key prefix (`rq`; rq 3.0 workers may run with `RQ_KEY_PREFIX`).
    pub key_prefix: String,
    /// PEM file of the CA(s) a `rediss://` server's (or, with Sentinel and `tls`, every
    /// server's) certificate must be signed by; `None` trusts the built-in web roots.
    pub tls_ca_file: Option<PathBuf>,
    /// The file named the Redis (`[redis] url`, `sentinels` or `rq_host`/`rq_port`): a
    /// bench's `redis_queue` is then not used.
    pub url_explicit: bool,
}

impl RedisConfig {
    /// Which Redis, safe for logs: the URL without its password, or the Sentinel master name
    /// and the sentinels.
    pub fn describe(&self) -> String {
        match &self.sentinel {
            None => redacted_url(self.url.expose()),
            Some(s) => s.describe(),
        }
    }
}

/// Redis Sentinel: the sentinels to ask, the master name they monitor, and how to log in to
/// the master they name (and to the sentinels themselves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelConfig {
    /// `host:port` of each sentinel, as checked (at least one).
    pub sentinels: Vec<(String, u16)>,
    pub master_name: String,
    /// ACL user of the master (and its replicas); None: the default user.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The sentinels' own `requirepass`, when they have one.
    pub sentinel_password: Option<Secret>,
    pub db: i64,
    /// TLS to the sentinels and to the master (checked against `tls_ca_file`).
    pub tls: bool,
}

impl SentinelConfig {
    /// The sentinels as `host:port` (`[v6]:port`).
    pub fn addresses(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|(h, p)| if h.contains(':') { format!("[{h}]:{p}") } else { format!("{h}:{p}") })
            .collect()
    }

    /// `sentinel master mymaster via 10.0.0.1:26379,10.0.0.2:26379` (no password).
    pub fn describe(&self) -> String {
        let list = self.addresses();
        let tls = if self.tls { " (tls)" } else { "" };
        format!("sentinel master {} via {}{tls}", self.master_name, list.join(","))
    }
}

#[derive(Debug, Clone)]
pub struct FrappeConfig {
    /// Dotted path of the task runner that `execute_job` calls.
    pub runner: String,
    /// Prepended to every queue name: `<bench_id>:` on Frappe v14+, empty on v13.
    pub queue_prefix: String,
    /// The `user` Frappe's `execute_job` connects as.
    pub user: String,
    /// `[frappe] bench_path` / `frappe_bench_path`: sites, databases, queue Redis and bench
    /// id are discovered from this bench (`crate::bench`); explicit keys win.
    pub bench_path: Option<PathBuf>,
    /// The file set `queue_prefix`: the bench id does not replace it.
    pub queue_prefix_explicit: bool,
}

#[derive(Debug, Clone)]
pub struct SiteConfig {
    pub name: String,
    pub db: DbConfig,
    pub mode: Mode,
    /// Found in a bench (`[frappe] bench_path`), not listed in the file: served only while
    /// the BTU app is installed on it.
    pub discovered: bool,
}

#[derive(Debug, Clone)]
pub enum DbConfig {
    /// `socket`, when set, is a Unix socket path used instead of `host:port` (a Frappe site's
    /// `db_socket`).
    Params {
        host: String,
        port: u16,
        user: String,
        password: Secret,
        database: String,
        socket: Option<String>,
    },
    Url(MysqlUrl),
}

impl DbConfig {
    /// A description safe for logs: no password.
    pub fn describe(&self) -> String {
        match self {
            DbConfig::Params { host, port, user, database, socket: None, .. } => {
                format!("mysql://{user}@{host}:{port}/{database}")
            }
            DbConfig::Params { user, database, socket: Some(socket), .. } => {
                format!("mysql://{user}@localhost/{database}?socket={socket}")
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
    pub(super) fn parse(text: Secret) -> Result<MysqlUrl, String> {
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
