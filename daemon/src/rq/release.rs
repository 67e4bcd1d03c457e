//! The release of runs staged ahead (`docs/rq.md`, "Staging"): at the instant, ONE script call
//! per batch queues the staged job hashes. The call is built when the batch is staged
//! ([`RqWriter::release_call`]) and only sent at the instant ([`RqWriter::send_release`]).
//!
//! What the call carries is kept small, because Redis parses every string of it at the
//! instant: per run of overlap `allow` only its schedule as the job id carries it (the script
//! derives the id and the job, pause and skip keys from it), per other run the job id and its
//! schedule, the rest once per segment of runs that share queue, gate index, overlap and due
//! instant. Its answer is as small: only the runs not released (`docs/performance.md`).

use std::collections::HashMap;

use redis::{Cmd, ErrorKind, ServerErrorKind, Value};
use tracing::warn;

use super::error::RqError;
use super::gates::{GateIndex, OverlapGate};
use super::id::escape;
use super::scripts::RELEASE_SCRIPT;
use super::writer::{
    EnqueueOutcome, PreparedRun, RqWriter, gate_indexes, outcome, unexpected_reply, validate_key_prefix,
};

/// The release script's call for a list of staged runs, encoded ahead
/// ([`RqWriter::release_call`]), so that at the instant it is only sent
/// ([`RqWriter::send_release`]): building the arguments of 10,000 runs is milliseconds of work
/// the instant does not wait for.
#[derive(Debug, Clone)]
pub struct ReleaseCall {
    cmd: Cmd,
    runs: usize,
}

/// The answers of a release ([`RqWriter::send_release`]), one per run, before its follow-up
/// ([`RqWriter::follow_up`]).
#[derive(Debug)]
pub struct Released {
    pub answers: Vec<Result<EnqueueOutcome, RqError>>,
    /// Whether the release call decided the run (false: it was not staged, and the full
    /// enqueue answered).
    by_release: Vec<bool>,
}

/// How the script finds a run's id and gate keys.
#[derive(Debug, PartialEq, Eq)]
enum GateForm<'r> {
    /// [`GateForm::Member`] with overlap `allow` and a job id of `head` + the escaped schedule +
    /// `tail` ([`split_id`]): only `escaped` is sent, `head` and `tail` once per segment.
    Escaped { head: &'r str, escaped: &'r str, tail: &'r str },
    /// The run's pause, skip and last-job keys are its index's prefixes + this schedule id
    /// (every run the engine builds): the job id and the schedule id are sent.
    Member(&'r str),
    /// Keys of any other shape, sent as they are (`""`: no such gate).
    Keys { pause: &'r str, skip: &'r str, last: &'r str },
}

/// What one run sends, and what its segment shares with the runs next to it.
struct Layout<'r> {
    queue: usize,
    /// 1-based position of the run's gate index in the call; 0: none.
    index: usize,
    overlap: &'static str,
    due: i64,
    form: GateForm<'r>,
}

/// What the runs of one segment share: queue, gate index, overlap, due, and the form's
/// letter with, for `e`, the ids' head and tail.
type Segment<'r> = (usize, usize, &'static str, i64, &'static str, Option<(&'r str, &'r str)>);

impl<'r> Layout<'r> {
    /// Runs with the same key go in one segment.
    fn segment(&self) -> Segment<'r> {
        let (form, ends) = match self.form {
            GateForm::Escaped { head, tail, .. } => ("e", Some((head, tail))),
            GateForm::Member(_) => ("m", None),
            GateForm::Keys { .. } => ("k", None),
        };
        (self.queue, self.index, self.overlap, self.due, form, ends)
    }
}

/// `job_id` cut around `schedule` as ids carry it, escaped, right before the due instant
/// (`rq/id.rs`: `…-<escaped schedule>-<due>`): head, escaped schedule, tail — or `None` when
/// the id is not of that shape. Head + escaped + tail is the id, whatever its shape.
fn split_id<'r>(job_id: &'r str, schedule: &str) -> Option<(&'r str, &'r str, &'r str)> {
    let escaped = escape(schedule);
    let due_at = job_id.rfind('-')?;
    let start = due_at.checked_sub(escaped.len())?;
    let (head, middle, tail) = (job_id.get(..start)?, job_id.get(start..due_at)?, job_id.get(due_at..)?);
    (middle == escaped).then_some((head, middle, tail))
}

