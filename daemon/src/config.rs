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

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use btu_protocol::DEFAULT_SOCKET_PATH;
use serde::Deserialize;

/// Where the daemon looks when neither `--config` nor `BTU_CONFIG` is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/btu_scheduler/btu_scheduler.toml";
/// Environment variable overriding [`DEFAULT_CONFIG_PATH`] (a `--config` flag wins over it).
pub const CONFIG_ENV: &str = "BTU_CONFIG";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const DEFAULT_RUNNER: &str = "btu_hooks.runner.run_task";

/// A value that must never reach a log or a `{:?}`: passwords and URLs that may carry one.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The real value, for handing to a driver. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

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
    /// May hold a password: use [`crate::rq::redacted_url`] for messages.
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
    Url(Secret),
}

impl DbConfig {
    /// A description safe for logs: no password.
    pub fn describe(&self) -> String {
        match self {
            DbConfig::Params { host, port, user, database, .. } => {
                format!("mysql://{user}@{host}:{port}/{database}")
            }
            DbConfig::Url(url) => redact_url_password(url.expose()),
        }
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

// ---- raw file layout -------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct RawFile {
    daemon: Option<RawDaemon>,
    redis: Option<RawRedis>,
    frappe: Option<RawFrappe>,
    sites: Option<Vec<RawSite>>,
    file: Option<RawFileSource>,
    // The original daemon's flat keys.
    mysql_host: Option<String>,
    mysql_port: Option<u16>,
    mysql_user: Option<String>,
    mysql_password: Option<Secret>,
    mysql_database: Option<String>,
    rq_host: Option<String>,
    rq_port: Option<u16>,
    socket_path: Option<String>,
    socket_file_group_owner: Option<String>,
    full_refresh_internal_secs: Option<u64>,
    time_zone_string: Option<String>,
    tracing_level: Option<String>,
    frappe_site: Option<String>,
    webserver_host_header: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawDaemon {
    rebuild_interval_secs: Option<u64>,
    missed_run_grace_secs: Option<u64>,
    time_zone: Option<String>,
    log_level: Option<String>,
    socket_path: Option<String>,
    socket_file_group_owner: Option<String>,
    allowed_uids: Option<Vec<u32>>,
    allowed_gids: Option<Vec<u32>>,
}

#[derive(Debug, Default, Deserialize)]
struct RawRedis {
    url: Option<Secret>,
    key_prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawFrappe {
    runner: Option<String>,
    queue_prefix: Option<String>,
    user: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawSite {
    name: Option<String>,
    url: Option<Secret>,
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<Secret>,
    database: Option<String>,
    mode: Option<Mode>,
}

#[derive(Debug, Default, Deserialize)]
struct RawFileSource {
    path: Option<String>,
    site: Option<String>,
    mode: Option<Mode>,
}

const TOP_KEYS: &[&str] = &[
    "daemon",
    "redis",
    "frappe",
    "sites",
    "file",
    "mysql_host",
    "mysql_port",
    "mysql_user",
    "mysql_password",
    "mysql_database",
    "rq_host",
    "rq_port",
    "socket_path",
    "socket_file_group_owner",
    "full_refresh_internal_secs",
    "time_zone_string",
    "tracing_level",
    "frappe_site",
    "webserver_host_header",
];
const DAEMON_KEYS: &[&str] = &[
    "rebuild_interval_secs",
    "missed_run_grace_secs",
    "time_zone",
    "log_level",
    "socket_path",
    "socket_file_group_owner",
    "allowed_uids",
    "allowed_gids",
];
const REDIS_KEYS: &[&str] = &["url", "key_prefix"];
const FRAPPE_KEYS: &[&str] = &["runner", "queue_prefix", "user"];
const SITE_KEYS: &[&str] = &["name", "url", "host", "port", "user", "password", "database", "mode"];
const FILE_KEYS: &[&str] = &["path", "site", "mode"];

/// Keys of `table` (and of its known sub-tables) that the daemon does not read, as dotted paths.
fn unused_keys(table: &toml::Table) -> Vec<String> {
    fn check(prefix: &str, value: Option<&toml::Value>, known: &[&str], out: &mut BTreeSet<String>) {
        match value {
            Some(toml::Value::Table(t)) => {
                for k in t.keys().filter(|k| !known.contains(&k.as_str())) {
                    out.insert(format!("{prefix}{k}"));
                }
            }
            Some(toml::Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    check(&format!("{}[{i}].", prefix.trim_end_matches('.')), Some(item), known, out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for k in table.keys().filter(|k| !TOP_KEYS.contains(&k.as_str())) {
        // The original daemon's webserver settings land here: jobs no longer come from Frappe's
        // web server. (`webserver_host_header` is kept as a fallback site name.)
        out.insert(k.clone());
    }
    check("daemon.", table.get("daemon"), DAEMON_KEYS, &mut out);
    check("redis.", table.get("redis"), REDIS_KEYS, &mut out);
    check("frappe.", table.get("frappe"), FRAPPE_KEYS, &mut out);
    check("sites.", table.get("sites"), SITE_KEYS, &mut out);
    check("file.", table.get("file"), FILE_KEYS, &mut out);
    out.into_iter().collect()
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

    /// Parses configuration text; `path` is used in messages and to resolve a relative
    /// `[file] path` (relative to the configuration file's directory).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let syntax = |e: toml::de::Error| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        };
        let table: toml::Table = toml::from_str(text).map_err(syntax)?;
        let unused = unused_keys(&table);
        let raw: RawFile = toml::from_str(text).map_err(syntax)?;
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: key.to_string(),
            problem,
        };

        let d = raw.daemon.unwrap_or_default();
        let rebuild_secs = d.rebuild_interval_secs.or(raw.full_refresh_internal_secs).unwrap_or(300);
        if rebuild_secs == 0 {
            let key = if d.rebuild_interval_secs.is_some() {
                "daemon.rebuild_interval_secs"
            } else {
                "full_refresh_internal_secs"
            };
            return Err(invalid(key, "must be at least 1 second".into()));
        }
        let grace_secs = d.missed_run_grace_secs.unwrap_or(300);
        let (zone_key, time_zone) = match (d.time_zone, raw.time_zone_string) {
            (Some(z), _) => ("daemon.time_zone", Some(z)),
            (None, Some(z)) => ("time_zone_string", Some(z)),
            (None, None) => ("", None),
        };
        let time_zone = time_zone.map(|z| z.trim().to_string()).filter(|z| !z.is_empty());
        if let Some(z) = &time_zone
            && z.parse::<chrono_tz::Tz>().is_err()
        {
            return Err(invalid(
                zone_key,
                format!("unknown time zone {z:?} (expected an IANA name like Europe/Paris)"),
            ));
        }
        let log_level = d.log_level.or(raw.tracing_level);
        if let Some(level) = &log_level
            && tracing_subscriber::EnvFilter::try_new(level).is_err()
        {
            return Err(invalid(
                "daemon.log_level",
                format!("{level:?} is not a log level (error, warn, info, debug, trace)"),
            ));
        }
        let daemon = DaemonConfig {
            rebuild_interval: Duration::from_secs(rebuild_secs),
            missed_run_grace: Duration::from_secs(grace_secs),
            time_zone,
            log_level,
            socket_path: PathBuf::from(
                d.socket_path.or(raw.socket_path).unwrap_or_else(|| DEFAULT_SOCKET_PATH.to_string()),
            ),
            socket_file_group_owner: d
                .socket_file_group_owner
                .or(raw.socket_file_group_owner)
                .filter(|g| !g.is_empty()),
            allowed_uids: d.allowed_uids.unwrap_or_default(),
            allowed_gids: d.allowed_gids.unwrap_or_default(),
        };

        let r = raw.redis.unwrap_or_default();
        let url = match (r.url, raw.rq_host, raw.rq_port) {
            (Some(url), _, _) => url,
            (None, None, None) => Secret::new(DEFAULT_REDIS_URL),
            (None, host, port) => {
                Secret::new(format!("redis://{}:{}", host.unwrap_or_else(|| "127.0.0.1".into()), port.unwrap_or(6379)))
            }
        };
        let scheme_ok =
            ["redis://", "rediss://", "unix://", "redis+unix://"].iter().any(|s| url.expose().starts_with(s));
        if !scheme_ok {
            return Err(invalid(
                "redis.url",
                format!("{} must start with redis://, rediss:// or unix://", redact_url_password(url.expose())),
            ));
        }
        let key_prefix = r.key_prefix.unwrap_or_else(|| "rq".into());
        if key_prefix.is_empty() || key_prefix.contains(char::is_whitespace) {
            return Err(invalid("redis.key_prefix", "must be a non-empty word like \"rq\"".into()));
        }
        let redis = RedisConfig { url, key_prefix };

        let f = raw.frappe.unwrap_or_default();
        let frappe = FrappeConfig {
            runner: f.runner.unwrap_or_else(|| DEFAULT_RUNNER.into()),
            queue_prefix: f.queue_prefix.unwrap_or_default(),
            user: f.user.unwrap_or_else(|| "Administrator".into()),
        };
        if !is_dotted_path(&frappe.runner) {
            return Err(invalid(
                "frappe.runner",
                format!("{:?} is not a dotted Python path like module.function", frappe.runner),
            ));
        }

        let mut sites = Vec::new();
        for (i, s) in raw.sites.unwrap_or_default().into_iter().enumerate() {
            let key = |k: &str| format!("sites[{i}].{k}");
            let name = s.name.filter(|n| !n.trim().is_empty()).ok_or_else(|| {
                invalid(&key("name"), "every [[sites]] entry needs a name (the Frappe site, e.g. site1.local)".into())
            })?;
            let db = match (s.url, s.database) {
                (Some(url), None) => {
                    if !url.expose().starts_with("mysql://") {
                        return Err(invalid(&key("url"), "must start with mysql://".into()));
                    }
                    DbConfig::Url(url)
                }
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        &key("url"),
                        "give either url or host/port/user/password/database, not both".into(),
                    ));
                }
                (None, Some(database)) => DbConfig::Params {
                    host: s.host.unwrap_or_else(|| "127.0.0.1".into()),
                    port: s.port.unwrap_or(3306),
                    user: s.user.unwrap_or_else(|| "root".into()),
                    password: s.password.unwrap_or_default(),
                    database,
                },
                (None, None) => {
                    return Err(invalid(
                        &key("database"),
                        format!("site {name}: needs a database (or a mysql:// url)"),
                    ));
                }
            };
            if sites.iter().any(|x: &SiteConfig| x.name == name) {
                return Err(invalid(&key("name"), format!("site {name} is listed twice")));
            }
            sites.push(SiteConfig { name, db, mode: s.mode.unwrap_or(Mode::Frappe) });
        }
        if let Some(database) = raw.mysql_database {
            let name =
                raw.frappe_site.or(raw.webserver_host_header).filter(|n| !n.trim().is_empty()).ok_or_else(|| {
                    invalid(
                        "frappe_site",
                        "required with mysql_database: the Frappe site name, e.g. site1.local".into(),
                    )
                })?;
            if sites.iter().any(|x| x.name == name) {
                return Err(invalid("frappe_site", format!("site {name} is also listed in [[sites]]")));
            }
            sites.push(SiteConfig {
                name,
                db: DbConfig::Params {
                    host: raw.mysql_host.unwrap_or_else(|| "127.0.0.1".into()),
                    port: raw.mysql_port.unwrap_or(3306),
                    user: raw.mysql_user.unwrap_or_else(|| "root".into()),
                    password: raw.mysql_password.unwrap_or_default(),
                    database,
                },
                mode: Mode::Frappe,
            });
        }

        let file = match raw.file {
            None => None,
            Some(fs) => {
                let p = fs.path.filter(|p| !p.is_empty()).ok_or_else(|| {
                    invalid("file.path", "the [file] source needs the path of a schedules file".into())
                })?;
                let mut p = PathBuf::from(p);
                if p.is_relative()
                    && let Some(dir) = path.parent()
                {
                    p = dir.join(p);
                }
                let site = fs.site.unwrap_or_else(|| "local".into());
                if sites.iter().any(|x| x.name == site) {
                    return Err(invalid(
                        "file.site",
                        format!("site {site} is already a MariaDB site; give the file its own site name"),
                    ));
                }
                Some(FileConfig { path: p, site, mode: fs.mode.unwrap_or(Mode::Plain) })
            }
        };
        for site in sites.iter().map(|s| &s.name).chain(file.iter().map(|f| &f.site)) {
            if site.is_empty() || site.contains(char::is_whitespace) || site.contains(':') {
                return Err(invalid(
                    "sites.name",
                    format!("site name {site:?} must not be empty or contain spaces or ':'"),
                ));
            }
        }
        if sites.is_empty() && file.is_none() {
            return Err(invalid(
                "sites",
                "no source of schedules: add [[sites]] (MariaDB), the flat mysql_* keys, or a [file] section".into(),
            ));
        }

        Ok(Config { path: path.to_path_buf(), daemon, redis, frappe, sites, file, unused_keys: unused })
    }
}

fn is_dotted_path(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            matches!(chars.next(), Some(c) if c == '_' || c.is_alphabetic())
                && chars.all(|c| c == '_' || c.is_alphanumeric())
        })
}

/// `scheme://user:password@host` → `scheme://user:***@host` (no-op without a password).
pub fn redact_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.to_string() };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else { return url.to_string() };
    let userinfo = &authority[..at];
    let redacted = match userinfo.find(':') {
        Some(colon) => format!("{}:***", &userinfo[..colon]),
        None => userinfo.to_string(),
    };
    format!("{}{}{}", &url[..scheme_end + 3], redacted, &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/btu/test.toml"))
    }

    #[test]
    fn structured_file_with_defaults() {
        let c = parse(
            r#"
            [redis]
            url = "redis://:s3cret@localhost:6380/2"
            [[sites]]
            name = "site1.local"
            database = "_abc"
            password = "hunter2"
            "#,
        )
        .unwrap();
        assert_eq!(c.daemon.rebuild_interval, Duration::from_secs(300));
        assert_eq!(c.daemon.missed_run_grace, Duration::from_secs(300));
        assert_eq!(c.daemon.socket_path, PathBuf::from(DEFAULT_SOCKET_PATH));
        assert_eq!(c.redis.key_prefix, "rq");
        assert_eq!(c.frappe.runner, DEFAULT_RUNNER);
        assert_eq!(c.frappe.user, "Administrator");
        assert_eq!(c.sites.len(), 1);
        assert_eq!(c.sites[0].mode, Mode::Frappe);
        assert!(c.unused_keys.is_empty());
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2") && !dbg.contains("s3cret"), "{dbg}");
    }

    #[test]
    fn original_flat_file_works_and_reports_unused_keys() {
        let c = parse(
            r#"
            name = "BTU Scheduler Daemon"
            environment_name = "LIVE"
            full_refresh_internal_secs = 900
            scheduler_polling_interval = 60
            time_zone_string = "America/Los_Angeles"
            tracing_level = "INFO"
            rq_host = "10.0.0.5"
            rq_port = 11000
            mysql_user = "root"
            mysql_password = "password123"
            mysql_host = "127.0.0.1"
            mysql_port = 3306
            mysql_database = "_c8a4cb6d9e07f12a"
            socket_path = "/tmp/btu_scheduler.sock"
            socket_file_group_owner = "frappe_group"
            webserver_ip = "127.0.0.1"
            webserver_port = 8000
            webserver_token = "token abc:def"
            webserver_host_header = "mysite.local"
            "#,
        )
        .unwrap();
        assert_eq!(c.daemon.rebuild_interval, Duration::from_secs(900));
        assert_eq!(c.daemon.time_zone.as_deref(), Some("America/Los_Angeles"));
        assert_eq!(c.redis.url.expose(), "redis://10.0.0.5:11000");
        assert_eq!(c.sites[0].name, "mysite.local");
        assert_eq!(c.daemon.socket_file_group_owner.as_deref(), Some("frappe_group"));
        assert_eq!(
            c.unused_keys,
            vec![
                "environment_name",
                "name",
                "scheduler_polling_interval",
                "webserver_ip",
                "webserver_port",
                "webserver_token"
            ]
        );
        assert!(!format!("{c:?}").contains("password123"));
    }

    #[test]
    fn frappe_site_wins_over_host_header() {
        let c =
            parse("mysql_database = \"_x\"\nfrappe_site = \"a.local\"\nwebserver_host_header = \"b.local\"").unwrap();
        assert_eq!(c.sites[0].name, "a.local");
    }

    #[test]
    fn errors_name_file_key_and_problem() {
        let e = parse("[daemon]\ntime_zone = \"Mars/Olympus\"\n[file]\npath = \"s.toml\"").unwrap_err().to_string();
        assert!(
            e.contains("/etc/btu/test.toml") && e.contains("daemon.time_zone") && e.contains("Mars/Olympus"),
            "{e}"
        );
        let e = parse("[daemon]\nrebuild_interval_secs = \"often\"").unwrap_err().to_string();
        assert!(e.contains("rebuild_interval_secs"), "{e}");
        let e = parse("mysql_database = \"_x\"").unwrap_err().to_string();
        assert!(e.contains("frappe_site"), "{e}");
        let e = parse("").unwrap_err().to_string();
        assert!(e.contains("no source of schedules"), "{e}");
        let e = parse("[redis]\nurl = \"http://x\"\n[file]\npath = \"s.toml\"").unwrap_err().to_string();
        assert!(e.contains("redis.url"), "{e}");
    }

    #[test]
    fn unused_nested_keys_are_named() {
        let c = parse("[file]\npath = \"s.toml\"\ncolour = \"red\"\n[daemon]\nfoo = 1").unwrap();
        assert_eq!(c.unused_keys, vec!["daemon.foo", "file.colour"]);
        assert_eq!(c.file.unwrap().path, PathBuf::from("/etc/btu/s.toml"));
    }

    #[test]
    fn redaction() {
        assert_eq!(redact_url_password("redis://:pw@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(redact_url_password("mysql://u:pw@h/db"), "mysql://u:***@h/db");
        assert_eq!(redact_url_password("redis://h:1"), "redis://h:1");
        assert_eq!(redact_url_password("unix:///tmp/r.sock"), "unix:///tmp/r.sock");
    }
}
