//! The per-run checks the enqueue script makes at the due instant, atomically with the claim
//! (`docs/rq.md`, "Gates"): pause, skip-by-request and the overlap policy. Pure data; the
//! script ([`super::script`]) applies them.

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
}