/// The schedule id whose keys under `ix` are exactly the run's gate keys, if there is one.
fn member<'r>(run: &'r PreparedRun, ix: &GateIndex) -> Option<&'r str> {
    let g = &run.gates;
    let m = g.pause_key.as_deref()?.strip_prefix(ix.pause_prefix.as_str())?;
    let (skip, _) = g.skip.as_ref()?;
    let last = g.lastjob_key.as_deref()?;
    let derived = skip.strip_prefix(ix.skip_prefix.as_str()) == Some(m)
        && last.strip_prefix(ix.lastjob_prefix.as_str()) == Some(m);
    derived.then_some(m)
}

/// Every run's answer from the release script's list of the runs not released (`{r, answer,
/// …}`, `r` 1-based): 1 (released) for each run not in it.
fn answers_in_full(listed: Vec<Value>, runs: usize) -> Result<Vec<Value>, RqError> {
    let mut replies = vec![Value::Int(1); runs];
    let mut listed = listed.into_iter();
    while let Some(number) = listed.next() {
        let slot = match number {
            Value::Int(r) => usize::try_from(r).ok().and_then(|r| r.checked_sub(1)).filter(|&i| i < runs),
            _ => None,
        };
        match (slot, listed.next()) {
            (Some(i), Some(answer)) => replies[i] = answer,
            (_, answer) => {
                return Err(unexpected_reply(format!("run number {number:?} with answer {answer:?} for {runs} runs")));
            }
        }
    }
    Ok(replies)
}

impl RqWriter {
    /// Releases runs staged ahead ([`RqWriter::stage_many`]) at their instant: ONE script call
    /// that, per run, checks the gates and sets `status` queued and `enqueued_at` (Redis'
    /// clock) on the staged hash, drops its expiry and pushes the id — or answers
    /// `AlreadyClaimed` when it was decided already (by another daemon, an earlier attempt). A
    /// run whose own staged hash is not there (it expired or was removed, or another daemon
    /// staged it under the other id form) is enqueued in full by a second call
    /// ([`RqWriter::enqueue_many`]), so every run gets the same answers as there.
    pub async fn release_many(&self, runs: &[PreparedRun]) -> Result<Vec<Result<EnqueueOutcome, RqError>>, RqError> {
        let call = self.release_call(runs)?;
        let released = self.send_release(&call, runs).await?;
        self.follow_up(runs, &released).await;
        Ok(released.answers)
    }

    /// The call [`RqWriter::release_many`] makes for `runs`, built now to be sent later with
    /// [`RqWriter::send_release`] (`EVALSHA` of the release script; layout in its doc).
    pub fn release_call(&self, runs: &[PreparedRun]) -> Result<ReleaseCall, RqError> {
        validate_key_prefix(&self.key_prefix)?;
        let indexes = gate_indexes(runs);
        let mut queues: Vec<String> = Vec::new();
        let mut queue_no: HashMap<&str, usize> = HashMap::new();
        let layouts: Vec<Layout<'_>> = runs
            .iter()
            .map(|run| {
                let queue = *queue_no.entry(run.queue.as_str()).or_insert_with(|| {
                    queues.push(self.queue_key(&run.queue));
                    queues.len()
                });
                let g = &run.gates;
                let found = g.index.as_deref().and_then(|ix| indexes.iter().position(|i| i.pauses == ix.pauses));
                let index = found.map_or(0, |i| i + 1);
                let overlap = g.overlap.as_str();
                let form = match found.and_then(|i| member(run, indexes[i])) {
                    Some(m) => match split_id(&run.job_id, m) {
                        Some((head, escaped, tail)) if overlap == "allow" => GateForm::Escaped { head, escaped, tail },
                        _ => GateForm::Member(m),
                    },
                    None => GateForm::Keys {
                        pause: g.pause_key.as_deref().unwrap_or(""),
                        skip: g.skip.as_ref().map_or("", |(k, _)| k.as_str()),
                        last: g.lastjob_key.as_deref().unwrap_or(""),
                    },
                };
                let due = g.skip.as_ref().map_or(0, |(_, d)| *d);
                Layout { queue, index, overlap, due, form }
            })
            .collect();
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(RELEASE_SCRIPT.get_hash()).arg(1 + 2 * indexes.len() + queues.len()).arg(self.queues_key());
        for ix in &indexes {
            cmd.arg(&ix.pauses).arg(&ix.skips);
        }
        for queue in &queues {
            cmd.arg(queue);
        }
        cmd.arg(&self.key_prefix).arg(runs.len()).arg(indexes.len());
        for ix in &indexes {
            cmd.arg(&ix.pause_prefix).arg(&ix.skip_prefix).arg(&ix.lastjob_prefix);
        }
        let mut jobs = runs.iter();
        for segment in layouts.chunk_by(|a, b| a.segment() == b.segment()) {
            let (queue, index, overlap, due, form, ends) = segment[0].segment();
            cmd.arg(segment.len()).arg(queue).arg(index).arg(overlap).arg(due).arg(form);
            if let Some((head, tail)) = ends {
                cmd.arg(head).arg(tail);
            }
            for (layout, run) in segment.iter().zip(jobs.by_ref()) {
                match layout.form {
                    GateForm::Escaped { escaped, .. } => cmd.arg(escaped),
                    GateForm::Member(m) => cmd.arg(&run.job_id).arg(m),
                    GateForm::Keys { pause, skip, last } => cmd.arg(&run.job_id).arg(pause).arg(skip).arg(last),
                };
            }
        }
        Ok(ReleaseCall { cmd, runs: runs.len() })
    }

