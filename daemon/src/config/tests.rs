//! Reading configuration files: both formats, defaults, unused keys and every error.

use super::model::DEFAULT_RUNNER;
use super::*;
use btu_protocol::DEFAULT_SOCKET_PATH;
use std::time::Duration;

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
    let c = parse("mysql_database = \"_x\"\nfrappe_site = \"a.local\"\nwebserver_host_header = \"b.local\"").unwrap();
    assert_eq!(c.sites[0].name, "a.local");
}

#[test]
fn errors_name_file_key_and_problem() {
    let e = parse("[daemon]\ntime_zone = \"Mars/Olympus\"\n[file]\npath = \"s.toml\"").unwrap_err().to_string();
    assert!(e.contains("/etc/btu/test.toml") && e.contains("daemon.time_zone") && e.contains("Mars/Olympus"), "{e}");
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
fn malformed_mysql_url_is_an_error_at_start_up() {
    let site = |url: &str| parse(&format!("[[sites]]\nname = \"a.local\"\nurl = \"{url}\""));
    let c = site("mysql://u:pw@db.example:3307/_abc").unwrap();
    assert_eq!(c.sites[0].db.describe(), "mysql://u:***@db.example:3307/_abc");
    assert!(!format!("{c:?}").contains(":pw@"), "{c:?}");
    for bad in ["mysql://u:pw@h:notaport/db", "mysql://u:pw@h/db?no_such_option=1", "mysql://u:pw@[::1/db"] {
        let e = site(bad).unwrap_err().to_string();
        assert!(e.contains("sites[0].url") && e.contains("not a valid MySQL URL"), "{bad}: {e}");
        assert!(!e.contains("pw"), "{e}");
    }
    let e = site("postgres://u@h/db").unwrap_err().to_string();
    assert!(e.contains("sites[0].url") && e.contains("must start with mysql://"), "{e}");
}

#[test]
fn unused_keys_inside_lists_and_flat_key_errors() {
    let c = parse("[[sites]]\nname = \"a.local\"\ndatabase = \"x\"\ncolour = \"red\"").unwrap();
    assert_eq!(c.unused_keys, vec!["sites[0].colour"]);
    let e = parse("tracing_level = \"app=loud\"\n[file]\npath = \"s.toml\"").unwrap_err().to_string();
    assert!(e.contains("key `tracing_level`"), "{e}");
}

#[test]
fn max_connections_defaults_to_1024_and_must_be_positive() {
    let base = "[file]\npath = \"s.toml\"\n";
    assert_eq!(parse(base).unwrap().daemon.max_connections, 1024);
    let c = parse(&format!("[daemon]\nmax_connections = 64\n{base}")).unwrap();
    assert_eq!(c.daemon.max_connections, 64);
    let e = parse(&format!("[daemon]\nmax_connections = 0\n{base}")).unwrap_err().to_string();
    assert!(e.contains("daemon.max_connections") && e.contains("at least 1"), "{e}");
}

#[test]
fn mariadb_max_connections_in_both_formats() {
    let base = "[[sites]]\nname = \"s\"\ndatabase = \"d\"\n";
    let c = parse(base).unwrap();
    assert_eq!(c.mariadb.max_connections, 16);
    assert_eq!(c.daemon.max_connections, 1024, "the socket's cap is another key");
    let c = parse(&format!("[mariadb]\nmax_connections = 4\n{base}")).unwrap();
    assert_eq!(c.mariadb.max_connections, 4);
    let flat = "mariadb_max_connections = 8\nmysql_database = \"d\"\nfrappe_site = \"s\"\n";
    let c = parse(flat).unwrap();
    assert_eq!(c.mariadb.max_connections, 8);
    assert!(c.unused_keys.is_empty(), "{:?}", c.unused_keys);
    let both = format!("mariadb_max_connections = 8\n[mariadb]\nmax_connections = 2\n{base}");
    assert_eq!(parse(&both).unwrap().mariadb.max_connections, 2, "the table wins");
    let e = parse(&format!("[mariadb]\nmax_connections = 0\n{base}")).unwrap_err().to_string();
    assert!(e.contains("mariadb.max_connections") && e.contains("at least 1"), "{e}");
    let e = parse(&format!("mariadb_max_connections = 0\n{base}")).unwrap_err().to_string();
    assert!(e.contains("`mariadb_max_connections`"), "{e}");
}

#[test]
fn tls_ca_file_needs_rediss_and_an_existing_file() {
    let dir = std::env::temp_dir().join(format!("btu-config-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
    let cfg = dir.join("btu.toml");
    let text =
        |url: &str, ca: &str| format!("[redis]\nurl = \"{url}\"\ntls_ca_file = \"{ca}\"\n[file]\npath = \"s.toml\"\n");
    let c = Config::parse(&text("rediss://127.0.0.1:6380", "ca.pem"), &cfg).unwrap();
    assert_eq!(c.redis.tls_ca_file, Some(dir.join("ca.pem")), "relative to the config file");
    let e = Config::parse(&text("redis://127.0.0.1", "ca.pem"), &cfg).unwrap_err().to_string();
    assert!(e.contains("redis.tls_ca_file") && e.contains("rediss://"), "{e}");
    let e = Config::parse(&text("rediss://127.0.0.1", "missing.pem"), &cfg).unwrap_err().to_string();
    assert!(e.contains("redis.tls_ca_file") && e.contains("missing.pem"), "{e}");
    assert_eq!(parse("[file]\npath = \"s.toml\"\n").unwrap().redis.tls_ca_file, None);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn legacy_follow_secs_in_both_formats() {
    let site = "[[sites]]\nname = \"s\"\ndatabase = \"d\"\n";
    assert_eq!(parse(site).unwrap().daemon.legacy_follow, Duration::from_secs(60));
    let c = parse(&format!("[daemon]\nlegacy_follow_secs = 5\n{site}")).unwrap();
    assert_eq!(c.daemon.legacy_follow, Duration::from_secs(5));
    // After the original format's flat keys; the structured key wins over it.
    let flat = "mysql_database = \"d\"\nfrappe_site = \"s\"\nlegacy_follow_secs = 0\n";
    let c = parse(flat).unwrap();
    assert_eq!(c.daemon.legacy_follow, Duration::ZERO);
    assert!(c.unused_keys.is_empty(), "{:?}", c.unused_keys);
    let c = parse(&format!("{flat}[daemon]\nlegacy_follow_secs = 9\n")).unwrap();
    assert_eq!(c.daemon.legacy_follow, Duration::from_secs(9));
    let e = parse(&format!("[daemon]\nlegacy_follow_secs = 7200\n{site}")).unwrap_err().to_string();
    assert!(e.contains("daemon.legacy_follow_secs") && e.contains("3600"), "{e}");
    let e = parse("mysql_database = \"d\"\nfrappe_site = \"s\"\nlegacy_follow_secs = -1\n").unwrap_err().to_string();
    assert!(e.contains("legacy_follow_secs"), "{e}");
}

#[test]
fn policy_defaults_from_the_table_and_the_flat_keys() {
    use crate::policy::{Catchup, DstGap, DstOverlap, Overlap, Policies};
    let site = "[[sites]]\nname = \"s\"\ndatabase = \"_a\"\n";
    assert_eq!(parse(site).unwrap().defaults, Policies::default());
    let c = parse(&format!(
        "default_overlap = \"skip\"\ndefault_jitter_secs = 7\ndefault_dst_gap = \"skip\"\n\
         [defaults]\noverlap = \"replace\"\ncatchup = \"all\"\ndst_overlap = \"last\"\n{site}"
    ))
    .unwrap();
    assert_eq!(
        c.defaults,
        Policies {
            overlap: Overlap::Replace,
            catchup: Catchup::All,
            jitter_secs: 7,
            dst_gap: DstGap::Skip,
            dst_overlap: DstOverlap::Last
        }
    );
    assert!(c.unused_keys.is_empty(), "{:?}", c.unused_keys);
    let e = parse(&format!("[defaults]\ncatchup = \"some\"\n{site}")).unwrap_err().to_string();
    assert!(e.contains("key `defaults.catchup`") && e.contains("latest|all|none"), "{e}");
    let e = parse(&format!("default_jitter_secs = -1\n{site}")).unwrap_err().to_string();
    assert!(e.contains("key `default_jitter_secs`"), "{e}");
}

#[test]
fn sentinel_keys_in_both_formats() {
    let file = "[file]\npath = \"s.toml\"\n";
    let c = parse(&format!(
        "[redis]\nsentinels = [\"10.0.0.1:26379\", \"[::1]:26380\"]\nmaster_name = \"mymaster\"\n\
         password = \"hunter2\"\ndb = 3\ntls = false\nsentinel_password = \"s3\"\nusername = \"rq\"\n{file}"
    ))
    .unwrap();
    let s = c.redis.sentinel.clone().unwrap();
    assert_eq!(s.sentinels, vec![("10.0.0.1".to_string(), 26379), ("::1".to_string(), 26380)]);
    assert_eq!((s.master_name.as_str(), s.db, s.tls, s.username.as_deref()), ("mymaster", 3, false, Some("rq")));
    assert_eq!(s.password.as_ref().map(|p| p.expose()), Some("hunter2"));
    assert!(c.redis.url_explicit, "a bench's redis_queue does not replace the sentinels");
    assert_eq!(c.redis.describe(), "sentinel master mymaster via 10.0.0.1:26379,[::1]:26380");
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("hunter2") && !dbg.contains("\"s3\""), "{dbg}");
    assert!(c.unused_keys.is_empty(), "{:?}", c.unused_keys);
    // The flat twins, among the original format's keys.
    let c = parse(&format!(
        "rq_sentinels = [\"127.0.0.1:26379\"]\nrq_master_name = \"m\"\nrq_password = \"pw\"\nrq_db = 1\n{file}"
    ))
    .unwrap();
    let s = c.redis.sentinel.unwrap();
    assert_eq!((s.master_name.as_str(), s.db, s.password.map(|p| p.expose().to_string())), ("m", 1, Some("pw".into())));
    assert!(parse(file).unwrap().redis.sentinel.is_none());
}

#[test]
fn sentinel_key_errors_name_the_key() {
    let file = "[file]\npath = \"s.toml\"\n";
    let err = |redis: &str| parse(&format!("{redis}\n{file}")).unwrap_err().to_string();
    let cases = [
        ("[redis]\nsentinels = [\"a:1\"]", "redis.master_name", "required with sentinels"),
        ("[redis]\nmaster_name = \"m\"", "redis.master_name", "needs sentinels"),
        ("[redis]\nurl = \"redis://h\"\nsentinels = [\"a:1\"]\nmaster_name = \"m\"", "redis.url", "not both"),
        ("rq_host = \"h\"\nrq_sentinels = [\"a:1\"]\nrq_master_name = \"m\"", "rq_host", "not both"),
        ("[redis]\nsentinels = []\nmaster_name = \"m\"", "redis.sentinels", "at least one"),
        ("[redis]\nsentinels = [\"a\"]\nmaster_name = \"m\"", "redis.sentinels", "is not host:port"),
        ("[redis]\nsentinels = [\"a:0\"]\nmaster_name = \"m\"", "redis.sentinels", "is not host:port"),
        ("rq_sentinels = [\"a:1\"]", "rq_master_name", "required with sentinels"),
        ("[redis]\nsentinels = [\"a:1\"]\nmaster_name = \"m\"\ndb = -1", "redis.db", "0 or more"),
        ("[redis]\npassword = \"pw\"", "redis.password", "only used with sentinels"),
        ("rq_password = \"pw\"", "rq_password", "only used with sentinels"),
        ("[redis]\ntls = true", "redis.tls", "only used with sentinels"),
        (
            "[redis]\nsentinels = [\"a:1\"]\nmaster_name = \"m\"\ntls_ca_file = \"ca.pem\"",
            "redis.tls_ca_file",
            "tls = true",
        ),
    ];
    for (redis, key, problem) in cases {
        let e = err(redis);
        assert!(e.contains(&format!("`{key}`")) && e.contains(problem), "{redis}: {e}");
        assert!(!e.contains("pw"), "{e}");
    }
}
