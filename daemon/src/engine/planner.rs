//! Pure planning decisions: which run of a schedule to fire now, which runs count as missed,
//! and when it runs next. No clock, no I/O: `now` is always an argument.
//!
//! The missed-run rule (also in `docs/daemon.md`): when a schedule's recorded next run lies in
//! the past (the daemon, Redis or MariaDB was down at that instant), only the latest run at or
//! before now is a candidate. If it is at most `grace` old it is enqueued once (its job id is
//! derived from the due instant, so an earlier enqueue of the same run is recognised); otherwise
//! it is skipped. Every older missed run is skipped. Then the schedule plans its first run
//! strictly after now. So there is never more than one catch-up per schedule.

use chrono::{DateTime, TimeDelta, Utc};

use crate::cron::LocalSchedule;

/// What to do with a schedule whose recorded next run is `recorded` (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// Run to enqueue now (on time or caught up within grace).
    pub fire: Option<DateTime<Utc>>,
    /// Missed runs that are not enqueued: `(first, last)` of the skipped span.
    pub skipped: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The run after `now` (None: the expression has no further run).
    pub next: Option<DateTime<Utc>>,
}

/// Decides for a schedule whose recorded next run is `recorded` at instant `now`.
///
/// - no record → plan from now, nothing fired (new schedules get no catch-up);
/// - record in the future → keep it;
/// - record at or before now → the missed-run rule above.
pub fn resume(
    schedule: &LocalSchedule,
    recorded: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    grace: TimeDelta,
) -> Resume {
    let Some(recorded) = recorded else {
        return Resume { fire: None, skipped: None, next: schedule.next_after(now) };
    };
    if recorded > now {
        return Resume { fire: None, skipped: None, next: Some(recorded) };
    }
    // Fast path, the normal case of a timer firing on time: the recorded run is the only one
    // at or before now.
    let after = schedule.next_after(recorded);
    let latest = match after {
        Some(a) if a > now => recorded,
        _ => schedule.last_at_or_before(now).filter(|l| *l >= recorded).unwrap_or(recorded),
    };
    let next = match after {
        Some(a) if a > now => Some(a),
        _ => schedule.next_after(now),
    };
    if now - latest <= grace {
        let skipped = (latest > recorded).then(|| (recorded, previous_run(schedule, recorded, latest)));
        Resume { fire: Some(latest), skipped, next }
    } else {
        Resume { fire: None, skipped: Some((recorded, latest)), next }
    }
}

/// The last run strictly before `latest`, at or after `first` (for log text only).
fn previous_run(schedule: &LocalSchedule, first: DateTime<Utc>, latest: DateTime<Utc>) -> DateTime<Utc> {
    schedule.last_at_or_before(latest - TimeDelta::seconds(1)).filter(|p| *p >= first).unwrap_or(first)
}

/// The newest `max` runs of the skipped span `first..=last` (as [`Resume::skipped`] gives
/// it), oldest first: the instants a history records as skipped_missed. Walks back from
/// `last`, so a long outage costs `max` steps, not one per missed run.
pub fn missed_runs(
    schedule: &LocalSchedule,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    max: usize,
) -> Vec<DateTime<Utc>> {
    let mut runs = Vec::new();
    let mut at = Some(last).filter(|l| *l >= first);
    while let Some(t) = at {
        if runs.len() == max {
            break;
        }
        runs.push(t);
        at = schedule.last_at_or_before(t - TimeDelta::seconds(1)).filter(|p| *p >= first && *p < t);
    }
    runs.reverse();
    runs
}

