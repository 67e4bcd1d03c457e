//! Connecting to the queue Redis: from a URL, or through Redis Sentinel to the master it
//! names. Every part of the daemon that talks to the queue Redis (the engine's link, the
//! `btu` CLI) connects here, so all of them find the same master.
//!
//! Sentinel uses the redis crate's own client (`redis::sentinel`, feature `sentinel`): it asks
//! the sentinels in turn for the master of `master_name` and checks with `ROLE` that the
//! server it names is a master, as the Sentinel client protocol says. After a failover the
//! old master becomes a replica: writes there answer `READONLY`, and the sentinels close its
//! clients' connections. Either is a failure of the link, whose reconnect comes back here and
//! asks the sentinels again. While idle the link checks both sides: [`is_master`] (the server
//! still says it is the master) and [`SentinelProbe`] (the sentinels still name it), since an
//! old master keeps taking writes — lost when it is turned into a replica — from the
//! promotion of its replica until the sentinels reconfigure it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, TlsCertificates, TlsMode};

use super::error::RqError;
use crate::config::{RedisConfig, SentinelConfig};
use crate::secret::redacted_url;

/// How long asking the sentinels for the master may take.
const SENTINEL_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to the queue Redis and the server it reached.
#[derive(Clone)]
pub struct RedisConnection {
    pub conn: ConnectionManager,
    /// `host:port` of the master with Sentinel; the redacted URL otherwise.
    pub address: String,
}

/// Connects to Redis: `redis://[user:password@]host[:port][/db]`,
/// `rediss://…` (TLS), `redis+unix:///path?db=N&user=U&pass=P` or
/// `unix:///path…`. Errors carry the URL without its password.
pub async fn connect(url: &str) -> Result<ConnectionManager, RqError> {
    connect_with(url, None).await
}

/// [`connect`], trusting the CA certificates of the PEM file `tls_ca_file` (`[redis]
/// tls_ca_file`) instead of the built-in web roots for a `rediss://` server — the redis
/// crate's `TlsCertificates::root_cert`. A certificate the CA did not sign fails the connect
/// with [`RqError::Connect`], whose message says so.
pub async fn connect_with(url: &str, tls_ca_file: Option<&Path>) -> Result<ConnectionManager, RqError> {
    let fail = |source| RqError::Connect { url: redacted_url(url), source };
    let client = match tls_ca_file {
        None => redis::Client::open(url).map_err(fail)?,
        Some(path) => redis::Client::build_with_tls(url, certificates(path)?).map_err(fail)?,
    };
    ConnectionManager::new_with_config(client, manager_config()).await.map_err(fail)
}

/// Connects to the Redis `config` names: its URL, or the master its sentinels name.
pub async fn connect_redis(config: &RedisConfig) -> Result<RedisConnection, RqError> {
    match &config.sentinel {
        None => {
            let conn = connect_with(config.url.expose(), config.tls_ca_file.as_deref()).await?;
            Ok(RedisConnection { conn, address: redacted_url(config.url.expose()) })
        }
        Some(s) => connect_sentinel(s, config.tls_ca_file.as_deref()).await,
    }
}

/// Asks the sentinels for the master of `s.master_name` and connects to it.
async fn connect_sentinel(s: &SentinelConfig, tls_ca_file: Option<&Path>) -> Result<RedisConnection, RqError> {
    let fail = |source| RqError::Connect { url: s.describe(), source };
    let addrs = s.sentinels.iter().map(|(host, port)| sentinel_addr(s, host, *port));
    let mut builder = SentinelClientBuilder::new(addrs, &s.master_name, SentinelServerType::Master)
        .map_err(fail)?
        .set_client_to_redis_db(s.db);
    if let Some(user) = &s.username {
        builder = builder.set_client_to_redis_username(user);
    }
    if let Some(password) = &s.password {
        builder = builder.set_client_to_redis_password(password.expose());
    }
    if let Some(password) = &s.sentinel_password {
        builder = builder.set_client_to_sentinel_password(password.expose());
    }
    if s.tls {
        builder =
            builder.set_client_to_redis_tls_mode(TlsMode::Secure).set_client_to_sentinel_tls_mode(TlsMode::Secure);
        if let Some(path) = tls_ca_file {
            builder = builder
                .set_client_to_redis_certificates(certificates(path)?)
                .set_client_to_sentinel_certificates(certificates(path)?);
        }
    }
    let mut sentinel = builder.build().map_err(fail)?;
    let master = match tokio::time::timeout(SENTINEL_TIMEOUT, sentinel.async_get_client()).await {
        Ok(res) => res.map_err(fail)?,
        Err(_) => {
            let e = redis::RedisError::from((redis::ErrorKind::Io, "no sentinel named a master in time"));
            return Err(fail(e));
        }
    };
    let address = master.get_connection_info().addr().to_string();
    let conn = ConnectionManager::new_with_config(master, manager_config())
        .await
        .map_err(|source| RqError::Connect { url: format!("{} (master {address})", s.describe()), source })?;
    Ok(RedisConnection { conn, address })
}

