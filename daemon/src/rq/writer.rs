//! Writing jobs into Redis: one atomic claim + job hash + queue push per run,
//! many runs per script call.

use super::error::RqError;
use super::job::{RqJob, job_fields, rq_timestamp};
use crate::secret::redacted_url;
use chrono::{DateTime, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, Script, Value};
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;
use tracing::warn;

/// Claim, write and push a batch of runs in one server-side step, so that a
/// run is enqueued exactly once even with two daemons, a crash between
/// commands, or a rebuild racing the timer (`docs/rq.md` W1: push before
/// hash loses the job). One call per batch, not per run: Redis runs scripts
/// one after another, and the per-call cost (EVALSHA dispatch, Lua set-up)
/// used to be most of the ~40 µs each run cost.
///
/// KEYS: 1 `rq:queues`, then per run: claim, job hash, queue list
/// ARGV: 1 enqueued_at, 2 number of runs, then per run: job id, claim ttl,
///       n = number of field/value strings, the n strings
///
/// Once per batch: `rq:queues` must be a set; once per queue of the batch:
/// the queue must be a list or absent. Redis does not roll back a script that
/// fails half-way, so a run whose queue holds another type gets the WRONGTYPE
/// text as its answer and nothing of it is written — the other runs of the
/// batch are unaffected.
///
/// Per run, in this order (three commands, none of which can fail on type):
/// 1. an existing job hash answers 0: same id = same run, even if its claim
///    expired;
/// 2. `SET claim NX EX ttl` (SET ignores the type of a key it finds); taken
///    answers 0, nothing written;
/// 3. `HSET` every field plus `enqueued_at` into the hash that step 1 found
///    absent (so it cannot be of another type), and the id joins its queue's
///    push list; answers 1.
///
/// Then one `RPUSH` per queue (in slices: Lua's `unpack` has a stack limit)
/// and one `SADD rq:queues`. Pushing at the end is as atomic as pushing per
/// run — no client sees a script half-done, so no worker can pop an id before
/// its hash exists — and nothing can fail after the type checks, since Redis
/// lets a script that has already written go on even past `maxmemory` (and
/// refuses SCRIPT KILL for it).
///
/// The schedule history is NOT written here: it is a pipelined follow-up
/// ([`RqWriter::append_history`]) after the script answered, which halves the
/// Redis time per run. A crash between the two loses a history entry, never a
/// run (docs/rq.md, "History outside the atomic step").
const ENQUEUE_LUA: &str = r#"
local queues, stamp, runs = KEYS[1], ARGV[1], tonumber(ARGV[2])
local function wrong(key, kind)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= kind then
    return 'WRONGTYPE ' .. key .. ' is a ' .. t .. ', expected a ' .. kind
  end
  return false
