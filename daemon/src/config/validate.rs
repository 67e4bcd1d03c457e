//! From the file's layout to a checked [`Config`]: defaults, the original daemon's flat keys as
//! fallbacks for the structured ones, and every check that can be made without connecting.
//! Errors name the key as the file spells it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use btu_protocol::DEFAULT_SOCKET_PATH;

use super::layout::{
    RawDaemon, RawDefaults, RawFile, RawFileSource, RawFrappe, RawMariaDb, RawMetrics, RawRedis, RawSite,
};
use super::model::{
    Config, ConfigError, DEFAULT_LEGACY_FOLLOW_SECS, DEFAULT_MARIADB_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_REDIS_URL, DEFAULT_RUNNER, DaemonConfig, DbConfig, FileConfig, FrappeConfig, MAX_LEGACY_FOLLOW_SECS,
    MariaDbConfig, MetricsConfig, Mode, MysqlUrl, RedisConfig, SentinelConfig, SiteConfig,
};
use crate::policy::{Policies, PolicyTexts};
use crate::secret::{Secret, redacted_url};

/// Checks one configuration file's values; `path` names the file in errors and anchors a
/// relative `[file] path`.
pub(super) fn config(mut raw: RawFile, unused_keys: Vec<String>, path: &Path) -> Result<Config, ConfigError> {
    let v = Validator { path };
    let daemon = v.daemon(raw.daemon.take().unwrap_or_default(), &raw)?;
    let redis = v.redis(raw.redis.take().unwrap_or_default(), &raw)?;
    let frappe = v.frappe(raw.frappe.take().unwrap_or_default(), raw.frappe_bench_path.take())?;
    let metrics = v.metrics(raw.metrics.take().unwrap_or_default(), &raw)?;
    let defaults = v.defaults(raw.defaults.take(), &mut raw)?;
    let mariadb = v.mariadb(raw.mariadb.take().unwrap_or_default(), &raw)?;
    let mut sites = v.sites(raw.sites.take().unwrap_or_default())?;
    let file = raw.file.take();
    if let Some(site) = v.flat_site(raw)? {
        if sites.iter().any(|x| x.name == site.name) {
            return Err(v.invalid("frappe_site", format!("site {} is also listed in [[sites]]", site.name)));
        }
        sites.push(site);
    }
    let file = file.map(|f| v.file_source(f, &sites)).transpose()?;
    for site in sites.iter().map(|s| &s.name).chain(file.iter().map(|f| &f.site)) {
        if site.is_empty() || site.contains(char::is_whitespace) || site.contains(':') {
            return Err(
                v.invalid("sites.name", format!("site name {site:?} must not be empty or contain spaces or ':'"))
            );
        }
    }
    if sites.is_empty() && file.is_none() && frappe.bench_path.is_none() {
        return Err(v.invalid(
            "sites",
            "no source of schedules: add [frappe] bench_path, [[sites]] (MariaDB), the flat mysql_* keys, or a [file] section".into(),
        ));
    }
    Ok(Config { path: path.to_path_buf(), daemon, redis, frappe, sites, file, metrics, mariadb, defaults, unused_keys })
}

struct Validator<'a> {
    path: &'a Path,
}

