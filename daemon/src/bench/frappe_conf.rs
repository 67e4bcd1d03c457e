//! What Frappe v15 reads from a bench's JSON files, as pure functions of their parsed text
//! (and of an environment lookup): the bench id, the queue Redis with its RQ credentials, and
//! each site's database. Each function follows the Frappe code named in its comment
//! (`frappe/__init__.py`, `frappe/utils/__init__.py`, `frappe/utils/background_jobs.py` of
//! v15.55.1); docs/frappe.md lists them.

use serde_json::{Map, Value};

use crate::config::{DbConfig, Mode, SiteConfig};
use crate::secret::Secret;

/// A JSON file's top-level object.
pub type Json = Map<String, Value>;

/// An environment lookup (`std::env::var` in the daemon, a map in tests).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Frappe's default queue Redis when `redis_queue` is not set (`get_site_config`).
pub const DEFAULT_REDIS_QUEUE: &str = "redis://127.0.0.1:11311";
/// MariaDB's default port (`MariaDBDatabase.default_port`).
pub const DEFAULT_DB_PORT: u16 = 3306;

/// Reads a JSON file's text; anything but an object is an error (Frappe then ignores the file).
pub fn parse_object(text: &str) -> Result<Json, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

/// A config value as Python's truthiness would see it (`if conf.get(key):`).
fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

/// A string or number value as text; `None` for anything falsy (Frappe's `a or b` chains).
fn text(v: Option<&Value>) -> Option<String> {
    if !truthy(v) {
        return None;
    }
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `get_bench_id()`: `bench_id` from the bench's config, else the bench path with the
/// slashes at its ends stripped and the others turned into `-` (`/home/frappe/frappe-bench`
/// → `home-frappe-frappe-bench`). `bench_path` must already be the real path, as Frappe's
/// `get_bench_path()` resolves symlinks.
pub fn bench_id(common: &Json, bench_path: &str) -> String {
    match common.get("bench_id") {
        // `conf.get("bench_id", default)`: only a missing key falls back.
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => bench_path.trim_matches('/').replace('/', "-"),
    }
}

/// Where RQ jobs go: `redis_queue` (`$FRAPPE_REDIS_QUEUE` first, then the file, then
/// Frappe's default) with the credentials `get_redis_conn()` uses: with `use_rq_auth`,
/// user `rq_username` (default: the bench id) and `rq_password`; else, when
/// `$RQ_ADMIN_PASWORD` (sic) is set, user `default` with that password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRedis {
    /// The URL with the credentials in it: use [`crate::secret::redacted_url`] to show it.
    pub url: Secret,
    /// The user the credentials are for, when any (shown by `btu check-config`).
    pub user: Option<String>,
}

pub fn queue_redis(common: &Json, bench_id: &str, env: Env<'_>) -> QueueRedis {
    let base = env("FRAPPE_REDIS_QUEUE")
        .filter(|s| !s.is_empty())
        .or_else(|| text(common.get("redis_queue")))
        .unwrap_or_else(|| DEFAULT_REDIS_QUEUE.to_string());
    let cred = if truthy(common.get("use_rq_auth")) {
        let user = text(common.get("rq_username")).unwrap_or_else(|| bench_id.to_string());
        Some((user, text(common.get("rq_password")).unwrap_or_default()))
    } else {
        env("RQ_ADMIN_PASWORD").filter(|p| !p.is_empty()).map(|p| ("default".to_string(), p))
    };
    match cred {
        Some((user, password)) => {
            QueueRedis { url: Secret::new(with_credentials(&base, &user, &password)), user: Some(user) }
        }
        None => QueueRedis { url: Secret::new(base), user: None },
    }
}

