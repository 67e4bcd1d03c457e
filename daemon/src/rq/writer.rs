//! Writing jobs into Redis: one atomic claim + job hash + queue push.

use super::RqError;
use super::job::{RqJob, job_fields};
use chrono::{DateTime, Utc};
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::LazyLock;
use std::time::Duration;

/// Claim, write and push in one server-side step, so that a run is enqueued
/// exactly once even with two daemons, a crash between commands, or a
/// rebuild racing the timer (wire-format §7.3: push before hash loses the job).
///
/// KEYS: 1 claim, 2 job hash, 3 queue list, 4 `rq:queues`, [5 history list]
/// ARGV: 1 job id, 2 claim ttl, 3 n = number of field/value strings,
///       4..3+n the fields, then [history entry, history max].
///
/// All type checks come before the first write: Redis does not roll back a
/// script that fails half-way, so every failure must happen before it writes.
/// An existing job hash also counts as "already claimed": the same id is the
/// same run, even if its claim key has expired.
const ENQUEUE_LUA: &str = r#"
local function want(key, kind)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= kind then
    return redis.error_reply('WRONGTYPE ' .. key .. ' is a ' .. t .. ', expected a ' .. kind)
  end
end
local e = want(KEYS[3], 'list') or want(KEYS[4], 'set')
if e then return e end
if #KEYS >= 5 then
  e = want(KEYS[5], 'list')
  if e then return e end
end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 0 end
local n = tonumber(ARGV[3])
redis.call('HSET', KEYS[2], unpack(ARGV, 4, 3 + n))
redis.call('RPUSH', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], KEYS[3])
if #KEYS >= 5 then
  redis.call('LPUSH', KEYS[5], ARGV[4 + n])
  redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[5 + n]) - 1)
end
return 1
"#;

static ENQUEUE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(ENQUEUE_LUA));

/// The key that marks a run as taken; its name is the caller's choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub key: String,
    /// How long the claim outlives the enqueue; must be > 0 and should cover
    /// every window in which the same run could be attempted again.
    pub ttl_secs: u64,
}

/// An entry prepended to a bounded history list in the same atomic step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryAppend {
    pub key: String,
    pub entry: String,
    /// Entries kept (newest first); must be >= 1.
    pub max: usize,
}

/// What [`RqWriter::enqueue_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// The job hash was written and its id pushed onto the queue.
    Enqueued,
    /// Someone (this or another daemon) already enqueued this run; nothing
    /// was written.
    AlreadyClaimed,
}

/// Writes RQ jobs through a shared, reconnecting Redis connection.
#[derive(Clone)]
pub struct RqWriter {
    conn: ConnectionManager,
    key_prefix: String,
}

impl std::fmt::Debug for RqWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RqWriter").field("key_prefix", &self.key_prefix).finish_non_exhaustive()
    }
}

/// The key prefix stock rq uses unless `RQ_KEY_PREFIX` is set (rq ≥ 3.0).
pub const DEFAULT_KEY_PREFIX: &str = "rq";

/// Checks a key prefix the way rq 3.0 does (`[A-Za-z0-9_.:{}-]+`).
pub fn validate_key_prefix(prefix: &str) -> Result<(), RqError> {
    let ok = !prefix.is_empty()
        && prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:{}-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(RqError::Invalid {
            field: "key_prefix",
            reason: format!("{prefix:?} must be non-empty and only letters, digits and _ . : - {{ }}"),
        })
    }
}

impl RqWriter {
    /// `key_prefix` is `rq` for every rq release, or the workers'
    /// `RQ_KEY_PREFIX` on rq ≥ 3.0. It is checked at each enqueue.
    pub fn new(conn: ConnectionManager, key_prefix: &str) -> RqWriter {
        RqWriter { conn, key_prefix: key_prefix.to_string() }
    }

    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// `<prefix>:job:<id>`
    pub fn job_key(&self, id: &str) -> String {
        format!("{}:job:{id}", self.key_prefix)
    }

    /// `<prefix>:queue:<queue>`
    pub fn queue_key(&self, queue: &str) -> String {
        format!("{}:queue:{queue}", self.key_prefix)
    }

