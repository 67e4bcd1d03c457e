//! Writing jobs into Redis: one atomic claim + gates + job hash + queue push per
//! run, many runs per script call ([`super::script`]).

use super::error::RqError;
use super::gates::{GateIndex, Gates};
use super::job::{RqJob, job_fields};
use super::scripts::ENQUEUE_SCRIPT;
use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use redis::{ErrorKind, FromRedisValue, RedisError, Value};
use std::collections::HashSet;
use tracing::warn;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// The job hash was written and its id pushed onto the queue.
    Enqueued,
    /// Someone (this or another daemon) already claimed this run; nothing
    /// was written.
    AlreadyClaimed,
    /// Claimed, not enqueued: the schedule's pause key exists.
    SkippedPaused,
    /// Claimed, not enqueued: the due instant was in the skip set (and is
    /// removed from it).
    SkippedByRequest,
    /// Claimed, not enqueued: the previous job (`running`) is still busy and
    /// the overlap gate is `skip`.
    SkippedOverlap { running: String },
    /// Enqueued after cancelling the previous job (`canceled`), which was
    /// still waiting in its queue (overlap gate `replace`).
    Replaced { canceled: String },
}

impl EnqueueOutcome {
    /// The job was written to its queue.
    pub fn is_enqueued(&self) -> bool {
        matches!(self, EnqueueOutcome::Enqueued | EnqueueOutcome::Replaced { .. })
    }
}

