//! One batch of due runs: the script call, the answer per run, and the history entries of
//! the runs this call decided.

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::future::join_all;
use futures_util::stream::FuturesUnordered;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::{debug, info, warn};

use super::store::{HistoryTarget, rfc3339};
use crate::metrics::SiteMetrics;
use crate::outcome::RunOutcome;
use crate::rq::{Claim, EnqueueOutcome, HistoryAppend, PreparedRun, ReleaseCall, RqError, RqWriter};

/// A run ready for the writer, or why its job could not be built (bad data; never sent).
pub(super) type Payload = Result<PreparedRun, RqError>;

/// How a batch is written.
pub(super) enum Write {
    /// Runs nobody staged: claim + job hash + push ([`RqWriter::enqueue_many`]).
    Full,
    /// Runs staged ahead: the release only ([`RqWriter::release_many`]).
    Release,
}

/// A batch of staged runs whose release call was built ahead (`items[i]` is the run
/// `runs[i]`): [`enqueue_batch`] with nothing left to sort out at the instant.
pub(super) struct ReadyRelease {
    pub items: Vec<FireItem>,
    pub runs: Vec<PreparedRun>,
    pub call: ReleaseCall,
}

/// Sends the release batches of one instant, built ahead, as they come in on `batches` (the
/// firing checks each just before: the first leaves at once), and answers as
/// [`enqueue_batch`] for all of them once the channel is closed and every release has
/// answered. One task sends them all, so no call waits behind the engine's own work at the
/// instant (a task spawned per batch waited up to 1.7 ms). Each batch's follow-up
/// ([`RqWriter::follow_up`]) and history entries wait for the whole burst, so that the
/// daemon's work on the first answers does not take CPU from Redis while Redis still writes
/// the rest (2 cores; docs/performance.md); each run's `done_at` is when its own release
/// answered.
pub(super) async fn release_burst(writer: RqWriter, mut batches: UnboundedReceiver<ReadyRelease>) -> Vec<FireResult> {
    let mut sends = FuturesUnordered::new();
    let mut answered = Vec::new();
    let mut open = true;
    loop {
        tokio::select! {
            biased;
            batch = batches.recv(), if open => match batch {
                Some(ReadyRelease { items, runs, call }) => {
                    let writer = writer.clone();
                    sends.push(async move {
                        let sent = writer.send_release(&call, &runs).await;
                        (items, runs, sent, Utc::now())
                    });
                }
                None => open = false,
            },
            Some(done) = sends.next(), if !sends.is_empty() => answered.push(done),
            else => break,
        }
    }
    let finish = answered.into_iter().map(|(items, runs, sent, done_at)| {
        let writer = writer.clone();
        async move {
            let outcomes = match sent {
                Ok(released) => {
                    writer.follow_up(&runs, &released).await;
                    Ok(released.answers)
                }
                Err(e) => Err(e),
            };
            record(&writer, items, runs, Vec::new(), outcomes, done_at).await
        }
    });
    join_all(finish).await.into_iter().flatten().collect()
}

/// One run in a batch.
pub(super) struct FireItem {
    pub site: usize,
    pub id: Arc<str>,
    pub due: DateTime<Utc>,
    /// When it was meant to be enqueued: `due` plus the schedule's jitter for it. Lateness in
    /// the log and the metrics is measured from here.
    pub expected: DateTime<Utc>,
    /// The schedule's next run as planned when this one fired: its plan is only recorded (or
    /// put back) if nothing replanned it since.
    pub planned_next: Option<DateTime<Utc>>,
    pub job_id: String,
    pub on_time: bool,
    /// The schedule's history: after the batch answered, outside the atomic step, the run's
    /// outcome is appended to it (unless another daemon decided the run).
    pub history: HistoryTarget,
    /// skipped_missed entries of the runs missed before this one, appended before its own.
    pub missed: Option<Missed>,
}

