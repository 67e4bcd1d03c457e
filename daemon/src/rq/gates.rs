//! The per-run checks the enqueue script makes at the due instant, atomically with the claim
//! (`docs/rq.md`, "Gates"): pause, skip-by-request and the overlap policy. Pure data; the
//! script ([`super::script`]) applies them.

use std::sync::Arc;

/// What the script does when the schedule's previous job may still be busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverlapGate {
    /// Enqueue whatever the previous job does.
    #[default]
    Allow,
    /// Do not enqueue while the previous job's `status` is queued, deferred, scheduled or
    /// started.
    Skip,
    /// Cancel a previous job that is still waiting in its queue (removed from the queue,
    /// status `canceled`, added to rq's canceled registry), then enqueue; a started one is
    /// left to finish.
    Replace,
}

impl OverlapGate {
    /// The spelling the script reads.
    pub fn as_str(self) -> &'static str {
        match self {
            OverlapGate::Allow => "allow",
            OverlapGate::Skip => "skip",
            OverlapGate::Replace => "replace",
        }
    }
}

/// A site's indexes of the schedules that have a pause or a skip key (`btu:<site>:pauses`,
/// `btu:<site>:skips`), and the prefixes that turn a member into its key. With it the script
/// reads each index once per call and looks at a run's pause and skip keys only when its
/// schedule is in one: three Redis calls per run fewer at the instant in the usual case of
/// nothing paused or skipped. It is exact because every writer of a pause or skip key adds the
/// schedule to its index in the same MULTI, and a member leaves only when its key is gone,
/// checked atomically (`engine/operator.rs`): the index always covers the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateIndex {
    pub pauses: String,
    pub pause_prefix: String,
    pub skips: String,
    pub skip_prefix: String,
    /// The prefix of the site's last-job keys: the release derives a run's pause, skip and
    /// last-job keys from its schedule id and these prefixes.
    pub lastjob_prefix: String,
}

/// The keys and policy one run is checked against. Every key is optional: a run without
/// gates is enqueued as before (claim, hash, push) and records no last job.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gates {
    /// The schedule's pause key (any type): while it exists, the run is not enqueued.
    pub pause_key: Option<String>,
    /// The schedule's skip ZSET and the run's member in it (the due instant as unix
    /// seconds): a member there is removed and the run is not enqueued.
    pub skip: Option<(String, i64)>,
    /// The schedule's last-job key (a STRING holding the id of its last enqueued job): read
    /// by the overlap check, written when the run is enqueued.
    pub lastjob_key: Option<String>,
    pub overlap: OverlapGate,
    /// The site's gate indexes, which the pause and skip keys are in when they exist (None:
    /// the keys are looked at for every run).
    pub index: Option<Arc<GateIndex>>,
}

impl Gates {
    /// The script's `ix` argument: `1` when the run's site index is in the call (it always is
    /// when the run has one).
    pub(super) fn ix_flag(&self) -> &'static str {
        if self.index.is_some() { "1" } else { "0" }
    }
}
