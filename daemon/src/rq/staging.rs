//! Staging runs ahead of their instant, so that at the instant only the release is left
//! (`docs/rq.md`, "Staging"): [`RqWriter::stage_many`] writes each run's job hash (status
//! `scheduled`, no `enqueued_at`, expiring) and claim a few seconds before; at the instant
//! [`RqWriter::release_many`] queues them; [`RqWriter::unstage_many`] removes the staged runs
//! of schedules that no longer fire then. Every step is idempotent, and two daemons staging
//! and releasing the same run agree: the claim (`SET NX`) lets one write the hash, and only a
//! hash still staged is released, once.

use redis::{Cmd, ErrorKind, ServerErrorKind, Value};

use super::error::RqError;
use super::scripts::{RELEASE_SCRIPT, STAGE_SCRIPT, STAGED_STATUS, UNSTAGE_SCRIPT};
use super::writer::{
    EnqueueOutcome, PreparedRun, RqWriter, gate_indexes, outcome, unexpected_reply, validate_key_prefix,
};

/// Added to the claim TTL for a staged run (claim and hash), so that staging a little ahead
/// does not shorten how long the claim outlives the instant.
pub const STAGE_SLACK_SECS: u64 = 60;

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

/// The release script's call for a list of staged runs, encoded ahead
/// ([`RqWriter::release_call`]), so that at the instant it is only sent
/// ([`RqWriter::send_release`]): building the keys of 10,000 runs is milliseconds of work the
/// instant does not wait for.
#[derive(Debug, Clone)]
pub struct ReleaseCall {
    cmd: Cmd,
    runs: usize,
}

/// A staged run to remove: its claim key and job id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unstage {
    pub claim_key: String,
    pub job_id: String,
}

impl RqWriter {
    /// Stages every run in ONE script call: per run, unless its job hash exists or its claim
    /// is taken, `SET claim NX EX ttl` and the job hash with every field, `status`
    /// `scheduled`, no `enqueued_at`, expiring with the claim (ttl = claim ttl +
    /// [`STAGE_SLACK_SECS`]). The hash is in no queue or registry, so no worker, `rq info` or
    /// registry cleanup sees it until it is released.
    ///
    /// The outer error means the call failed as a whole; the runs are then enqueued in full at
    /// their instant. Otherwise one answer per run, in order.
    pub async fn stage_many(&self, runs: &[PreparedRun]) -> Result<Vec<StageOutcome>, RqError> {
        validate_key_prefix(&self.key_prefix)?;
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = STAGE_SCRIPT.prepare_invoke();
        inv.arg(runs.len());
        for run in runs {
            let ttl = run.claim.ttl_secs.saturating_add(STAGE_SLACK_SECS);
            inv.key(&run.claim.key).key(self.job_key(&run.job_id));
            inv.arg(&run.job_id).arg(ttl).arg(run.fields.len() * 2);
            for (name, value) in &run.fields {
                let value = if *name == "status" { STAGED_STATUS.as_bytes() } else { value.as_slice() };
                inv.arg(*name).arg(value);
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

impl RqWriter {
    /// Releases runs staged ahead ([`RqWriter::stage_many`]) at their instant: ONE script call
    /// that sends only ids and gate arguments and, per run, checks the gates and sets `status`
    /// queued and `enqueued_at` (Redis' clock) on the staged hash, drops its expiry and pushes
    /// the id — or answers `AlreadyClaimed` when it was decided already (by another daemon, an
    /// earlier attempt). A run found not staged at all (its staged hash expired or was
    /// removed) is enqueued in full by a second call ([`RqWriter::enqueue_many`]), so every
    /// run gets the same answers as there.
    pub async fn release_many(&self, runs: &[PreparedRun]) -> Result<Vec<Result<EnqueueOutcome, RqError>>, RqError> {
        let call = self.release_call(runs)?;
        self.send_release(&call, runs).await
    }

    /// The call [`RqWriter::release_many`] makes for `runs`, built now to be sent later with
    /// [`RqWriter::send_release`] (`EVALSHA` of the release script: the keys, then the
    /// arguments).
    pub fn release_call(&self, runs: &[PreparedRun]) -> Result<ReleaseCall, RqError> {
        validate_key_prefix(&self.key_prefix)?;
        let mut cmd = redis::cmd("EVALSHA");
        let indexes = gate_indexes(runs);
        cmd.arg(RELEASE_SCRIPT.get_hash()).arg(1 + 2 * indexes.len() + 6 * runs.len()).arg(self.queues_key());
        for ix in &indexes {
            cmd.arg(&ix.pauses).arg(&ix.skips);
        }
        let mut dues = Vec::with_capacity(runs.len());
        for run in runs {
            let (keys, due) = self.run_key_list(run);
            for key in keys {
                cmd.arg(key.as_ref());
            }
            dues.push(due);
        }
        cmd.arg(&self.key_prefix).arg(runs.len()).arg(indexes.len());
        for ix in &indexes {
            cmd.arg(&ix.pause_prefix).arg(&ix.skip_prefix);
        }
        for (run, due) in runs.iter().zip(dues) {
            cmd.arg(&run.job_id).arg(due).arg(run.gates.overlap.as_str()).arg(run.gates.ix_flag());
        }
        Ok(ReleaseCall { cmd, runs: runs.len() })
    }

    /// Sends a release call built ahead for `runs` (the same runs, in the same order) and
    /// answers as [`RqWriter::release_many`]. A Redis that lost its scripts (a restart, `SCRIPT
    /// FLUSH`) gets the script loaded and the call once more.
    pub async fn send_release(
        &self,
        call: &ReleaseCall,
        runs: &[PreparedRun],
    ) -> Result<Vec<Result<EnqueueOutcome, RqError>>, RqError> {
        if runs.len() != call.runs {
            return Err(RqError::Invalid {
                field: "release",
                reason: format!("a call built for {} runs sent with {}", call.runs, runs.len()),
            });
        }
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let replies: Vec<Value> = match call.cmd.query_async(&mut conn).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                RELEASE_SCRIPT.load_async(&mut conn).await?;
                call.cmd.query_async(&mut conn).await?
            }
            res => res?,
        };
        if replies.len() != runs.len() {
            return Err(unexpected_reply(format!("{} answers for {} runs", replies.len(), runs.len())));
        }
        let not_staged: Vec<usize> =
            replies.iter().enumerate().filter(|(_, r)| matches!(r, Value::Int(6))).map(|(i, _)| i).collect();
        let mut answers: Vec<Result<EnqueueOutcome, RqError>> = replies.into_iter().map(outcome).collect();
        if !not_staged.is_empty() {
            let full: Vec<PreparedRun> = not_staged.iter().map(|&i| runs[i].clone()).collect();
            for (i, answer) in not_staged.into_iter().zip(self.enqueue_many(&full).await?) {
                answers[i] = answer;
            }
        }
        Ok(answers)
    }
}