/// A batch's answer for one run.
pub(super) struct FireResult {
    pub item: FireItem,
    pub outcome: Result<EnqueueOutcome, RqError>,
    pub done_at: DateTime<Utc>,
    /// The payload the script got (None when it could not be built or the call failed): kept
    /// with Sentinel to send again after a master change.
    pub run: Option<PreparedRun>,
}

/// The skipped_missed entries of one schedule's span of missed runs, recorded by whichever
/// daemon takes `claim` (the claim of the span's first run, which nobody enqueued): with two
/// daemons recovering from the same outage, each instant is recorded once. The first run's
/// claim also keeps a daemon whose clock is behind from still catching that run up.
pub(super) struct Missed {
    pub claim: Claim,
    pub entries: Vec<HistoryAppend>,
}

/// The entries of the spans whose claim this daemon took, in order (a failed claim call is
/// logged and records none: the history is a record, never a decision).
pub(super) async fn claimed_missed(writer: &RqWriter, spans: Vec<Missed>) -> Vec<HistoryAppend> {
    if spans.is_empty() {
        return Vec::new();
    }
    let claims: Vec<(Claim, String)> = spans.iter().map(|m| (m.claim.clone(), "skipped_missed".to_string())).collect();
    match writer.claim_many(&claims).await {
        Ok(won) => spans.into_iter().zip(won).filter(|(_, w)| *w).flat_map(|(m, _)| m.entries).collect(),
        Err(e) => {
            warn!(spans = spans.len(), error = %e, "skipped_missed history entries not written");
            Vec::new()
        }
    }
}

/// The outcome of a run the script answered for.
pub(super) fn run_outcome(o: &EnqueueOutcome) -> RunOutcome {
    match o {
        EnqueueOutcome::Enqueued => RunOutcome::Enqueued,
        EnqueueOutcome::AlreadyClaimed => RunOutcome::DuplicateClaim,
        EnqueueOutcome::SkippedPaused => RunOutcome::SkippedPaused,
        EnqueueOutcome::SkippedByRequest => RunOutcome::SkippedByRequest,
        EnqueueOutcome::SkippedOverlap { .. } => RunOutcome::SkippedOverlap,
        EnqueueOutcome::Replaced { .. } => RunOutcome::Replaced,
    }
}

/// Logs one run's answer (enqueued with its lateness, or why it was not) and reports it to
/// its site's metrics: one line per run.
pub(super) fn report_answer(
    site: &str,
    item: &FireItem,
    o: &EnqueueOutcome,
    done_at: DateTime<Utc>,
    metrics: Option<&SiteMetrics>,
) {
    let outcome = run_outcome(o);
    let (job_id, due) = (&item.job_id, rfc3339(item.due));
    match o {
        EnqueueOutcome::Enqueued | EnqueueOutcome::Replaced { .. } => {
            if let Some(m) = metrics {
                m.enqueued(&item.id, item.expected, done_at, outcome);
            }
            let lateness_ms = (done_at - item.expected).num_milliseconds();
            if let EnqueueOutcome::Replaced { canceled } = o {
                info!(site, schedule = %item.id, job_id = %job_id, due, lateness_ms, canceled = %canceled,
                    "run enqueued, replacing its still-queued previous job (canceled)");
            } else {
                info!(site, schedule = %item.id, job_id = %job_id, due, lateness_ms, "run enqueued");
            }
        }
        EnqueueOutcome::AlreadyClaimed => {
            if let Some(m) = metrics {
                m.run(outcome);
            }
            debug!(site, schedule = %item.id, job_id = %job_id, due,
                "run already decided by an earlier attempt or another daemon");
        }
        skipped => {
            if let Some(m) = metrics {
                m.run(outcome);
            }
            let running = match skipped {
                EnqueueOutcome::SkippedOverlap { running } => Some(running.as_str()),
                _ => None,
            };
            info!(site, schedule = %item.id, job_id = %job_id, due, outcome = outcome.as_str(),
                running, "run not enqueued");
        }
    }
}

