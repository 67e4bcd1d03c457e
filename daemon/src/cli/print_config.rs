//! `btu print-config [--config PATH] [--json]`: the configuration the daemon would run with —
//! defaults filled in, the original flat keys mapped — with every password redacted (the one
//! redaction, [`crate::secret::redacted_url`]). Text is TOML in the structured format.

use std::path::PathBuf;

use serde::Serialize;

use super::error::CliError;
use crate::config::{self, Config, DbConfig};
use crate::secret::redacted_url;

#[derive(clap::Args, Debug, Clone)]
pub struct PrintConfigArgs {
    /// Configuration file [env: BTU_CONFIG] [default: /etc/btu_scheduler/btu_scheduler.toml]
    #[arg(long, short = 'c', value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print JSON instead of TOML.
    #[arg(long)]
    pub json: bool,
}

/// The effective configuration, as printed.
#[derive(Debug, Serialize)]
pub struct Effective {
    pub path: String,
    pub daemon: EffectiveDaemon,
    pub redis: EffectiveRedis,
    pub frappe: EffectiveFrappe,
    pub sites: Vec<EffectiveSite>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<EffectiveFile>,
    /// Keys of the file the daemon does not use.
    pub unused_keys: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct EffectiveDaemon {
    pub rebuild_interval_secs: u64,
    pub missed_run_grace_secs: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    pub socket_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_file_group_owner: Option<String>,
    pub allowed_uids: Vec<u32>,
    pub allowed_gids: Vec<u32>,
    pub max_connections: usize,
}

#[derive(Debug, Serialize)]
pub struct EffectiveRedis {
    /// Password shown as `***`; absent with Sentinel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub key_prefix: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<String>,
    /// Sentinel's keys, beside the others as in the file.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub sentinel: Option<EffectiveSentinel>,
}

/// `[redis] sentinels` and the keys that go with them (passwords as whether they are set).
#[derive(Debug, Serialize)]
pub struct EffectiveSentinel {
    pub sentinels: Vec<String>,
    pub master_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub password_set: bool,
    pub sentinel_password_set: bool,
    pub db: i64,
    pub tls: bool,
}

#[derive(Debug, Serialize)]
pub struct EffectiveFrappe {
    pub runner: String,
    pub queue_prefix: String,
    pub user: String,
}

#[derive(Debug, Serialize)]
pub struct EffectiveSite {
    pub name: String,
    pub mode: String,
    /// `mysql://user@host:port/db` (a URL's password as `***`; separate keys' password is
    /// never shown).
    pub database: String,
    /// Whether a password is set (its value is never printed).
    pub password_set: bool,
}

#[derive(Debug, Serialize)]
pub struct EffectiveFile {
    pub path: String,
    pub site: String,
    pub mode: String,
}

/// What `config` says, redacted.
pub fn effective(config: &Config) -> Effective {
    let d = &config.daemon;
    Effective {
        path: config.path.display().to_string(),
        daemon: EffectiveDaemon {
            rebuild_interval_secs: d.rebuild_interval.as_secs(),
            missed_run_grace_secs: d.missed_run_grace.as_secs(),
            time_zone: d.time_zone.clone(),
            log_level: d.log_level.clone(),
            socket_path: d.socket_path.display().to_string(),
            socket_file_group_owner: d.socket_file_group_owner.clone(),
            allowed_uids: d.allowed_uids.clone(),
            allowed_gids: d.allowed_gids.clone(),
            max_connections: d.max_connections,
        },
        redis: EffectiveRedis {
            url: config.redis.sentinel.is_none().then(|| redacted_url(config.redis.url.expose())),
            key_prefix: config.redis.key_prefix.clone(),
            tls_ca_file: config.redis.tls_ca_file.as_ref().map(|p| p.display().to_string()),
            sentinel: config.redis.sentinel.as_ref().map(|s| EffectiveSentinel {
                sentinels: s.addresses(),
                master_name: s.master_name.clone(),
                username: s.username.clone(),
                password_set: s.password.is_some(),
                sentinel_password_set: s.sentinel_password.is_some(),
                db: s.db,
                tls: s.tls,
            }),
        },
        frappe: EffectiveFrappe {
            runner: config.frappe.runner.clone(),
            queue_prefix: config.frappe.queue_prefix.clone(),
            user: config.frappe.user.clone(),
        },
        sites: config
            .sites
            .iter()
            .map(|s| EffectiveSite {
                name: s.name.clone(),
                mode: s.mode.to_string(),
                database: s.db.describe(),
                password_set: match &s.db {
                    DbConfig::Params { password, .. } => !password.expose().is_empty(),
                    DbConfig::Url(_) => s.db.describe().contains("***"),
                },
            })
            .collect(),
        file: config.file.as_ref().map(|f| EffectiveFile {
            path: f.path.display().to_string(),
            site: f.site.clone(),
            mode: f.mode.to_string(),
        }),
        unused_keys: config.unused_keys.clone(),
    }
}

/// The TOML text: a header comment, then the structured sections.
pub fn toml_text(e: &Effective) -> Result<String, CliError> {
    #[derive(Serialize)]
    struct Body<'a> {
        daemon: &'a EffectiveDaemon,
        redis: &'a EffectiveRedis,
        frappe: &'a EffectiveFrappe,
        #[serde(skip_serializing_if = "<[EffectiveSite]>::is_empty")]
        sites: &'a [EffectiveSite],
        #[serde(skip_serializing_if = "Option::is_none")]
        file: Option<&'a EffectiveFile>,
    }
    let body = Body { daemon: &e.daemon, redis: &e.redis, frappe: &e.frappe, sites: &e.sites, file: e.file.as_ref() };
    let toml = toml::to_string(&body).map_err(|err| CliError::Json(err.to_string()))?;
    let mut out = format!("# effective configuration of {} (defaults filled in, passwords as ***)\n", e.path);
    if !e.unused_keys.is_empty() {
        out.push_str(&format!("# keys not used by this daemon: {}\n", e.unused_keys.join(", ")));
    }
    out.push('\n');
    out.push_str(&toml);
    Ok(out)
}