/// How long a claim key must live: the same run can only be attempted again inside the
/// catch-up window (grace) after its due instant, or by a second daemon at about the same
/// time; twice the grace plus an hour of slack for clock skew covers both without keeping
/// a key per run of a per-second schedule for days.
pub fn claim_ttl_secs(grace: TimeDelta) -> u64 {
    let grace = grace.num_seconds().max(0) as u64;
    grace.saturating_mul(2).saturating_add(3600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).unwrap()
    }
    fn sched(expr: &str) -> LocalSchedule {
        LocalSchedule::parse(expr, "UTC").unwrap()
    }
    const GRACE: TimeDelta = TimeDelta::seconds(300);

    #[test]
    fn new_schedule_plans_from_now_without_catch_up() {
        let r = resume(&sched("*/10 * * * *"), None, at("2030-01-01T00:05:00Z"), GRACE);
        assert_eq!(r, Resume { fire: None, skipped: None, next: Some(at("2030-01-01T00:10:00Z")) });
    }

    #[test]
    fn future_record_is_kept() {
        let r = resume(&sched("*/10 * * * *"), Some(at("2030-01-01T00:10:00Z")), at("2030-01-01T00:05:00Z"), GRACE);
        assert_eq!(r.fire, None);
        assert_eq!(r.next, Some(at("2030-01-01T00:10:00Z")));
    }

    #[test]
    fn on_time_fire() {
        let r = resume(&sched("* * * * * *"), Some(at("2030-01-01T00:00:05Z")), at("2030-01-01T00:00:05.003Z"), GRACE);
        assert_eq!(
            r,
            Resume { fire: Some(at("2030-01-01T00:00:05Z")), skipped: None, next: Some(at("2030-01-01T00:00:06Z")) }
        );
    }

    #[test]
    fn missed_within_grace_fires_once_latest() {
        // Hourly at :00, recorded 00:00, now 00:04 → catch up 00:00.
        let r = resume(&sched("0 * * * *"), Some(at("2030-01-01T00:00:00Z")), at("2030-01-01T00:04:00Z"), GRACE);
        assert_eq!(
            r,
            Resume { fire: Some(at("2030-01-01T00:00:00Z")), skipped: None, next: Some(at("2030-01-01T01:00:00Z")) }
        );
        // Every minute, recorded 00:00, now 00:03:30 → catch up only 00:03, skip 00:00–00:02.
        let r = resume(&sched("* * * * *"), Some(at("2030-01-01T00:00:00Z")), at("2030-01-01T00:03:30Z"), GRACE);
        assert_eq!(r.fire, Some(at("2030-01-01T00:03:00Z")));
        assert_eq!(r.skipped, Some((at("2030-01-01T00:00:00Z"), at("2030-01-01T00:02:00Z"))));
        assert_eq!(r.next, Some(at("2030-01-01T00:04:00Z")));
    }

    #[test]
    fn missed_beyond_grace_is_skipped() {
        let r = resume(&sched("0 * * * *"), Some(at("2030-01-01T00:00:00Z")), at("2030-01-01T00:06:00Z"), GRACE);
        assert_eq!(
            r,
            Resume {
                fire: None,
                skipped: Some((at("2030-01-01T00:00:00Z"), at("2030-01-01T00:00:00Z"))),
                next: Some(at("2030-01-01T01:00:00Z"))
            }
        );
    }

    #[test]
    fn missed_runs_are_the_newest_of_the_span_oldest_first() {
        let s = sched("* * * * *");
        let (first, last) = (at("2030-01-01T00:00:00Z"), at("2030-01-01T00:02:00Z"));
        assert_eq!(missed_runs(&s, first, last, 10), vec![first, at("2030-01-01T00:01:00Z"), last]);
        assert_eq!(missed_runs(&s, first, last, 2), vec![at("2030-01-01T00:01:00Z"), last]);
        assert_eq!(missed_runs(&s, first, first, 5), vec![first]);
        assert!(missed_runs(&s, first, last, 0).is_empty());
        // A year of per-second runs costs `max` steps.
        let s = sched("* * * * * *");
        let runs = missed_runs(&s, at("2030-01-01T00:00:00Z"), at("2031-01-01T00:00:00Z"), 3);
        assert_eq!(runs, vec![at("2030-12-31T23:59:58Z"), at("2030-12-31T23:59:59Z"), at("2031-01-01T00:00:00Z")]);
    }

    #[test]
    fn claim_ttl_covers_twice_grace() {
        assert_eq!(claim_ttl_secs(GRACE), 4200);
    }

    proptest! {
        /// Whatever the record and now: at most one run fires, it is not older than grace,
        /// not before the record, not after now; the next run is after now.
        #[test]
        fn at_most_one_catch_up(rec_off in 0i64..20_000, lag in 0i64..20_000, expr_i in 0usize..4) {
            let exprs = ["* * * * * *", "*/7 * * * *", "0 * * * *", "15 3 * * *"];
            let s = sched(exprs[expr_i]);
            let base = at("2030-03-01T00:00:00Z") + TimeDelta::seconds(rec_off);
            let recorded = s.next_after(base).unwrap();
            let now = recorded + TimeDelta::seconds(lag);
            let r = resume(&s, Some(recorded), now, GRACE);
            if let Some(f) = r.fire {
                prop_assert!(f >= recorded && f <= now && now - f <= GRACE);
                prop_assert_eq!(s.next_after(f).is_some_and(|n| n > now), true);
            } else {
                prop_assert!(r.skipped.is_some());
            }
            prop_assert!(r.next.is_some_and(|n| n > now));
        }
    }
}