/// Appends history entries in one round trip; a failure is logged (the runs stand).
pub(super) async fn append_history(writer: &RqWriter, entries: &[HistoryAppend]) {
    match writer.append_history(entries).await {
        Ok(answers) => {
            for (h, res) in entries.iter().zip(answers) {
                if let Err(e) = res {
                    warn!(history = %h.key, error = %e, "history entry not written; the run's outcome stands");
                }
            }
        }
        Err(e) => warn!(entries = entries.len(), error = %e, "history entries not written; the runs' outcomes stand"),
    }
}

/// Writes one batch of runs with one script call — the release of runs staged ahead, or the
/// full enqueue (`how`) — and answers for every run; runs whose job could not be
/// built never reach Redis. Then appends, in one pipelined round trip, the
/// history entry of every run this call decided (enqueued, replaced, or claimed and skipped
/// by a gate; a run another daemon decided gets none here), each after the skipped_missed
/// entries of the runs missed before it: outside the atomic step, which halves Redis' work
/// per run, and after `done_at` (the enqueue write time the entry records). A crash in
/// between loses history entries, never a run; a failed append is logged, the run stands.
pub(super) async fn enqueue_batch(writer: RqWriter, batch: Vec<(FireItem, Payload)>, how: Write) -> Vec<FireResult> {
    let mut results = Vec::with_capacity(batch.len());
    let (mut items, mut runs) = (Vec::with_capacity(batch.len()), Vec::with_capacity(batch.len()));
    for (item, run) in batch {
        match run {
            Ok(run) => {
                items.push(item);
                runs.push(run);
            }
            Err(e) => results.push(FireResult { item, outcome: Err(e), done_at: Utc::now(), run: None }),
        }
    }
    write(writer, items, runs, results, how).await
}

/// The script call of `runs` (`items[i]` is the run `runs[i]`) and the history entries of the
/// runs it decided; answers `results` (runs answered before the call) with theirs.
async fn write(
    writer: RqWriter,
    items: Vec<FireItem>,
    runs: Vec<PreparedRun>,
    results: Vec<FireResult>,
    how: Write,
) -> Vec<FireResult> {
    let outcomes = match how {
        Write::Full => writer.enqueue_many(&runs).await,
        Write::Release => writer.release_many(&runs).await,
    };
    record(&writer, items, runs, results, outcomes, Utc::now()).await
}

/// The answers of one script call (`outcomes[i]` for `runs[i]`, or the call's error for all),
/// answered at `done_at`, as results after `results`, and the history entries of the runs it
/// decided (and of their spans of missed runs).
async fn record(
    writer: &RqWriter,
    items: Vec<FireItem>,
    runs: Vec<PreparedRun>,
    mut results: Vec<FireResult>,
    outcomes: Result<Vec<Result<EnqueueOutcome, RqError>>, RqError>,
    done_at: DateTime<Utc>,
) -> Vec<FireResult> {
    match outcomes {
        Ok(outcomes) => {
            results.extend(items.into_iter().zip(outcomes).zip(runs).map(|((item, outcome), run)| FireResult {
                item,
                outcome,
                done_at,
                run: Some(run),
            }))
        }
        Err(e) => results.extend(items.into_iter().map(|item| FireResult {
            item,
            outcome: Err(e.clone()),
            done_at,
            run: None,
        })),
    }
    let spans: Vec<Missed> = results.iter_mut().filter_map(|r| r.item.missed.take()).collect();
    let mut missed = claimed_missed(writer, spans).await.into_iter().peekable();
    let mut history = Vec::new();
    for r in &results {
        // A span's entries precede its schedule's own entry (same key; spans kept in order).
        while let Some(h) = missed.next_if(|h| h.key == r.item.history.key) {
            history.push(h);
        }
        match &r.outcome {
            Ok(EnqueueOutcome::AlreadyClaimed) | Err(_) => {}
            Ok(o) => {
                let it = &r.item;
                history.extend(it.history.entry_expected(&it.job_id, it.due, it.expected, run_outcome(o), done_at))
            }
        }
    }
    history.extend(missed);
    if !history.is_empty() {
        append_history(writer, &history).await;
    }
    results
}