/// `btu print-config`.
pub fn run(args: &PrintConfigArgs) -> Result<String, CliError> {
    let path = config::resolve_path(args.config.as_deref());
    let config = Config::load(&path).map_err(|e| CliError::Config(e.to_string()))?;
    let config = crate::bench::effective(&config).map_err(|e| CliError::Config(e.to_string()))?;
    let e = effective(&config);
    if args.json {
        let mut s = serde_json::to_string_pretty(&e).map_err(|err| CliError::Json(err.to_string()))?;
        s.push('\n');
        Ok(s)
    } else {
        toml_text(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_file_prints_structured_and_redacted() {
        let text = "rq_host = \"127.0.0.1\"\nrq_port = 11000\nmysql_user = \"root\"\nmysql_password = \"dbpw456\"\n\
                    mysql_database = \"_c8a\"\nfrappe_site = \"site1.local\"\nwebserver_token = \"token abc:def\"\n\
                    [redis]\nurl = \"redis://:redispw123@127.0.0.1:11000/0\"\n";
        let config = Config::parse(text, std::path::Path::new("/etc/btu.toml")).expect("config");
        let e = effective(&config);
        let out = toml_text(&e).expect("toml");
        let json = serde_json::to_string(&e).expect("json");
        for shown in [&out, &json] {
            assert!(!shown.contains("dbpw456") && !shown.contains("redispw123"), "{shown}");
        }
        assert!(out.contains("url = \"redis://:***@127.0.0.1:11000/0\""), "{out}");
        assert!(out.contains("[[sites]]\nname = \"site1.local\"\nmode = \"frappe\"\ndatabase = \"mysql://root@127.0.0.1:3306/_c8a\"\npassword_set = true\n"), "{out}");
        assert!(out.contains("# keys not used by this daemon: webserver_token"), "{out}");
        assert!(out.contains("runner = \"btu_hooks.runner.run_task\""), "{out}");
    }

    #[test]
    fn sentinel_keys_print_beside_the_others_without_passwords() {
        let text = "[redis]\nsentinels = [\"10.0.0.1:26379\"]\nmaster_name = \"mymaster\"\npassword = \"redispw123\"\n\
                    [file]\npath = \"s.toml\"\n";
        let config = Config::parse(text, std::path::Path::new("/etc/btu.toml")).expect("config");
        let e = effective(&config);
        let out = toml_text(&e).expect("toml");
        let json = serde_json::to_string(&e).expect("json");
        for shown in [&out, &json] {
            assert!(!shown.contains("redispw123"), "{shown}");
        }
        assert!(out.contains("[redis]\nkey_prefix = \"rq\"\nsentinels = [\"10.0.0.1:26379\"]\nmaster_name = \"mymaster\"\npassword_set = true\n"), "{out}");
        assert!(!out.contains("url ="), "{out}");
        assert!(json.contains("\"master_name\":\"mymaster\""), "{json}");
    }
}
