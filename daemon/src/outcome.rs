//! What happened to a due run: the one list of outcomes that `btu_runs_total`'s `outcome`
//! label, the logs and the history entries (`btu history`) share. A new outcome is a new variant
//! here and in [`RunOutcome::ALL`]; the metrics export every variant from the start (at 0),
//! so it appears without touching them.

use std::fmt;

/// The outcome of one due run of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunOutcome {
    /// Written to its RQ queue.
    Enqueued,
    /// Skipped by the missed-run rule (the daemon or Redis was away at its instant); counted
    /// once per schedule per catch-up decision, however many instants it covered.
    SkippedMissed,
    /// Another daemon (or an earlier attempt) had already claimed (and decided) the run.
    DuplicateClaim,
    /// Not enqueued: the schedule's overlap policy is `skip` and its previous job was still
    /// queued, deferred, scheduled or started.
    SkippedOverlap,
    /// Not enqueued: the schedule was paused (`btu:<site>:pause:<schedule>` existed).
    SkippedPaused,
    /// Not enqueued: an operator asked to skip this due instant (`btu skip`).
    SkippedByRequest,
    /// Enqueued after cancelling the schedule's previous job, which was still queued
    /// (overlap policy `replace`).
    Replaced,
}

impl RunOutcome {
    /// Every outcome, in the order the metrics list them.
    pub const ALL: [RunOutcome; 7] = [
        RunOutcome::Enqueued,
        RunOutcome::SkippedMissed,
        RunOutcome::DuplicateClaim,
        RunOutcome::SkippedOverlap,
        RunOutcome::SkippedPaused,
        RunOutcome::SkippedByRequest,
        RunOutcome::Replaced,
    ];

    /// The label value and history spelling, e.g. `"skipped_missed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Enqueued => "enqueued",
            RunOutcome::SkippedMissed => "skipped_missed",
            RunOutcome::DuplicateClaim => "duplicate_claim",
            RunOutcome::SkippedOverlap => "skipped_overlap",
            RunOutcome::SkippedPaused => "skipped_paused",
            RunOutcome::SkippedByRequest => "skipped_by_request",
            RunOutcome::Replaced => "replaced",
        }
    }

    /// The outcome spelled `s` (as [`RunOutcome::as_str`] writes it), if any.
    pub fn parse(s: &str) -> Option<RunOutcome> {
        RunOutcome::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// The job was written to its queue (enqueued, or replaced a queued one).
    pub fn is_enqueue(self) -> bool {
        matches!(self, RunOutcome::Enqueued | RunOutcome::Replaced)
    }

    /// Position in [`RunOutcome::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::RunOutcome;

    #[test]
    fn all_lists_every_outcome_at_its_index() {
        for (i, o) in RunOutcome::ALL.iter().enumerate() {
            assert_eq!(o.index(), i, "{o}");
        }
        let names: std::collections::BTreeSet<_> = RunOutcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(names.len(), RunOutcome::ALL.len());
        for o in RunOutcome::ALL {
            assert_eq!(RunOutcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(RunOutcome::parse("bogus"), None);
    }
}