/// One run ready to be written: the job validated and its payload (pickle +
/// zlib, description, timestamps) built, its claim checked.
/// Building is the costly part of an enqueue, so the daemon does it before
/// the due instant and only the script call is left for the instant itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedRun {
    pub(super) job_id: String,
    pub(super) queue: String,
    /// Every job-hash field but `enqueued_at`, which the script stamps with
    /// Redis' clock when it writes the job.
    pub(super) fields: Vec<(&'static str, Vec<u8>)>,
    pub(super) claim: Claim,
    pub(super) gates: Gates,
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
    /// `created_at`; `enqueued_at` is stamped by the script that queues it.
    pub fn new(job: &RqJob, claim: Claim, created_at: DateTime<Utc>) -> Result<PreparedRun, RqError> {
        check_claim(&claim)?;
        let mut fields = job_fields(job, created_at)?;
        fields.retain(|(name, _)| *name != "enqueued_at");
        Ok(PreparedRun { job_id: job.id.clone(), queue: job.queue.clone(), fields, claim, gates: Gates::default() })
    }

    /// The same run, checked against `gates` at the instant (pause, skip, overlap; see the
    /// script's doc). An empty key name counts as no key.
    pub fn with_gates(mut self, gates: Gates) -> PreparedRun {
        self.gates = gates;
        self
    }

    pub fn gates(&self) -> &Gates {
        &self.gates
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
    pub(super) conn: ConnectionManager,
    pub(super) key_prefix: String,
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
        let mut outcomes = self.enqueue_many(std::slice::from_ref(&run)).await?;
        // enqueue_many answers exactly one outcome per run; checked, not assumed.
        let outcome = outcomes.pop().unwrap_or_else(|| Err(unexpected_reply("no outcome for the run".into())))?;
        if let (true, Some(h)) = (outcome.is_enqueued(), history) {
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

    /// Takes each claim that is free (`SET key <value> NX EX ttl`, pipelined in one round
    /// trip) and answers, per claim in order, whether this call took it. For decisions that
    /// write no job (a span of missed runs recorded once by whichever daemon claims it).
    pub async fn claim_many(&self, claims: &[(Claim, String)]) -> Result<Vec<bool>, RqError> {
        for (c, _) in claims {
            check_claim(c)?;
        }
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (c, value) in claims {
            pipe.cmd("SET").arg(&c.key).arg(value).arg("NX").arg("EX").arg(c.ttl_secs);
        }
        let mut conn = self.conn.clone();
        let replies: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
        if replies.len() != claims.len() {
            return Err(unexpected_reply(format!("{} answers for {} claims", replies.len(), claims.len())));
        }
        Ok(replies.into_iter().map(|r| r.is_some()).collect())
    }

    /// Enqueues every run of `runs` that is not claimed yet, in ONE script
    /// call (one atomic step for the whole batch; see the script's comment for
    /// what is written per run). `enqueued_at` is stamped on every job with
    /// Redis' clock at the moment the script writes it.
    ///
    /// The outer error means the call failed as a whole (Redis unreachable,
    /// bad key prefix): whether it ran is unknown, and retrying is safe
    /// because of the claims. Otherwise there is one answer per run, in order:
    /// [`EnqueueOutcome`], or [`RqError::WrongType`] when one of the run's keys
    /// holds another Redis type (nothing of that run was written).
    ///
    /// The caller picks the batch size; several calls may be in flight at once
    /// on the multiplexed connection (Redis still runs them one by one).
    pub async fn enqueue_many(&self, runs: &[PreparedRun]) -> Result<Vec<Result<EnqueueOutcome, RqError>>, RqError> {
        validate_key_prefix(&self.key_prefix)?;
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = ENQUEUE_SCRIPT.key(self.queues_key());
        let indexes = gate_indexes(runs);
        for ix in &indexes {
            inv.key(&ix.pauses).key(&ix.skips);
        }
        inv.arg(&self.key_prefix).arg(runs.len()).arg(indexes.len());
        for ix in &indexes {
            inv.arg(&ix.pause_prefix).arg(&ix.skip_prefix).arg(&ix.lastjob_prefix);
        }
        for run in runs {
            let due = self.run_keys(&mut inv, run);
            inv.arg(&run.job_id)
                .arg(run.claim.ttl_secs)
                .arg(due)
                .arg(run.gates.overlap.as_str())
                .arg(run.gates.ix_flag())
                .arg(run.fields.len() * 2);
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

    /// The six keys a run takes in the enqueue script, in the script's order:
    /// claim, job hash, queue, then the gates' pause, skip and lastjob keys (`""` for a gate
    /// not in force). Answers the skip gate's member (the due instant; 0 without one).
    fn run_keys(&self, inv: &mut redis::ScriptInvocation<'_>, run: &PreparedRun) -> i64 {
        let g = &run.gates;
        let (skip_key, due) = g.skip.as_ref().map_or(("", 0), |(k, d)| (k.as_str(), *d));
        inv.key(&run.claim.key).key(self.job_key(&run.job_id)).key(self.queue_key(&run.queue));
        inv.key(g.pause_key.as_deref().unwrap_or("")).key(skip_key).key(g.lastjob_key.as_deref().unwrap_or(""));
        due
    }
}

/// The distinct gate indexes of `runs`' sites, in the order first seen: the scripts read each
/// once per call (`docs/rq.md`, "Gates").
pub(super) fn gate_indexes(runs: &[PreparedRun]) -> Vec<&GateIndex> {
    let mut seen = HashSet::new();
    runs.iter().filter_map(|r| r.gates.index.as_deref()).filter(|ix| seen.insert(ix.pauses.as_str())).collect()
}

/// One run's answer from the script: 1 written, 0 already claimed, 2 paused,
/// 3 skipped by request, `{4, running id}` overlap skip, `{5, canceled id}`
/// replaced, or a WRONGTYPE text.
pub(super) fn outcome(reply: Value) -> Result<EnqueueOutcome, RqError> {
    match reply {
        Value::Int(1) => Ok(EnqueueOutcome::Enqueued),
        Value::Int(0) => Ok(EnqueueOutcome::AlreadyClaimed),
        Value::Int(2) => Ok(EnqueueOutcome::SkippedPaused),
        Value::Int(3) => Ok(EnqueueOutcome::SkippedByRequest),
        Value::Array(pair) => match <(i64, String)>::from_redis_value(Value::Array(pair)) {
            Ok((4, running)) => Ok(EnqueueOutcome::SkippedOverlap { running }),
            Ok((5, canceled)) => Ok(EnqueueOutcome::Replaced { canceled }),
            other => Err(unexpected_reply(format!("{other:?}"))),
        },
        Value::BulkString(text) => Err(RqError::WrongType(String::from_utf8_lossy(&text).into_owned())),
        Value::SimpleString(text) => Err(RqError::WrongType(text)),
        other => Err(unexpected_reply(format!("{other:?}"))),
    }
}

pub(super) fn unexpected_reply(detail: String) -> RqError {
    RqError::Redis(RedisError::from((ErrorKind::UnexpectedReturnType, "enqueue script answered", detail)))
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