end
local queues_err = wrong(queues, 'set')
local ids, order, out = {}, {}, {}
local k, a = 2, 3
for r = 1, runs do
  local id, ttl, n = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  local claim, job, queue = KEYS[k], KEYS[k + 1], KEYS[k + 2]
  local err = queues_err
  if not err and not ids[queue] then
    err = wrong(queue, 'list')
    if not err then
      ids[queue] = {}
      order[#order + 1] = queue
    end
  end
  if err then
    out[r] = err
  elseif redis.call('EXISTS', job) == 1 then
    out[r] = 0
  elseif not redis.call('SET', claim, id, 'NX', 'EX', ttl) then
    out[r] = 0
  else
    redis.call('HSET', job, 'enqueued_at', stamp, unpack(ARGV, a + 3, a + 2 + n))
    local q = ids[queue]
    q[#q + 1] = id
    out[r] = 1
  end
  k, a = k + 3, a + 3 + n
end
for _, queue in ipairs(order) do
  local q = ids[queue]
  for i = 1, #q, 1000 do
    redis.call('RPUSH', queue, unpack(q, i, math.min(i + 999, #q)))
  end
  if #q > 0 then redis.call('SADD', queues, queue) end
end
return out
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

/// An entry prepended to a bounded history list, written by
/// [`RqWriter::append_history`] after the run's atomic step answered
/// [`EnqueueOutcome::Enqueued`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryAppend {
    pub key: String,
    pub entry: String,
    /// Entries kept (newest first); must be >= 1.
    pub max: usize,
}

/// What [`RqWriter::enqueue_many`] (or [`RqWriter::enqueue_once`]) did with a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// The job hash was written and its id pushed onto the queue.
    Enqueued,
    /// Someone (this or another daemon) already enqueued this run; nothing
    /// was written.
    AlreadyClaimed,
}

/// One run ready to be written: the job validated and its payload (pickle +
/// zlib, description, timestamps) built, its claim checked.
/// Building is the costly part of an enqueue, so the daemon does it before
/// the due instant and only the script call is left for the instant itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedRun {
    job_id: String,
    queue: String,
    /// Every job-hash field but `enqueued_at`, which is stamped when the batch
    /// is sent so that it is the real enqueue time.
    fields: Vec<(&'static str, Vec<u8>)>,
    claim: Claim,
}

fn check_claim(claim: &Claim) -> Result<(), RqError> {
    if claim.key.is_empty() || claim.ttl_secs == 0 {
        return Err(RqError::Invalid {
            field: "claim",
            reason: format!("key {:?} must be non-empty and ttl {} > 0", claim.key, claim.ttl_secs),
        });
    }
    Ok(())
}

fn check_history(h: &HistoryAppend) -> Result<(), RqError> {
    if h.key.is_empty() || h.max == 0 {
        return Err(RqError::Invalid {
            field: "history",
            reason: format!("key {:?} must be non-empty and max {} >= 1", h.key, h.max),
        });
    }
    Ok(())
}

impl PreparedRun {
    /// Validates every field of `job` (an invalid job is an
    /// [`RqError::Invalid`] naming the field, and can never reach Redis) and
    /// the claim, and builds the payload. `created_at` is the job's
    /// `created_at`; `enqueued_at` is set by [`RqWriter::enqueue_many`].
    pub fn new(job: &RqJob, claim: Claim, created_at: DateTime<Utc>) -> Result<PreparedRun, RqError> {
        check_claim(&claim)?;
        let mut fields = job_fields(job, created_at)?;
        fields.retain(|(name, _)| *name != "enqueued_at");
        Ok(PreparedRun { job_id: job.id.clone(), queue: job.queue.clone(), fields, claim })
    }

    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// The queue name (without the key prefix).
    pub fn queue(&self) -> &str {
        &self.queue
    }

    pub fn claim(&self) -> &Claim {
        &self.claim
    }
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

/// Checks a key prefix the way rq 3.0 does (`[A-Za-z0-9_.:{}-]+`).
pub fn validate_key_prefix(prefix: &str) -> Result<(), RqError> {
    let ok = !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:{}-".contains(&b));
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
    /// `rq:queues` — a batch of one of [`RqWriter::enqueue_many`]. Validates
    /// the job and the history first; an invalid one writes nothing.
    ///
    /// When the run was enqueued, `history` is then appended by
    /// [`RqWriter::append_history`]. Its failure is logged (a `warn` event
    /// naming the job and the history key) and does not change the answer:
    /// the run is in the queue, and retrying would find it claimed.
    pub async fn enqueue_once(
        &self,
        job: &RqJob,
        claim: &Claim,
        history: Option<&HistoryAppend>,
        now: DateTime<Utc>,
    ) -> Result<EnqueueOutcome, RqError> {
        if let Some(h) = history {
            check_history(h)?;
        }
        let run = PreparedRun::new(job, claim.clone(), now)?;
        let mut outcomes = self.enqueue_many(std::slice::from_ref(&run), now).await?;
        // enqueue_many answers exactly one outcome per run; checked, not assumed.
        let outcome = outcomes.pop().unwrap_or_else(|| Err(unexpected_reply("no outcome for the run".into())))?;
        if let (EnqueueOutcome::Enqueued, Some(h)) = (outcome, history) {
            let res = match self.append_history(std::slice::from_ref(h)).await {
                Ok(mut per_entry) => per_entry.pop().unwrap_or(Ok(())),
                Err(e) => Err(e),
            };
            if let Err(e) = res {
                warn!(job_id = %job.id, history = %h.key, error = %e, "history entry not written; the run is enqueued");
            }
        }
        Ok(outcome)
    }

    /// Prepends each entry to its bounded history list (`LPUSH` + `LTRIM 0
    /// max-1`), all in one pipelined round trip. Meant for the runs that
    /// [`RqWriter::enqueue_many`] answered `Enqueued`, AFTER it answered: the
    /// history is a record for operators, not part of the run's atomic step,
    /// so a crash in between loses the entry, never the run.
    ///
    /// The outer error means the round trip failed as a whole; otherwise one
    /// answer per entry, in order (an entry whose key holds another type is a
    /// [`RqError::WrongType`] naming the key; the other entries are written).
    /// An invalid entry (empty key, `max` 0) is refused and nothing is sent.
    pub async fn append_history(&self, entries: &[HistoryAppend]) -> Result<Vec<Result<(), RqError>>, RqError> {
        for h in entries {
            check_history(h)?;
        }
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for h in entries {
            // `max` fits i64: it bounds a list held in memory.
            let stop = i64::try_from(h.max).unwrap_or(i64::MAX) - 1;
            pipe.lpush(&h.key, &h.entry).ltrim(&h.key, 0, stop as isize);
        }
        let mut conn = self.conn.clone();
        let replies: Vec<redis::RedisResult<Value>> = pipe.query_async(&mut conn).await?;
        if replies.len() != entries.len() * 2 {
            return Err(unexpected_reply(format!(
                "{} answers for {} history commands",
                replies.len(),
                entries.len() * 2
            )));
        }
        Ok(entries
            .iter()
            .zip(replies.chunks(2))
            .map(|(h, pair)| match pair.iter().find_map(|r| r.as_ref().err()) {
                None => Ok(()),
                Some(e) if e.code() == Some("WRONGTYPE") => {
                    Err(RqError::WrongType(format!("WRONGTYPE history {} is not a list", h.key)))
                }
                Some(e) => Err(RqError::Redis(e.clone())),
            })
            .collect())
    }

    /// Enqueues every run of `runs` that is not claimed yet, in ONE script
    /// call (one atomic step for the whole batch; see the script's comment for
    /// what is written per run). `enqueued_at` is stamped on every job.
    ///
    /// The outer error means the call failed as a whole (Redis unreachable,
    /// bad key prefix): whether it ran is unknown, and retrying is safe
    /// because of the claims. Otherwise there is one answer per run, in order:
    /// [`EnqueueOutcome`], or [`RqError::WrongType`] when one of the run's keys
    /// holds another Redis type (nothing of that run was written).
    ///
    /// The caller picks the batch size; several calls may be in flight at once
    /// on the multiplexed connection (Redis still runs them one by one).
    pub async fn enqueue_many(
        &self,
        runs: &[PreparedRun],
        enqueued_at: DateTime<Utc>,
    ) -> Result<Vec<Result<EnqueueOutcome, RqError>>, RqError> {
        validate_key_prefix(&self.key_prefix)?;
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let stamp = rq_timestamp(enqueued_at)?;
        let mut inv = ENQUEUE_SCRIPT.key(self.queues_key());
        inv.arg(stamp).arg(runs.len());
        for run in runs {
            inv.key(&run.claim.key).key(self.job_key(&run.job_id)).key(self.queue_key(&run.queue));
            inv.arg(&run.job_id).arg(run.claim.ttl_secs).arg(run.fields.len() * 2);
            for (name, value) in &run.fields {
                inv.arg(*name).arg(value.as_slice());
            }
        }
        let mut conn = self.conn.clone();
        let replies: Vec<Value> = inv.invoke_async(&mut conn).await?;
        if replies.len() != runs.len() {
            return Err(unexpected_reply(format!("{} answers for {} runs", replies.len(), runs.len())));
        }
        Ok(replies.into_iter().map(outcome).collect())
    }
}

/// One run's answer from the script: 1 written, 0 already claimed, or a
/// WRONGTYPE text.
fn outcome(reply: Value) -> Result<EnqueueOutcome, RqError> {
    match reply {
        Value::Int(1) => Ok(EnqueueOutcome::Enqueued),
        Value::Int(0) => Ok(EnqueueOutcome::AlreadyClaimed),
        Value::BulkString(text) => Err(RqError::WrongType(String::from_utf8_lossy(&text).into_owned())),
        Value::SimpleString(text) => Err(RqError::WrongType(text)),
        other => Err(unexpected_reply(format!("{other:?}"))),
    }
}

fn unexpected_reply(detail: String) -> RqError {
    RqError::Redis(RedisError::from((ErrorKind::UnexpectedReturnType, "enqueue script answered", detail)))
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
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| RqError::TlsCaFile { path: path.to_path_buf(), reason: e.to_string() })?;
            let certs = redis::TlsCertificates { client_tls: None, root_cert: Some(pem) };
            redis::Client::build_with_tls(url, certs).map_err(fail)?
        }
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_prefix_rules_match_rq() {
        assert!(validate_key_prefix("rq").is_ok());
        assert!(validate_key_prefix("{tenant}:rq-1.x").is_ok());
        assert!(validate_key_prefix("").is_err());
        assert!(validate_key_prefix("rq prefix").is_err());
    }
}