/// Whether the server behind `conn` is (still) a master: `ROLE`, the check the Sentinel
/// client protocol asks for. A replica (an old master after a failover) answers `Ok(false)`.
pub async fn is_master(conn: &mut ConnectionManager) -> redis::RedisResult<bool> {
    let role: redis::Value = redis::cmd("ROLE").query_async(conn).await?;
    let first = match role {
        redis::Value::Array(items) => items.into_iter().next(),
        _ => None,
    };
    Ok(match first {
        Some(redis::Value::BulkString(b)) => b == b"master",
        Some(redis::Value::SimpleString(s)) => s == "master",
        _ => false,
    })
}

fn sentinel_addr(s: &SentinelConfig, host: &str, port: u16) -> ConnectionAddr {
    match s.tls {
        false => ConnectionAddr::Tcp(host.to_string(), port),
        true => ConnectionAddr::TcpTls { host: host.to_string(), port, insecure: false, tls_params: None },
    }
}

/// Asks the sentinels which server is the master of `master_name` now
/// (`SENTINEL GET-MASTER-ADDR-BY-NAME`), over one kept connection to the first sentinel that
/// answers. Cheap to clone (the clones share the connection).
#[derive(Clone)]
pub struct SentinelProbe {
    config: Arc<SentinelConfig>,
    tls_ca_file: Option<PathBuf>,
    conn: Arc<tokio::sync::Mutex<Option<MultiplexedConnection>>>,
}

impl SentinelProbe {
    pub fn new(config: SentinelConfig, tls_ca_file: Option<PathBuf>) -> Self {
        SentinelProbe { config: Arc::new(config), tls_ca_file, conn: Arc::default() }
    }

    /// `host:port` of the master the sentinels name (the form [`RedisConnection::address`]
    /// has with Sentinel).
    pub async fn master_address(&self) -> Result<String, RqError> {
        let mut kept = self.conn.lock().await;
        if let Some(conn) = kept.as_mut() {
            match self.ask(conn).await {
                Ok(address) => return Ok(address),
                Err(_) => *kept = None,
            }
        }
        let mut last = None;
        for (host, port) in &self.config.sentinels {
            let res = async {
                let mut conn = self.open(host, *port).await?;
                let address = self.ask(&mut conn).await?;
                Ok::<_, RqError>((conn, address))
            };
            match tokio::time::timeout(SENTINEL_TIMEOUT, res).await {
                Ok(Ok((conn, address))) => {
                    *kept = Some(conn);
                    return Ok(address);
                }
                Ok(Err(e)) => last = Some(e),
                Err(_) => {
                    let e = redis::RedisError::from((redis::ErrorKind::Io, "no answer in time"));
                    last = Some(RqError::Connect { url: format!("sentinel {host}:{port}"), source: e });
                }
            }
        }
        Err(last.unwrap_or_else(|| RqError::Invalid { field: "sentinels", reason: "none configured".into() }))
    }

    async fn open(&self, host: &str, port: u16) -> Result<MultiplexedConnection, RqError> {
        let s = &self.config;
        let fail = |source| RqError::Connect { url: format!("sentinel {host}:{port}"), source };
        let mut login = RedisConnectionInfo::default();
        if let Some(password) = &s.sentinel_password {
            login = login.set_password(password.expose());
        }
        let info = sentinel_addr(s, host, port).into_connection_info().map_err(fail)?.set_redis_settings(login);
        let client = match (&self.tls_ca_file, s.tls) {
            (Some(path), true) => redis::Client::build_with_tls(info, certificates(path)?).map_err(fail)?,
            _ => redis::Client::open(info).map_err(fail)?,
        };
        client.get_multiplexed_async_connection().await.map_err(fail)
    }

    async fn ask(&self, conn: &mut MultiplexedConnection) -> Result<String, RqError> {
        let mut cmd = redis::cmd("SENTINEL");
        cmd.arg("GET-MASTER-ADDR-BY-NAME").arg(&self.config.master_name);
        let pair: Option<(String, u16)> = cmd.query_async(conn).await?;
        match pair {
            Some((host, port)) => Ok(format!("{host}:{port}")),
            None => Err(RqError::Invalid {
                field: "master_name",
                reason: format!("the sentinels do not know a master named {:?}", self.config.master_name),
            }),
        }
    }
}

/// The CA bundle of `[redis] tls_ca_file` as the redis crate takes it.
fn certificates(path: &Path) -> Result<TlsCertificates, RqError> {
    let pem =
        std::fs::read(path).map_err(|e| RqError::TlsCaFile { path: path.to_path_buf(), reason: e.to_string() })?;
    Ok(TlsCertificates { client_tls: None, root_cert: Some(pem) })
}

/// Few, short retries: the daemon runs its own backoff loop with one log line per state
/// change, so a wrong password or a down server should surface in about a second, not after
/// redis-rs' default ~20 s of retries.
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500))
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(10)))
}
