//! Which planned instants an operator action names, pure: the next N runs `skip_next` skips,
//! and the runs `backfill` enqueues. Both read the schedule (cron, zone and DST rule) through
//! the cron crate, so they name exactly the instants the plan fires.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};

use crate::cron::LocalSchedule;

/// The next `count` planned instants from `first` (the plan's next run, included) on that are
/// not in `already` (unix seconds of instants skipped before), soonest first. Fewer when the
/// schedule has no more runs.
pub fn skip_instants(
    schedule: &LocalSchedule,
    first: DateTime<Utc>,
    already: &BTreeSet<i64>,
    count: usize,
) -> Vec<DateTime<Utc>> {
    std::iter::once(first)
        .chain(schedule.runs_after(first))
        .filter(|t| !already.contains(&t.timestamp()))
        .take(count)
        .collect()
}

/// Why [`backfill_instants`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackfillRange {
    #[error("end {end} is not after start {start}")]
    Empty { start: String, end: String },
    #[error("more than max {max} planned runs in [{start}, {end}): narrow the range or raise max")]
    TooMany { max: usize, start: String, end: String },
}

/// Every planned instant in `[start, end)`, oldest first; more than `max` is refused whole
/// (never silently cut: a cut list would look like the whole range was done).
pub fn backfill_instants(
    schedule: &LocalSchedule,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    max: usize,
) -> Result<Vec<DateTime<Utc>>, BackfillRange> {
    let text = |t: DateTime<Utc>| super::store::rfc3339(t);
    if end <= start {
        return Err(BackfillRange::Empty { start: text(start), end: text(end) });
    }
    // Runs fall on whole seconds: "strictly after start - 1 s" includes a run at `start`.
    let runs = schedule.runs_after(start - TimeDelta::seconds(1)).skip_while(|t| *t < start).take_while(|t| *t < end);
    let found: Vec<_> = runs.take(max.saturating_add(1)).collect();
    if found.len() > max {
        return Err(BackfillRange::TooMany { max, start: text(start), end: text(end) });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).expect("instant")
    }

    fn hourly() -> LocalSchedule {
        LocalSchedule::parse("0 * * * *", "UTC").expect("cron")
    }

    #[test]
    fn skip_takes_the_next_runs_after_those_already_skipped() {
        let s = hourly();
        let first = at("2025-01-01T10:00:00Z");
        assert_eq!(skip_instants(&s, first, &BTreeSet::new(), 2), vec![first, at("2025-01-01T11:00:00Z")]);
        let already: BTreeSet<i64> = [first.timestamp(), at("2025-01-01T12:00:00Z").timestamp()].into();
        assert_eq!(skip_instants(&s, first, &already, 2), vec![at("2025-01-01T11:00:00Z"), at("2025-01-01T13:00:00Z")]);
    }

    #[test]
    fn skip_follows_the_dst_rule_of_the_schedule() {
        // 02:30 does not exist in Los Angeles on 2027-03-14: that day's run is at 03:00 PDT.
        let s = LocalSchedule::parse("30 2 * * *", "America/Los_Angeles").expect("cron");
        let first = at("2027-03-13T10:30:00Z");
        assert_eq!(skip_instants(&s, first, &BTreeSet::new(), 2), vec![first, at("2027-03-14T10:00:00Z")]);
    }

    #[test]
    fn backfill_is_half_open_and_refuses_more_than_max() {
        let s = hourly();
        let (start, end) = (at("2025-01-01T10:00:00Z"), at("2025-01-01T13:00:00Z"));
        assert_eq!(
            backfill_instants(&s, start, end, 10),
            Ok(vec![start, at("2025-01-01T11:00:00Z"), at("2025-01-01T12:00:00Z")])
        );
        assert_eq!(backfill_instants(&s, start, end, 3).map(|v| v.len()), Ok(3));
        assert!(matches!(backfill_instants(&s, start, end, 2), Err(BackfillRange::TooMany { max: 2, .. })));
        assert!(matches!(backfill_instants(&s, end, start, 2), Err(BackfillRange::Empty { .. })));
        // A start between runs begins at the next run.
        assert_eq!(
            backfill_instants(&s, at("2025-01-01T10:00:00.5Z"), end, 10),
            Ok(vec![at("2025-01-01T11:00:00Z"), at("2025-01-01T12:00:00Z")])
        );
    }

    proptest! {
        /// Backfill names exactly the instants the plan would fire in the range.
        #[test]
        fn backfill_matches_the_plan(start_secs in 1_700_000_000i64..1_800_000_000, hours in 0i64..200) {
            let s = LocalSchedule::parse("*/20 1-3 * * *", "Europe/Berlin").expect("cron");
            let start = DateTime::from_timestamp(start_secs, 0).expect("instant");
            let end = start + TimeDelta::hours(hours) + TimeDelta::seconds(1);
            let planned: Vec<_> = s.runs_after(start - TimeDelta::seconds(1)).take_while(|t| *t < end).collect();
            prop_assert_eq!(backfill_instants(&s, start, end, 10_000), Ok(planned));
        }

        /// Skipped instants are planned runs, distinct from those skipped before, in order.
        #[test]
        fn skip_never_repeats_an_instant(n in 1usize..20, k in 0usize..10) {
            let s = hourly();
            let first = at("2025-03-01T00:00:00Z");
            let already: BTreeSet<i64> = s.runs_after(first).step_by(2).take(k).map(|t| t.timestamp()).collect();
            let chosen = skip_instants(&s, first, &already, n);
            prop_assert_eq!(chosen.len(), n);
            prop_assert!(chosen.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(chosen.iter().all(|t| !already.contains(&t.timestamp())));
        }
    }
}