/// `redis://host:port/db` with `user:password@` put in (replacing any user information the
/// URL had, as redis-py's keyword arguments win over the URL's).
fn with_credentials(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("redis", url));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host_start = rest[..authority_end].rfind('@').map_or(0, |at| at + 1);
    format!("{scheme}://{}:{}@{}", encode(user), encode(password), &rest[host_start..])
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One site's database as `frappe.connect()` opens it: the site's `site_config.json` over
/// the bench's `common_site_config.json` (`get_site_config`), each of `db_type`, `db_host`,
/// `db_port`, `db_socket` overridable by `$FRAPPE_DB_*`; user = `db_name`; host default
/// `127.0.0.1`, port 3306. `Err` is why the site is left out.
pub fn site_db(site: &str, site_conf: &Json, common: &Json, env: Env<'_>) -> Result<SiteConfig, String> {
    let get = |key: &str| site_conf.get(key).or_else(|| common.get(key));
    let from = |var: &str, key: &str| env(var).filter(|v| !v.is_empty()).or_else(|| text(get(key)));
    let db_type = from("FRAPPE_DB_TYPE", "db_type").unwrap_or_else(|| "mariadb".into());
    if db_type != "mariadb" {
        return Err(format!("db_type is {db_type:?}; only mariadb sites are served"));
    }
    let database = text(get("db_name")).ok_or("site_config.json has no db_name")?;
    let password = text(get("db_password")).ok_or("site_config.json has no db_password")?;
    let host = from("FRAPPE_DB_HOST", "db_host").unwrap_or_else(|| "127.0.0.1".into());
    let port = match from("FRAPPE_DB_PORT", "db_port") {
        None => DEFAULT_DB_PORT,
        Some(p) => p.trim().parse().map_err(|_| format!("db_port {p:?} is not a port number"))?,
    };
    let socket = from("FRAPPE_DB_SOCKET", "db_socket");
    Ok(SiteConfig {
        name: site.to_string(),
        db: DbConfig::Params { host, port, user: database.clone(), password: Secret::new(password), database, socket },
        mode: Mode::Frappe,
        discovered: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Json {
        parse_object(text).unwrap()
    }
    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn bench_id_from_the_path_unless_set() {
        assert_eq!(bench_id(&json("{}"), "/home/frappe/frappe-bench"), "home-frappe-frappe-bench");
        assert_eq!(bench_id(&json("{}"), "/work/bench/frappe-bench/"), "work-bench-frappe-bench");
        assert_eq!(bench_id(&json(r#"{"bench_id": "prod"}"#), "/x/y"), "prod");
    }

    #[test]
    fn queue_redis_default_file_env_and_auth() {
        assert_eq!(queue_redis(&json("{}"), "b", &no_env).url.expose(), DEFAULT_REDIS_QUEUE);
        let c = json(r#"{"redis_queue": "redis://127.0.0.1:11000"}"#);
        assert_eq!(
            queue_redis(&c, "b", &no_env),
            QueueRedis { url: Secret::new("redis://127.0.0.1:11000"), user: None }
        );
        let env = |k: &str| (k == "FRAPPE_REDIS_QUEUE").then(|| "redis://q:1".to_string());
        assert_eq!(queue_redis(&c, "b", &env).url.expose(), "redis://q:1");
        let c =
            json(r#"{"redis_queue": "redis://old:pw@10.0.0.1:11000/2", "use_rq_auth": 1, "rq_password": "p@ss w"}"#);
        let q = queue_redis(&c, "home-frappe-bench", &no_env);
        assert_eq!(q.url.expose(), "redis://home-frappe-bench:p%40ss%20w@10.0.0.1:11000/2");
        assert_eq!(q.user.as_deref(), Some("home-frappe-bench"));
        let c = json(r#"{"use_rq_auth": true, "rq_username": "rq", "rq_password": "x"}"#);
        assert_eq!(queue_redis(&c, "b", &no_env).url.expose(), "redis://rq:x@127.0.0.1:11311");
        let c = json(r#"{"use_rq_auth": false}"#);
        let env = |k: &str| (k == "RQ_ADMIN_PASWORD").then(|| "adm".to_string());
        assert_eq!(queue_redis(&c, "b", &env).url.expose(), "redis://default:adm@127.0.0.1:11311");
    }

    #[test]
    fn site_db_falls_back_to_common_then_defaults() {
        let site = json(r#"{"db_name": "_abc", "db_password": "pw"}"#);
        let s = site_db("a.local", &site, &json("{}"), &no_env).unwrap();
        match &s.db {
            DbConfig::Params { host, port, user, password, database, socket } => {
                assert_eq!(
                    (host.as_str(), *port, user.as_str(), database.as_str()),
                    ("127.0.0.1", 3306, "_abc", "_abc")
                );
                assert_eq!(password.expose(), "pw");
                assert_eq!(socket, &None);
            }
            other => panic!("{other:?}"),
        }
        let common = json(r#"{"db_host": "db.internal", "db_port": "3307"}"#);
        let s = site_db("a.local", &site, &common, &no_env).unwrap();
        assert_eq!(s.db.describe(), "mysql://_abc@db.internal:3307/_abc");
        let site = json(r#"{"db_name": "_abc", "db_password": "pw", "db_host": "10.1.1.1", "db_port": 3308}"#);
        assert_eq!(site_db("a", &site, &common, &no_env).unwrap().db.describe(), "mysql://_abc@10.1.1.1:3308/_abc");
        let env = |k: &str| (k == "FRAPPE_DB_HOST").then(|| "envhost".to_string());
        assert_eq!(site_db("a", &site, &common, &env).unwrap().db.describe(), "mysql://_abc@envhost:3308/_abc");
    }

    #[test]
    fn site_db_reasons() {
        let e =
            site_db("a", &json(r#"{"db_name": "x", "db_password": "p", "db_type": "postgres"}"#), &json("{}"), &no_env);
        assert!(e.unwrap_err().contains("postgres"));
        let e = site_db("a", &json(r#"{"db_password": "p"}"#), &json("{}"), &no_env);
        assert!(e.unwrap_err().contains("db_name"));
        let e = site_db("a", &json(r#"{"db_name": "x"}"#), &json("{}"), &no_env);
        assert!(e.unwrap_err().contains("db_password"));
        let e = site_db("a", &json(r#"{"db_name": "x", "db_password": "p", "db_port": "many"}"#), &json("{}"), &no_env);
        assert!(e.unwrap_err().contains("db_port"));
        assert!(parse_object("[1]").is_err() && parse_object("{").is_err());
    }
}
