//! Staging runs ahead of their instant, so that at the instant only the release is left
//! (`docs/rq.md`, "Staging"): [`RqWriter::stage_many`] writes each run's job hash (every
//! field as queued, but no `enqueued_at`, expiring) and claim a few seconds before; at the instant
//! [`RqWriter::release_many`] queues them (`super::release`); [`RqWriter::unstage_many`]
//! removes the staged runs that their instant will not release (the schedule was changed or
//! cancelled since, or the run was not fired). Every step is idempotent, and two daemons
//! staging and releasing the same run agree: the claim (`SET NX`) lets one write the hash,
//! and only a hash still staged is released, once.

use redis::Value;

use super::error::RqError;
use super::scripts::{STAGE_SCRIPT, UNSTAGE_SCRIPT};
use super::writer::{PreparedRun, RqWriter, unexpected_reply, validate_key_prefix};

/// Added to the claim TTL for a staged run (claim and hash), so that staging a little ahead
/// does not shorten how long the claim outlives the instant.
pub const STAGE_SLACK_SECS: u64 = 60;

/// The least TTL of a staged job hash. A release leaves the `PERSIST` of the hashes it queued
/// to a follow-up right after it (`super::release`); should that never arrive (the daemon dies
/// in between), a job waiting in its queue keeps its hash this long, not only as long as its
/// claim. A staged run nobody releases is in no queue, so this is only how long such a
/// leftover takes up memory.
pub const STAGED_HASH_MIN_TTL_SECS: u64 = 3600;

/// What [`RqWriter::stage_many`] did with a run. Either way the run is ready for
/// [`RqWriter::release_many`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageOutcome {
    /// This call wrote the staged hash and the claim.
    Staged,
    /// The run was already staged (another daemon, an earlier attempt), possibly under its
    /// other id form, or already enqueued.
    AlreadyThere,
}

/// A staged run to remove: its claim key and job id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unstage {
    pub claim_key: String,
    pub job_id: String,
}

impl Unstage {
    /// What removes the staged `run`.
    pub fn of(run: &PreparedRun) -> Self {
        Unstage { claim_key: run.claim.key.clone(), job_id: run.job_id.clone() }
    }
}

impl RqWriter {
    /// Stages every run in ONE script call: per run, unless its job hash exists or its claim
    /// is taken, `SET claim NX EX ttl` and the job hash with every field (`status` queued)
    /// but `enqueued_at` — which marks it staged — expiring (the claim after claim ttl +
    /// [`STAGE_SLACK_SECS`], the hash after that or [`STAGED_HASH_MIN_TTL_SECS`] if longer).
    /// The hash is in no queue or registry, so no worker, `rq info` or registry cleanup sees
    /// it until it is released.
    ///
    /// The outer error means the call failed as a whole; the runs are then enqueued in full at
    /// their instant. Otherwise one answer per run, in order.
    pub async fn stage_many(&self, runs: &[PreparedRun]) -> Result<Vec<StageOutcome>, RqError> {
        validate_key_prefix(&self.key_prefix)?;
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = STAGE_SCRIPT.prepare_invoke();
        inv.arg(runs.len()).arg(STAGED_HASH_MIN_TTL_SECS);
        for run in runs {
            let ttl = run.claim.ttl_secs.saturating_add(STAGE_SLACK_SECS);
            inv.key(&run.claim.key).key(self.job_key(&run.job_id));
            inv.arg(&run.job_id).arg(ttl).arg(run.fields.len() * 2);
            for (name, value) in &run.fields {
                inv.arg(*name).arg(value.as_slice());
            }
        }
        let mut conn = self.conn.clone();
        let replies: Vec<Value> = inv.invoke_async(&mut conn).await?;
        if replies.len() != runs.len() {
            return Err(unexpected_reply(format!("{} answers for {} staged runs", replies.len(), runs.len())));
        }
        replies
            .into_iter()
            .map(|r| match r {
                Value::Int(1) => Ok(StageOutcome::Staged),
                Value::Int(0) => Ok(StageOutcome::AlreadyThere),
                other => Err(unexpected_reply(format!("{other:?}"))),
            })
            .collect()
    }

    /// Removes staged runs in ONE script call: the job hash if it is still staged (a released
    /// job is never touched), and the claim if it names that hash. Answers how many staged
    /// hashes were removed.
    pub async fn unstage_many(&self, runs: &[Unstage]) -> Result<usize, RqError> {
        validate_key_prefix(&self.key_prefix)?;
        if runs.is_empty() {
            return Ok(0);
        }
        let mut inv = UNSTAGE_SCRIPT.prepare_invoke();
        inv.arg(runs.len());
        for run in runs {
            inv.key(&run.claim_key).key(self.job_key(&run.job_id)).arg(&run.job_id);
        }
        let mut conn = self.conn.clone();
        let removed: usize = inv.invoke_async(&mut conn).await?;
        Ok(removed)
    }
}