    /// `<prefix>:queues`
    pub fn queues_key(&self) -> String {
        format!("{}:queues", self.key_prefix)
    }

    /// Enqueues `job` unless `claim` is already taken (or the job hash
    /// already exists), in one atomic step: `SET claim NX EX ttl`, one `HSET`
    /// of all fields, `RPUSH` the id onto the queue, `SADD` the queue key to
    /// `rq:queues`, and optionally `LPUSH` + `LTRIM` the history. Validates
    /// the job first; an invalid job writes nothing.
    pub async fn enqueue_once(
        &self,
        job: &RqJob,
        claim: &Claim,
        history: Option<&HistoryAppend>,
        now: DateTime<Utc>,
    ) -> Result<EnqueueOutcome, RqError> {
        validate_key_prefix(&self.key_prefix)?;
        if claim.key.is_empty() || claim.ttl_secs == 0 {
            return Err(RqError::Invalid {
                field: "claim",
                reason: format!("key {:?} must be non-empty and ttl {} > 0", claim.key, claim.ttl_secs),
            });
        }
        if let Some(h) = history
            && (h.key.is_empty() || h.max == 0)
        {
            return Err(RqError::Invalid {
                field: "history",
                reason: format!("key {:?} must be non-empty and max {} >= 1", h.key, h.max),
            });
        }
        let fields = job_fields(job, now)?;
        let queue_key = self.queue_key(&job.queue);
        let mut inv = ENQUEUE_SCRIPT.key(&claim.key);
        inv.key(self.job_key(&job.id)).key(&queue_key).key(self.queues_key());
        if let Some(h) = history {
            inv.key(&h.key);
        }
        inv.arg(&job.id).arg(claim.ttl_secs).arg(fields.len() * 2);
        for (name, value) in &fields {
            inv.arg(*name).arg(value.as_slice());
        }
        if let Some(h) = history {
            inv.arg(&h.entry).arg(h.max);
        }
        let mut conn = self.conn.clone();
        let written: i64 = inv.invoke_async(&mut conn).await?;
        Ok(if written == 1 { EnqueueOutcome::Enqueued } else { EnqueueOutcome::AlreadyClaimed })
    }
}

/// Connects to Redis: `redis://[user:password@]host[:port][/db]`,
/// `rediss://…` (TLS), `redis+unix:///path?db=N&user=U&pass=P` or
/// `unix:///path…`. Errors carry the URL without its password.
pub async fn connect(url: &str) -> Result<ConnectionManager, RqError> {
    let fail = |source| RqError::Connect { url: redacted_url(url), source };
    let client = redis::Client::open(url).map_err(fail)?;
    // Few, short retries: the daemon runs its own backoff loop with one log
    // line per state change, so a wrong password or a down server should
    // surface in about a second, not after redis-rs' default ~20 s of retries.
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500))
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(10)));
    ConnectionManager::new_with_config(client, config).await.map_err(fail)
}

/// The URL with any password replaced by `***` (in `user:pass@` and in the
/// `pass=`/`password=` query parameters unix-socket URLs use), for logs.
pub fn redacted_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), url),
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k == "pass" || k == "password" => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let cases = [
            ("redis://127.0.0.1:6379/9", "redis://127.0.0.1:6379/9"),
            ("redis://:s3cret@host:6379/1", "redis://:***@host:6379/1"),
            ("rediss://user:p%40ss:w@host/0", "rediss://user:***@host/0"),
            ("redis://user@host", "redis://user@host"),
            ("redis+unix:///run/redis.sock?db=2&pass=s3cret", "redis+unix:///run/redis.sock?db=2&pass=***"),
            ("unix:///tmp/r.sock?password=x&user=u", "unix:///tmp/r.sock?password=***&user=u"),
            ("weird", "weird"),
        ];
        for (url, want) in cases {
            assert_eq!(redacted_url(url), want);
        }
    }

    #[test]
    fn key_prefix_rules_match_rq() {
        assert!(validate_key_prefix("rq").is_ok());
        assert!(validate_key_prefix("{tenant}:rq-1.x").is_ok());
        assert!(validate_key_prefix("").is_err());
        assert!(validate_key_prefix("rq prefix").is_err());
    }
}