    /// Sends a release call built ahead for `runs` (the same runs, in the same order) and
    /// answers as [`RqWriter::release_many`], but for its follow-up
    /// ([`RqWriter::follow_up`]), which the caller sends when it suits it — right after, or
    /// once the rest of a burst is written. A Redis that lost its scripts (a restart, `SCRIPT
    /// FLUSH`) gets the script loaded and the call once more.
    pub async fn send_release(&self, call: &ReleaseCall, runs: &[PreparedRun]) -> Result<Released, RqError> {
        if runs.len() != call.runs {
            return Err(RqError::Invalid {
                field: "release",
                reason: format!("a call built for {} runs sent with {}", call.runs, runs.len()),
            });
        }
        if runs.is_empty() {
            return Ok(Released { answers: Vec::new(), by_release: Vec::new() });
        }
        let mut conn = self.conn.clone();
        let listed: Vec<Value> = match call.cmd.query_async(&mut conn).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                RELEASE_SCRIPT.load_async(&mut conn).await?;
                call.cmd.query_async(&mut conn).await?
            }
            res => res?,
        };
        let replies = answers_in_full(listed, runs.len())?;
        // 6: not staged (answered by the full enqueue below); else decided by this call.
        let by_release: Vec<bool> = replies.iter().map(|r| !matches!(r, Value::Int(6))).collect();
        let not_staged: Vec<usize> = (0..runs.len()).filter(|&i| !by_release[i]).collect();
        let mut answers: Vec<Result<EnqueueOutcome, RqError>> = replies.into_iter().map(outcome).collect();
        if !not_staged.is_empty() {
            let full: Vec<PreparedRun> = not_staged.iter().map(|&i| runs[i].clone()).collect();
            for (i, answer) in not_staged.into_iter().zip(self.enqueue_many(&full).await?) {
                answers[i] = answer;
            }
        }
        Ok(Released { answers, by_release })
    }

    /// What the release script leaves to after it ([`RqWriter::send_release`]), for the runs
    /// it queued, in one pipeline: `PERSIST` each job hash (staged hashes expire), and `MSET`
    /// the last job of the runs with overlap `allow` — nothing reads a last job at the instant
    /// but the overlap check of a `skip` or `replace` schedule, whose runs record theirs inside
    /// the atomic step. Both were a third of Redis' time at the instant (`docs/performance.md`). The runs
    /// are enqueued whatever this answers, so a failure is logged, not returned: the hashes
    /// then keep the staged TTL ([`super::STAGED_HASH_MIN_TTL_SECS`]) and the schedules' next
    /// overlap check sees the job before.
    pub async fn follow_up(&self, runs: &[PreparedRun], released: &Released) {
        let mut pipe = redis::pipe();
        let mut mset = redis::cmd("MSET");
        let (mut persisted, mut recorded) = (0, 0);
        let decided = runs.iter().zip(&released.answers).zip(&released.by_release).filter(|(_, by)| **by);
        for ((run, answer), _) in decided {
            let Ok(outcome) = answer else { continue };
            if !outcome.is_enqueued() {
                continue;
            }
            pipe.cmd("PERSIST").arg(self.job_key(&run.job_id)).ignore();
            persisted += 1;
            let g = &run.gates;
            if let (OverlapGate::Allow, Some(key)) = (g.overlap, g.lastjob_key.as_deref())
                && !key.is_empty()
            {
                mset.arg(key).arg(&run.job_id);
                recorded += 1;
            }
        }
        if recorded > 0 {
            pipe.add_command(mset).ignore();
        }
        if persisted == 0 {
            return;
        }
        let mut conn = self.conn.clone();
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            warn!(runs = persisted, error = %e,
                "released jobs not made permanent (they expire with their staged TTL) and last jobs not recorded");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rq::{Claim, Gates, IdForm, RqJob, job_id, job_id_in};
    use chrono::Utc;

    fn run(pause: &str, skip: &str, last: Option<&str>) -> PreparedRun {
        let job = RqJob::new("j1", "default", "mod.func");
        let gates = Gates {
            pause_key: Some(pause.into()),
            skip: Some((skip.into(), 1_900_000_000)),
            lastjob_key: last.map(Into::into),
            overlap: OverlapGate::Allow,
            index: None,
        };
        let claim = Claim { key: "b:s:claim:j1".into(), ttl_secs: 60 };
        PreparedRun::new(&job, claim, Utc::now()).expect("valid run").with_gates(gates)
    }

    /// Only a run whose three gate keys are its index's prefixes + one schedule id is sent by
    /// that id; any other shape is sent with its keys, so the script never derives a wrong key.
    #[test]
    fn a_run_is_sent_by_schedule_id_only_when_every_gate_key_derives_from_it() {
        let ix = GateIndex {
            pauses: "b:s:pauses".into(),
            pause_prefix: "b:s:pause:".into(),
            skips: "b:s:skips".into(),
            skip_prefix: "b:s:skip:".into(),
            lastjob_prefix: "b:s:lastjob:".into(),
        };
        let derived = run("b:s:pause:TS-1", "b:s:skip:TS-1", Some("b:s:lastjob:TS-1"));
        assert_eq!(member(&derived, &ix), Some("TS-1"));
        assert_eq!(member(&run("b:s:pause:TS-1", "b:s:skip:TS-2", Some("b:s:lastjob:TS-1")), &ix), None);
        assert_eq!(member(&run("b:s:pause:TS-1", "b:s:skip:TS-1", Some("b:t:lastjob:TS-1")), &ix), None);
        assert_eq!(member(&run("b:s:pause:TS-1", "b:s:skip:TS-1", None), &ix), None);
        assert_eq!(member(&run("other:TS-1", "b:s:skip:TS-1", Some("b:s:lastjob:TS-1")), &ix), None);
    }

    /// The id is cut only around its escaped schedule right before the due instant, and the
    /// three parts are always the whole id.
    #[test]
    fn an_id_is_split_around_its_escaped_schedule() {
        let due = chrono::DateTime::from_timestamp(1_900_000_000, 0).expect("instant");
        for schedule in ["TS-1", "it's 100%", "a_2db", "na\u{ef}ve", "x"] {
            let id = job_id("site.local", schedule, due);
            let (head, escaped, tail) = split_id(&id, schedule).expect("daemon id");
            assert_eq!(format!("{head}{escaped}{tail}"), id);
            assert_eq!((head, tail), ("btu-site_2elocal-", "-20300317T174640Z"));
            assert_eq!(escaped, escape(schedule));
        }
        // The Frappe form, with a `-` in the site name.
        let id = job_id_in(IdForm::SitePrefixed, "my-site.local", "TS-1", due);
        assert_eq!(split_id(&id, "TS-1"), Some(("my-site.local||btu-", "TS_2d1", "-20300317T174640Z")));
        assert_eq!(split_id("btu-s-TS_2d1-20300317T174640Z", "TS-2"), None);
        assert_eq!(split_id("short", "a-much-longer-schedule"), None);
        assert_eq!(split_id("nodash", "nodash"), None);
        assert_eq!(split_id("\u{20ac}-x", "\u{20ac}"), None, "escaped form differs, no panic on char boundaries");
    }

    /// The release answers only the runs not released; every other run reads as released, and a
    /// list that names no run of the call is an error, not a wrong answer.
    #[test]
    fn sparse_answers_are_expanded_to_one_per_run() {
        let listed = vec![Value::Int(2), Value::Int(0), Value::Int(4), Value::Int(6)];
        let full = answers_in_full(listed, 4).expect("answers");
        assert_eq!(full, vec![Value::Int(1), Value::Int(0), Value::Int(1), Value::Int(6)]);
        assert_eq!(answers_in_full(Vec::new(), 2).expect("answers"), vec![Value::Int(1); 2]);
        for bad in [vec![Value::Int(0), Value::Int(1)], vec![Value::Int(3), Value::Int(1)], vec![Value::Int(1)]] {
            assert!(answers_in_full(bad, 2).is_err());
        }
    }
}
