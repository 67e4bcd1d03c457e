//! After a Redis master change (Sentinel): the runs enqueued lately, kept and sent again.
//!
//! Redis replicates asynchronously: a run the old master took just before the failover may
//! not have reached the replica that became the master, and the old master's copy is dropped
//! when it is turned into a replica. So with Sentinel the engine keeps the runs it enqueued in
//! the last [`RESEND_WINDOW`] and, at a master change, sends them again. The claim and the job
//! hash make that idempotent: a run the new master has answers "already enqueued" and is left
//! alone; a lost one is written again (one line per run) with its history entry.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tracing::{info, warn};

use super::store::rfc3339;
use crate::rq::{HistoryAppend, PreparedRun, RqWriter};

/// How far back runs are sent again after a master change: the replication lag at the
/// failover plus the time until the link notices the change (the sentinels naming another
/// master, a `READONLY` answer or a closed connection: about a second).
pub(super) const RESEND_WINDOW: Duration = Duration::from_secs(10);
/// Runs per script call when sending again.
const BATCH: usize = 200;

/// A run as it was enqueued.
#[derive(Clone)]
pub(super) struct SentRun {
    pub schedule: Arc<str>,
    pub job_id: String,
    pub due: DateTime<Utc>,
    pub history: Option<HistoryAppend>,
    pub run: PreparedRun,
    /// When Redis answered.
    pub done_at: DateTime<Utc>,
}

/// The runs enqueued in the last [`RESEND_WINDOW`], oldest first.
#[derive(Default)]
pub(super) struct Recent {
    runs: VecDeque<SentRun>,
}

impl Recent {
    pub fn push(&mut self, run: SentRun) {
        self.runs.push_back(run);
    }

    /// Drops the runs older than [`RESEND_WINDOW`].
    pub fn forget_old(&mut self, now: DateTime<Utc>) {
        let horizon = now - TimeDelta::from_std(RESEND_WINDOW).unwrap_or(TimeDelta::MAX);
        while self.runs.front().is_some_and(|r| r.done_at < horizon) {
            self.runs.pop_front();
        }
    }

    /// Sends the kept runs again through `writer` (the new master), in a spawned task.
    pub fn resend(&mut self, writer: RqWriter) {
        self.forget_old(Utc::now());
        if self.runs.is_empty() {
            return;
        }
        let runs: Vec<SentRun> = self.runs.iter().cloned().collect();
        tokio::spawn(send_again(writer, runs));
    }
}

/// Sends runs again and logs what the new master lacked.
async fn send_again(writer: RqWriter, runs: Vec<SentRun>) {
    let payloads: Vec<PreparedRun> = runs.iter().map(|r| r.run.clone()).collect();
    let mut outcomes = Vec::with_capacity(payloads.len());
    for chunk in payloads.chunks(BATCH) {
        match writer.enqueue_many(chunk).await {
            Ok(o) => outcomes.extend(o),
            Err(e) => {
                warn!(runs = runs.len(), error = %e, "runs not re-sent after the master change");
                return;
            }
        }
    }
    let mut history = Vec::new();
    let (mut again, mut present) = (0usize, 0usize);
    for (SentRun { schedule, job_id, due, history: h, .. }, outcome) in runs.iter().zip(outcomes) {
        match outcome {
            Ok(o) if o.is_enqueued() => {
                again += 1;
                warn!(schedule = %schedule, job_id = %job_id, due = %rfc3339(*due),
                    "run lost with the old master (not replicated); enqueued again on the new master");
                history.extend(h.clone());
            }
            // Already decided there (claim or job hash), or decided now by a gate (paused,
            // skipped): the new master knows the run.
            Ok(_) => present += 1,
            Err(e) => warn!(schedule = %schedule, job_id = %job_id, error = %e, "run not re-sent"),
        }
    }
    if let Err(e) = writer.append_history(&history).await {
        warn!(runs = history.len(), error = %e, "history entries of re-sent runs not written");
    }
    info!(
        checked = runs.len(),
        already_there = present,
        enqueued_again = again,
        window_secs = RESEND_WINDOW.as_secs(),
        "last runs re-sent to the new master"
    );
}
