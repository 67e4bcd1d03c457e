//! The file's layout as serde reads it: every key of the structured format and of the original
//! daemon's flat format, all optional (what is required is decided in `validate.rs`). Keys the
//! layout does not name are collected, with their dotted path, as unused.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_ignored::Path;

use super::model::{LogFormat, Mode};
use crate::secret::Secret;

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawFile {
    pub daemon: Option<RawDaemon>,
    pub redis: Option<RawRedis>,
    pub frappe: Option<RawFrappe>,
    pub sites: Option<Vec<RawSite>>,
    pub file: Option<RawFileSource>,
    pub metrics: Option<RawMetrics>,
    /// Per-schedule policy defaults (issue 9).
    pub defaults: Option<RawDefaults>,
    pub mariadb: Option<RawMariaDb>,
    // Flat twins of new keys, for files in the original format (whose keys sit before any
    // table): `[metrics]`'s keys and `[daemon] log_format`.
    pub metrics_listen: Option<String>,
    pub metrics_per_schedule: Option<bool>,
    pub log_format: Option<LogFormat>,
    pub default_overlap: Option<String>,
    pub default_catchup: Option<String>,
    pub default_jitter_secs: Option<i64>,
    pub default_dst_gap: Option<String>,
    pub default_dst_overlap: Option<String>,
    /// `[mariadb] max_connections`.
    pub mariadb_max_connections: Option<usize>,
    // The original daemon's flat keys.
    pub mysql_host: Option<String>,
    pub mysql_port: Option<u16>,
    pub mysql_user: Option<String>,
    pub mysql_password: Option<Secret>,
    pub mysql_database: Option<String>,
    pub rq_host: Option<String>,
    pub rq_port: Option<u16>,
    /// Flat twins of `[redis] sentinels`, `master_name`, `password` and `db` (not keys of the
    /// original daemon: accepted so a file in that format can use Sentinel too).
    pub rq_sentinels: Option<Vec<String>>,
    pub rq_master_name: Option<String>,
    pub rq_password: Option<Secret>,
    pub rq_db: Option<i64>,
    pub socket_path: Option<String>,
    pub socket_file_group_owner: Option<String>,
    pub full_refresh_internal_secs: Option<u64>,
    pub time_zone_string: Option<String>,
    pub tracing_level: Option<String>,
    pub frappe_site: Option<String>,
    /// The bench to discover sites, databases and the queue Redis from (flat spelling of
    /// `[frappe] bench_path`).
    pub frappe_bench_path: Option<String>,
    /// Not a key of the original daemon: accepted among its flat keys, so a file in that format
    /// can set it too (`[daemon] legacy_follow_secs` wins).
    pub legacy_follow_secs: Option<u64>,
    /// The original daemon's web server settings are unused (jobs no longer come from Frappe's
    /// web server); this one is kept as a fallback site name.
    pub webserver_host_header: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawDaemon {
    pub rebuild_interval_secs: Option<u64>,
    pub missed_run_grace_secs: Option<u64>,
    pub legacy_follow_secs: Option<u64>,
    pub time_zone: Option<String>,
    pub log_level: Option<String>,
    pub log_format: Option<LogFormat>,
    pub socket_path: Option<String>,
    pub socket_file_group_owner: Option<String>,
    pub allowed_uids: Option<Vec<u32>>,
    pub allowed_gids: Option<Vec<u32>>,
    pub max_connections: Option<usize>,
}

/// `[defaults]`: the policies of every schedule that does not set its own.
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawDefaults {
    pub overlap: Option<String>,
    pub catchup: Option<String>,
    pub jitter_secs: Option<i64>,
    pub dst_gap: Option<String>,
    pub dst_overlap: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawMetrics {
    pub listen: Option<String>,
    pub per_schedule: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawMariaDb {
    pub max_connections: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawRedis {
    pub url: Option<Secret>,
    pub tls_ca_file: Option<String>,
    pub key_prefix: Option<String>,
    // Redis Sentinel (instead of `url`).
    pub sentinels: Option<Vec<String>>,
    pub master_name: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub sentinel_password: Option<Secret>,
    pub db: Option<i64>,
    pub tls: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawFrappe {
    pub runner: Option<String>,
    pub queue_prefix: Option<String>,
    pub user: Option<String>,
    pub bench_path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawSite {
    pub name: Option<String>,
    pub url: Option<Secret>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub database: Option<String>,
    pub mode: Option<Mode>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct RawFileSource {
    pub path: Option<String>,
    pub site: Option<String>,
    pub mode: Option<Mode>,
}

/// Reads the text in one pass: the layout, and the dotted paths of the keys it does not name
/// (sorted), e.g. `webserver_port`, `daemon.foo`, `sites[0].colour`.
pub(super) fn read(text: &str) -> Result<(RawFile, Vec<String>), toml::de::Error> {
    let mut unused = BTreeSet::new();
    let raw = serde_ignored::deserialize(toml::Deserializer::new(text), |path| {
        unused.insert(dotted(&path));
    })?;
    Ok((raw, unused.into_iter().collect()))
}

/// `a.b[0].c`: serde_ignored's own `Display` also prints the `Option` layers (`a.?.b`).
fn dotted(path: &Path<'_>) -> String {
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", dotted(parent)),
        Path::Map { parent, key } => match dotted(parent) {
            p if p.is_empty() => key.clone(),
            p => format!("{p}.{key}"),
        },
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => dotted(parent),
    }
}