impl Validator<'_> {
    fn invalid(&self, key: &str, problem: String) -> ConfigError {
        ConfigError::Invalid { path: self.path.to_path_buf(), key: key.to_string(), problem }
    }

    fn daemon(&self, d: RawDaemon, flat: &RawFile) -> Result<DaemonConfig, ConfigError> {
        let rebuild_secs = d.rebuild_interval_secs.or(flat.full_refresh_internal_secs).unwrap_or(300);
        if rebuild_secs == 0 {
            let key = if d.rebuild_interval_secs.is_some() {
                "daemon.rebuild_interval_secs"
            } else {
                "full_refresh_internal_secs"
            };
            return Err(self.invalid(key, "must be at least 1 second".into()));
        }
        let follow_secs = d.legacy_follow_secs.or(flat.legacy_follow_secs).unwrap_or(DEFAULT_LEGACY_FOLLOW_SECS);
        if follow_secs > MAX_LEGACY_FOLLOW_SECS {
            let key = if d.legacy_follow_secs.is_some() { "daemon.legacy_follow_secs" } else { "legacy_follow_secs" };
            return Err(
                self.invalid(key, format!("must be at most {MAX_LEGACY_FOLLOW_SECS} seconds (0 = do not follow)"))
            );
        }
        let (zone_key, time_zone) = match (d.time_zone, flat.time_zone_string.clone()) {
            (Some(z), _) => ("daemon.time_zone", Some(z)),
            (None, Some(z)) => ("time_zone_string", Some(z)),
            (None, None) => ("", None),
        };
        let time_zone = time_zone.map(|z| z.trim().to_string()).filter(|z| !z.is_empty());
        if let Some(z) = &time_zone
            && z.parse::<chrono_tz::Tz>().is_err()
        {
            return Err(
                self.invalid(zone_key, format!("unknown time zone {z:?} (expected an IANA name like Europe/Paris)"))
            );
        }
        let (level_key, log_level) = match (d.log_level, flat.tracing_level.clone()) {
            (Some(l), _) => ("daemon.log_level", Some(l)),
            (None, l) => ("tracing_level", l),
        };
        if let Some(level) = &log_level
            && tracing_subscriber::EnvFilter::try_new(level).is_err()
        {
            return Err(
                self.invalid(level_key, format!("{level:?} is not a log level (error, warn, info, debug, trace)"))
            );
        }
        Ok(DaemonConfig {
            rebuild_interval: Duration::from_secs(rebuild_secs),
            missed_run_grace: Duration::from_secs(d.missed_run_grace_secs.unwrap_or(300)),
            legacy_follow: Duration::from_secs(follow_secs),
            time_zone,
            log_level,
            log_format: d.log_format.or(flat.log_format).unwrap_or_default(),
            socket_path: PathBuf::from(
                d.socket_path.or(flat.socket_path.clone()).unwrap_or_else(|| DEFAULT_SOCKET_PATH.to_string()),
            ),
            socket_file_group_owner: d
                .socket_file_group_owner
                .or(flat.socket_file_group_owner.clone())
                .filter(|g| !g.is_empty()),
            allowed_uids: d.allowed_uids.unwrap_or_default(),
            allowed_gids: d.allowed_gids.unwrap_or_default(),
            max_connections: match d.max_connections {
                None => DEFAULT_MAX_CONNECTIONS,
                Some(0) => return Err(self.invalid("daemon.max_connections", "must be at least 1".into())),
                Some(n) => n,
            },
        })
    }

    /// `[defaults]` over the flat `default_*` keys (the table wins, key by key).
    fn defaults(&self, d: Option<RawDefaults>, flat: &mut RawFile) -> Result<Policies, ConfigError> {
        let flat = PolicyTexts {
            overlap: flat.default_overlap.take(),
            catchup: flat.default_catchup.take(),
            jitter_secs: flat.default_jitter_secs.take(),
            dst_gap: flat.default_dst_gap.take(),
            dst_overlap: flat.default_dst_overlap.take(),
        };
        let base =
            flat.apply(Policies::default()).map_err(|e| self.invalid(&format!("default_{}", e.key), e.problem))?;
        let d = d.unwrap_or_default();
        let table = PolicyTexts {
            overlap: d.overlap,
            catchup: d.catchup,
            jitter_secs: d.jitter_secs,
            dst_gap: d.dst_gap,
            dst_overlap: d.dst_overlap,
        };
        table.apply(base).map_err(|e| self.invalid(&format!("defaults.{}", e.key), e.problem))
    }

    fn metrics(&self, m: RawMetrics, flat: &RawFile) -> Result<MetricsConfig, ConfigError> {
        let (key, listen) = match (m.listen, flat.metrics_listen.clone()) {
            (Some(l), _) => ("metrics.listen", Some(l)),
            (None, l) => ("metrics_listen", l),
        };
        let listen = match listen.map(|l| l.trim().to_string()).filter(|l| !l.is_empty()) {
            None => None,
            Some(l) => Some(
                l.parse::<std::net::SocketAddr>()
                    .map_err(|e| self.invalid(key, format!("{l:?} is not an address like 127.0.0.1:9464 ({e})")))?,
            ),
        };
        Ok(MetricsConfig { listen, per_schedule: m.per_schedule.or(flat.metrics_per_schedule).unwrap_or(false) })
    }

    fn mariadb(&self, m: RawMariaDb, flat: &RawFile) -> Result<MariaDbConfig, ConfigError> {
        let (key, max) = match (m.max_connections, flat.mariadb_max_connections) {
            (Some(n), _) => ("mariadb.max_connections", Some(n)),
            (None, n) => ("mariadb_max_connections", n),
        };
        Ok(MariaDbConfig {
            max_connections: match max {
                None => DEFAULT_MARIADB_MAX_CONNECTIONS,
                Some(0) => {
                    return Err(self.invalid(key, "must be at least 1 (MariaDB connections over all sites)".into()));
                }
                Some(n) => n,
            },
        })
    }

    fn redis(&self, mut r: RawRedis, flat: &RawFile) -> Result<RedisConfig, ConfigError> {
        let sentinel = self.sentinel(&mut r, flat)?;
        let url_given = r.url.is_some() || flat.rq_host.is_some() || flat.rq_port.is_some();
        if sentinel.is_some() && url_given {
            let key = if r.url.is_some() { "redis.url" } else { "rq_host" };
            return Err(self.invalid(
                key,
                "give either a Redis url (or rq_host/rq_port) or sentinels + master_name, not both".into(),
            ));
        }
        let url_explicit = url_given || sentinel.is_some();
        let url = match (r.url, &flat.rq_host, flat.rq_port) {
            (Some(url), _, _) => url,
            (None, None, None) => Secret::new(DEFAULT_REDIS_URL),
            (None, host, port) => {
                Secret::new(format!("redis://{}:{}", host.as_deref().unwrap_or("127.0.0.1"), port.unwrap_or(6379)))
            }
        };
        let scheme_ok =
            ["redis://", "rediss://", "unix://", "redis+unix://"].iter().any(|s| url.expose().starts_with(s));
        if !scheme_ok {
            return Err(self.invalid(
                "redis.url",
                format!("{} must start with redis://, rediss:// or unix://", redacted_url(url.expose())),
            ));
        }
        let key_prefix = r.key_prefix.unwrap_or_else(|| "rq".into());
        if key_prefix.is_empty() || key_prefix.contains(char::is_whitespace) {
            return Err(self.invalid("redis.key_prefix", "must be a non-empty word like \"rq\"".into()));
        }
        let tls = match &sentinel {
            Some(s) => s.tls,
            None => url.expose().starts_with("rediss://"),
        };
        let tls_ca_file = match r.tls_ca_file.filter(|p| !p.is_empty()) {
            None => None,
            Some(p) => {
                if !tls {
                    return Err(self.invalid(
                        "redis.tls_ca_file",
                        "is only used with a rediss:// (TLS) url, or with sentinels and tls = true".into(),
                    ));
                }
                let p = self.relative_to_file(PathBuf::from(p));
                if let Err(e) = std::fs::metadata(&p) {
                    return Err(self.invalid("redis.tls_ca_file", format!("{}: {e}", p.display())));
                }
                Some(p)
            }
        };
        Ok(RedisConfig { url, sentinel, key_prefix, tls_ca_file, url_explicit })
    }

    /// `[redis] sentinels` + `master_name` (or their flat twins) and the keys only they use;
    /// takes those keys out of `r`.
    fn sentinel(&self, r: &mut RawRedis, flat: &RawFile) -> Result<Option<SentinelConfig>, ConfigError> {
        let structured = r.sentinels.is_some() || r.master_name.is_some();
        let k = |key: &'static str, flat_key: &'static str| if structured { key } else { flat_key };
        let pw_key = if r.password.is_some() { "redis.password" } else { "rq_password" };
        let db_key = if r.db.is_some() { "redis.db" } else { "rq_db" };
        let sentinels = r.sentinels.take().or_else(|| flat.rq_sentinels.clone());
        let master_name = r.master_name.take().or_else(|| flat.rq_master_name.clone());
        let password = r.password.take().or_else(|| flat.rq_password.clone());
        let db = r.db.take().or(flat.rq_db);
        let (username, sentinel_password, tls) = (r.username.take(), r.sentinel_password.take(), r.tls.take());
        let Some(list) = sentinels else {
            if master_name.is_some() {
                let key = k("redis.master_name", "rq_master_name");
                return Err(self.invalid(key, "needs sentinels = [\"host:port\", ...] to find the master".into()));
            }
            let only_sentinel = [
                ("redis.username", username.is_some()),
                (pw_key, password.is_some()),
                (db_key, db.is_some()),
                ("redis.sentinel_password", sentinel_password.is_some()),
                ("redis.tls", tls.is_some()),
            ];
            if let Some((key, _)) = only_sentinel.iter().find(|(_, set)| *set) {
                return Err(self.invalid(
                    key,
                    "is only used with sentinels (with a url, give the password, db or TLS in the URL: \
                     redis://user:password@host:port/db, rediss://…)"
                        .into(),
                ));
            }
            return Ok(None);
        };
        let list_key = k("redis.sentinels", "rq_sentinels");
        if list.is_empty() {
            return Err(self.invalid(list_key, "needs at least one \"host:port\" (three sentinels are usual)".into()));
        }
        let mut parsed = Vec::with_capacity(list.len());
        for entry in &list {
            parsed.push(host_port(entry).ok_or_else(|| {
                self.invalid(list_key, format!("{entry:?} is not host:port (e.g. \"10.0.0.1:26379\")"))
            })?);
        }
        let master_name = master_name.map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).ok_or_else(|| {
            self.invalid(
                k("redis.master_name", "rq_master_name"),
                "required with sentinels: the name the sentinels monitor (sentinel monitor <name> …), e.g. mymaster"
                    .into(),
            )
        })?;
        let db = db.unwrap_or(0);
        if db < 0 {
            return Err(self.invalid(db_key, "must be 0 or more".into()));
        }
        Ok(Some(SentinelConfig {
            sentinels: parsed,
            master_name,
            username: username.filter(|u| !u.is_empty()),
            password: password.filter(|p| !p.expose().is_empty()),
            sentinel_password: sentinel_password.filter(|p| !p.expose().is_empty()),
            db,
            tls: tls.unwrap_or(false),
        }))
    }

    fn frappe(&self, f: RawFrappe, flat_bench_path: Option<String>) -> Result<FrappeConfig, ConfigError> {
        let (bench_key, bench_path) = match (f.bench_path, flat_bench_path) {
            (Some(p), _) => ("frappe.bench_path", Some(p)),
            (None, p) => ("frappe_bench_path", p),
        };
        let bench_path = match bench_path {
            None => None,
            Some(p) if p.trim().is_empty() => {
                return Err(
                    self.invalid(bench_key, "must be the path of a bench, e.g. /home/frappe/frappe-bench".into())
                );
            }
            Some(p) => Some(self.relative_to_file(PathBuf::from(p))),
        };
        let frappe = FrappeConfig {
            runner: f.runner.unwrap_or_else(|| DEFAULT_RUNNER.into()),
            queue_prefix_explicit: f.queue_prefix.is_some(),
            queue_prefix: f.queue_prefix.unwrap_or_default(),
            user: f.user.unwrap_or_else(|| "Administrator".into()),
            bench_path,
        };
        if !is_dotted_path(&frappe.runner) {
            return Err(self.invalid(
                "frappe.runner",
                format!("{:?} is not a dotted Python path like module.function", frappe.runner),
            ));
        }
        Ok(frappe)
    }

    /// The `[[sites]]` entries.
    fn sites(&self, raw: Vec<RawSite>) -> Result<Vec<SiteConfig>, ConfigError> {
        let mut sites: Vec<SiteConfig> = Vec::new();
        for (i, s) in raw.into_iter().enumerate() {
            let key = |k: &str| format!("sites[{i}].{k}");
            let name = s.name.filter(|n| !n.trim().is_empty()).ok_or_else(|| {
                self.invalid(
                    &key("name"),
                    "every [[sites]] entry needs a name (the Frappe site, e.g. site1.local)".into(),
                )
            })?;
            let db = match (s.url, s.database) {
                (Some(url), None) => {
                    DbConfig::Url(MysqlUrl::parse(url).map_err(|problem| self.invalid(&key("url"), problem))?)
                }
                (Some(_), Some(_)) => {
                    return Err(self
                        .invalid(&key("url"), "give either url or host/port/user/password/database, not both".into()));
                }
                (None, Some(database)) => DbConfig::Params {
                    host: s.host.unwrap_or_else(|| "127.0.0.1".into()),
                    port: s.port.unwrap_or(3306),
                    user: s.user.unwrap_or_else(|| "root".into()),
                    password: s.password.unwrap_or_default(),
                    database,
                    socket: None,
                },
                (None, None) => {
                    return Err(
                        self.invalid(&key("database"), format!("site {name}: needs a database (or a mysql:// url)"))
                    );
                }
            };
            if sites.iter().any(|x| x.name == name) {
                return Err(self.invalid(&key("name"), format!("site {name} is listed twice")));
            }
            sites.push(SiteConfig { name, db, mode: s.mode.unwrap_or(Mode::Frappe), discovered: false });
        }
        Ok(sites)
    }

    /// The site of the original daemon's flat `mysql_*` keys, if they name a database.
    fn flat_site(&self, flat: RawFile) -> Result<Option<SiteConfig>, ConfigError> {
        let Some(database) = flat.mysql_database else { return Ok(None) };
        let name =
            flat.frappe_site.or(flat.webserver_host_header).filter(|n| !n.trim().is_empty()).ok_or_else(|| {
                self.invalid(
                    "frappe_site",
                    "required with mysql_database: the Frappe site name, e.g. site1.local".into(),
                )
            })?;
        Ok(Some(SiteConfig {
            name,
            db: DbConfig::Params {
                host: flat.mysql_host.unwrap_or_else(|| "127.0.0.1".into()),
                port: flat.mysql_port.unwrap_or(3306),
                user: flat.mysql_user.unwrap_or_else(|| "root".into()),
                password: flat.mysql_password.unwrap_or_default(),
                database,
                socket: None,
            },
            mode: Mode::Frappe,
            discovered: false,
        }))
    }

    /// A relative path is relative to the configuration file's directory.
    fn relative_to_file(&self, p: PathBuf) -> PathBuf {
        match self.path.parent() {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p,
        }
    }

    /// The `[file]` source; its site must not also be a MariaDB site.
    fn file_source(&self, f: RawFileSource, sites: &[SiteConfig]) -> Result<FileConfig, ConfigError> {
        let p = f
            .path
            .filter(|p| !p.is_empty())
            .ok_or_else(|| self.invalid("file.path", "the [file] source needs the path of a schedules file".into()))?;
        let p = self.relative_to_file(PathBuf::from(p));
        let site = f.site.unwrap_or_else(|| "local".into());
        if sites.iter().any(|x| x.name == site) {
            return Err(self.invalid(
                "file.site",
                format!("site {site} is already a MariaDB site; give the file its own site name"),
            ));
        }
        Ok(FileConfig { path: p, site, mode: f.mode.unwrap_or(Mode::Plain) })
    }
}

/// `host:port` (`[v6]:port` too) with a port from 1 to 65535.
fn host_port(entry: &str) -> Option<(String, u16)> {
    let (host, port) = entry.trim().rsplit_once(':')?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    (!host.is_empty() && !host.contains(char::is_whitespace)).then(|| (host.to_string(), port))
}

fn is_dotted_path(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            matches!(chars.next(), Some(c) if c == '_' || c.is_alphabetic())
                && chars.all(|c| c == '_' || c.is_alphanumeric())
        })
}
