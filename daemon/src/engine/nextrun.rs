//! Next runs of many schedules from one instant, each parsed schedule searched once.
//!
//! A rebuild batch plans every new or changed schedule from the same `now`, and schedules
//! with the same cron text, zone and DST policies share one parsed [`LocalSchedule`] (the
//! source's interner hands out one `Arc` per combination). On a bench of 100k schedules of a
//! handful of cron strings the cron search then runs a handful of times per batch instead of
//! once per schedule. Pure.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::cron::LocalSchedule;

/// `next_after(now)` of the schedules met so far, by shared schedule.
pub(super) struct NextRuns {
    now: DateTime<Utc>,
    /// Keyed by the shared schedule's address; the `Arc` kept beside the answer holds it
    /// alive, so no other schedule can take that address while it is cached.
    known: HashMap<usize, (Arc<LocalSchedule>, Option<DateTime<Utc>>)>,
}

impl NextRuns {
    /// Next runs after `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        NextRuns { now, known: HashMap::new() }
    }

    /// `schedule.next_after(now)`, searched once per shared schedule. Equal schedules that are
    /// not the same `Arc` are each searched (same answer, only slower).
    pub fn next(&mut self, schedule: &Arc<LocalSchedule>) -> Option<DateTime<Utc>> {
        let key = Arc::as_ptr(schedule) as usize;
        if let Some((_, next)) = self.known.get(&key) {
            return *next;
        }
        let next = schedule.next_after(self.now);
        self.known.insert(key, (schedule.clone(), next));
        next
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::cron::{CronExpr, DstGap, DstOverlap, parse_zone};

    const CRONS: [&str; 8] = [
        "30 2 * * *",
        "0 19 * * MON-FRI",
        "*/15 * * * *",
        "0 0 1 * *",
        "15 8,12,16 * * 1-5",
        "*/7 * * * * *",
        "0 0 29 2 *",
        "0 0 0 1 1 * 2020",
    ];
    const ZONES: [&str; 4] = ["UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe"];

    fn schedule(cron: usize, zone: usize, gap: bool) -> Arc<LocalSchedule> {
        let expr = CronExpr::parse(CRONS[cron]).unwrap();
        let gap = if gap { DstGap::Skip } else { DstGap::default() };
        Arc::new(LocalSchedule::new(expr, parse_zone(ZONES[zone]).unwrap()).with_dst(gap, DstOverlap::default()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Whatever the order and repetition of lookups, each answer is the schedule's own
        /// `next_after(now)`, including a schedule with no further run.
        #[test]
        fn answers_are_each_schedules_next_run(
            now in 1_500_000_000i64..2_500_000_000,
            nanos in 0u32..1_000_000_000,
            pool in proptest::collection::vec((0..CRONS.len(), 0..ZONES.len(), any::<bool>()), 1..6),
            lookups in proptest::collection::vec(0usize..64, 1..40),
        ) {
            let now = DateTime::from_timestamp(now, nanos).unwrap();
            // Two `Arc`s per combination: equal schedules that are not shared also answer right.
            let shared: Vec<Arc<LocalSchedule>> =
                pool.iter().flat_map(|&(c, z, g)| [schedule(c, z, g), schedule(c, z, g)]).collect();
            let mut runs = NextRuns::new(now);
            for i in lookups {
                let s = &shared[i % shared.len()];
                prop_assert_eq!(runs.next(s), s.next_after(now));
            }
        }
    }

    #[test]
    fn a_shared_schedule_is_searched_once() {
        let s = schedule(0, 1, false);
        let now = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
        let mut runs = NextRuns::new(now);
        assert_eq!(runs.next(&s), s.next_after(now));
        assert_eq!(runs.next(&s.clone()), s.next_after(now));
        assert_eq!(runs.known.len(), 1);
        assert_eq!(runs.next(&schedule(0, 1, false)), s.next_after(now));
        assert_eq!(runs.known.len(), 2);
    }
}
