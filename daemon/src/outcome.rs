//! What happened to a due run: the one list of outcomes that `btu_runs_total`'s `outcome`
//! label, the logs and (with issue 9) `btu history` share. A new outcome is a new variant
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
    /// Another daemon (or an earlier attempt) had already claimed and enqueued the run.
    DuplicateClaim,
}

impl RunOutcome {
    /// Every outcome, in the order the metrics list them.
    pub const ALL: [RunOutcome; 3] = [RunOutcome::Enqueued, RunOutcome::SkippedMissed, RunOutcome::DuplicateClaim];

    /// The label value and history spelling, e.g. `"skipped_missed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Enqueued => "enqueued",
            RunOutcome::SkippedMissed => "skipped_missed",
            RunOutcome::DuplicateClaim => "duplicate_claim",
        }
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
    }
}
