//! Pure planning decisions: which runs of a schedule to fire now, which runs count as missed,
//! when it runs next, and when a run's timer fires (jitter). No clock, no I/O: `now` is
//! always an argument.
//!
//! The missed-run rule (also in `docs/daemon.md`), by the schedule's `catchup` policy: when a
//! schedule's recorded next run lies in the past (the daemon, Redis or MariaDB was down at that
//! instant), with `latest` (the default) only the latest run at or before now is a candidate.
//! If it is at most `grace` old it is enqueued once (its job id is derived from the due
//! instant, so an earlier enqueue of the same run is recognised); otherwise it is skipped.
//! Every older missed run is skipped. With `all`, every missed run at most `grace` old is
//! enqueued, oldest first (at most [`MAX_CATCHUP_RUNS`], the latest ones); with `none`, none
//! is (a run fired on time is not missed and still runs). Then the schedule plans its first run
//! strictly after now.
//!
//! With jitter, "now" is judged from the run's jittered instant: a run whose timer fired at
//! due + d is on time, and the rule above is applied at `now - d`.

use chrono::{DateTime, TimeDelta, Utc};

use crate::cron::LocalSchedule;
use crate::policy::Catchup;

/// The most missed runs `catchup = all` enqueues at once (the latest ones; older ones are
/// skipped): a per-second schedule with a day of grace would otherwise send 86,400 jobs.
pub const MAX_CATCHUP_RUNS: usize = 1000;

/// What to do with a schedule whose recorded next run is `recorded` (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// Runs to enqueue now (on time or caught up within grace), oldest first.
    pub fire: Vec<DateTime<Utc>>,
    /// Missed runs that are not enqueued: `(first, last)` of the skipped span.
    pub skipped: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The run after `now` (None: the expression has no further run).
    pub next: Option<DateTime<Utc>>,
}

/// Decides for a schedule whose recorded next run is `recorded` at instant `now`.
///
/// - no record → plan from now, nothing fired (new schedules get no catch-up);
/// - record in the future → keep it;
/// - record at or before now → the missed-run rule above, by `catchup`.
pub fn resume(
    schedule: &LocalSchedule,
    recorded: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    grace: TimeDelta,
    catchup: Catchup,
) -> Resume {
    let Some(recorded) = recorded else {
        return Resume { fire: Vec::new(), skipped: None, next: schedule.next_after(now) };
    };
    if recorded > now {
        return Resume { fire: Vec::new(), skipped: None, next: Some(recorded) };
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
    let mut fire = match catchup {
        // On time is not missed: `none` still fires it.
        Catchup::None => Vec::from_iter((latest == recorded && now - recorded < ON_TIME).then_some(recorded)),
        Catchup::Latest => Vec::from_iter((now - latest <= grace).then_some(latest)),
        Catchup::All => within_grace(schedule, recorded, latest, now - grace),
    };
    if fire.is_empty() {
        return Resume { fire, skipped: Some((recorded, latest)), next };
    }
    let first = fire[0];
    let skipped = (first > recorded).then(|| (recorded, previous_run(schedule, recorded, first)));
    fire.shrink_to_fit();
    Resume { fire, skipped, next }
}

/// A run fired less than this after its instant is on time (not a catch-up, for `none`).
pub const ON_TIME: TimeDelta = TimeDelta::seconds(1);

/// [`resume`]'s answer for a run fired on time, known ahead: the run recorded at `due`,
/// judged at `now`, whose schedule runs next at `after` (its next run after `due`). When it
/// fires less than [`ON_TIME`] and at most `grace` after `due`, and `after` lies past `now`,
/// `resume` fires exactly `[due]`, skips nothing and plans `after`, whatever the catch-up
/// policy: `Some(after)`. Otherwise `None` (ask `resume`). This lets the planning of the next
/// run be done before the instant, so that at the instant a staged run is only released.
pub fn on_time_next(
    after: Option<DateTime<Utc>>,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
    grace: TimeDelta,
) -> Option<Option<DateTime<Utc>>> {
    let lag = now - due;
    let on_time = lag >= TimeDelta::zero() && lag < ON_TIME && lag <= grace && after.is_none_or(|a| a > now);
    on_time.then_some(after)
}

/// The runs in `[max(recorded, oldest), latest]`, oldest first, at most
/// [`MAX_CATCHUP_RUNS`] (the latest ones).
fn within_grace(
    schedule: &LocalSchedule,
    recorded: DateTime<Utc>,
    latest: DateTime<Utc>,
    oldest: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    // Walk back from the latest: a long outage of a frequent schedule is not walked in full.
    let mut runs = Vec::new();
    let mut at = Some(latest);
    while let Some(t) = at.filter(|t| *t >= recorded && *t >= oldest) {
        runs.push(t);
        if runs.len() == MAX_CATCHUP_RUNS {
            break;
        }
        at = schedule.last_at_or_before(t - TimeDelta::seconds(1));
    }
    runs.reverse();
    runs
}

/// The jitter of one run: d in `[0, jitter_secs)` seconds (millisecond steps) derived from
/// the site, the schedule and the due instant only, so every daemon computes the same d.
/// FNV-1a 64 with a fixed basis and a murmur3 finaliser: stable across Rust releases and
/// machines, unlike `std`'s `RandomState`.
pub fn jitter(site: &str, schedule: &str, due: DateTime<Utc>, jitter_secs: u32) -> TimeDelta {
    if jitter_secs == 0 {
        return TimeDelta::zero();
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(site.as_bytes());
    eat(&[0x1f]);
    eat(schedule.as_bytes());
    eat(&[0x1f]);
    eat(&due.timestamp().to_le_bytes());
    eat(&due.timestamp_subsec_nanos().to_le_bytes());
    // murmur3 fmix64: every input bit reaches the low bits the modulo keeps.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    let span_ms = u64::from(jitter_secs) * 1000;
    // < 86,400,000: fits an i64.
    TimeDelta::milliseconds((h % span_ms) as i64)
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

    fn resume(s: &LocalSchedule, rec: Option<DateTime<Utc>>, now: DateTime<Utc>, grace: TimeDelta) -> Resume {
        super::resume(s, rec, now, grace, Catchup::Latest)
    }

    #[test]
    fn new_schedule_plans_from_now_without_catch_up() {
        let r = resume(&sched("*/10 * * * *"), None, at("2030-01-01T00:05:00Z"), GRACE);
        assert_eq!(r, Resume { fire: vec![], skipped: None, next: Some(at("2030-01-01T00:10:00Z")) });
    }

    #[test]
    fn future_record_is_kept() {
        let r = resume(&sched("*/10 * * * *"), Some(at("2030-01-01T00:10:00Z")), at("2030-01-01T00:05:00Z"), GRACE);
        assert!(r.fire.is_empty());
        assert_eq!(r.next, Some(at("2030-01-01T00:10:00Z")));
    }

    #[test]
    fn on_time_fire() {
        let r = resume(&sched("* * * * * *"), Some(at("2030-01-01T00:00:05Z")), at("2030-01-01T00:00:05.003Z"), GRACE);
        assert_eq!(
            r,
            Resume { fire: vec![at("2030-01-01T00:00:05Z")], skipped: None, next: Some(at("2030-01-01T00:00:06Z")) }
        );
    }

    #[test]
    fn missed_within_grace_fires_once_latest() {
        // Hourly at :00, recorded 00:00, now 00:04 → catch up 00:00.
        let r = resume(&sched("0 * * * *"), Some(at("2030-01-01T00:00:00Z")), at("2030-01-01T00:04:00Z"), GRACE);
        assert_eq!(
            r,
            Resume { fire: vec![at("2030-01-01T00:00:00Z")], skipped: None, next: Some(at("2030-01-01T01:00:00Z")) }
        );
        // Every minute, recorded 00:00, now 00:03:30 → catch up only 00:03, skip 00:00–00:02.
        let r = resume(&sched("* * * * *"), Some(at("2030-01-01T00:00:00Z")), at("2030-01-01T00:03:30Z"), GRACE);
        assert_eq!(r.fire, vec![at("2030-01-01T00:03:00Z")]);
        assert_eq!(r.skipped, Some((at("2030-01-01T00:00:00Z"), at("2030-01-01T00:02:00Z"))));
        assert_eq!(r.next, Some(at("2030-01-01T00:04:00Z")));
    }

    #[test]
    fn missed_beyond_grace_is_skipped() {
        let r = resume(&sched("0 * * * *"), Some(at("2030-01-01T00:00:00Z")), at("2030-01-01T00:06:00Z"), GRACE);
        assert_eq!(
            r,
            Resume {
                fire: vec![],
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
            prop_assert!(r.fire.len() <= 1);
            if let Some(&f) = r.fire.first() {
                prop_assert!(f >= recorded && f <= now && now - f <= GRACE);
                prop_assert_eq!(s.next_after(f).is_some_and(|n| n > now), true);
            } else {
                prop_assert!(r.skipped.is_some());
            }
            prop_assert!(r.next.is_some_and(|n| n > now));
        }

        /// `catchup = all`: exactly the runs in [recorded, now] at most grace old, oldest
        /// first, each once; `none`: nothing unless on time; every policy plans the run after now.
        #[test]
        fn catchup_policies(rec_off in 0i64..20_000, lag in 0i64..2_000, expr_i in 0usize..4, grace in 0i64..900) {
            let exprs = ["*/3 * * * * *", "*/7 * * * *", "0 * * * *", "15 3 * * *"];
            let s = sched(exprs[expr_i]);
            let grace = TimeDelta::seconds(grace);
            let recorded = s.next_after(at("2030-03-01T00:00:00Z") + TimeDelta::seconds(rec_off)).unwrap();
            let now = recorded + TimeDelta::seconds(lag);
            let all = super::resume(&s, Some(recorded), now, grace, Catchup::All);
            let mut want: Vec<_> = s.runs_after(recorded - TimeDelta::seconds(1)).take_while(|t| *t <= now)
                .filter(|t| now - *t <= grace).collect();
            if want.len() > MAX_CATCHUP_RUNS {
                want.drain(..want.len() - MAX_CATCHUP_RUNS);
            }
            prop_assert_eq!(&all.fire, &want);
            let none = super::resume(&s, Some(recorded), now, grace, Catchup::None);
            let on_time = now - recorded < ON_TIME && s.next_after(recorded).is_some_and(|n| n > now);
            prop_assert_eq!(none.fire.len(), usize::from(on_time));
            let latest = super::resume(&s, Some(recorded), now, grace, Catchup::Latest);
            prop_assert_eq!(latest.fire.last(), all.fire.last().filter(|_| !latest.fire.is_empty()));
            for r in [&all, &none, &latest] {
                prop_assert_eq!(r.next, s.next_after(now));
                prop_assert_eq!(r.skipped.is_some(), r.fire.first() != Some(&recorded));
            }
        }

        /// Jitter stays in [0, N), depends only on (site, schedule, due), and spreads.
        #[test]
        /// The fast path agrees with `resume` wherever it answers, for every policy.
        fn on_time_next_is_resume(
            start in 0i64..2_000_000_000, lag_ms in 0i64..3_000, expr_i in 0usize..4, grace_s in 0i64..5, c in 0usize..3,
        ) {
            // A zone with DST: the next run after a due instant may be 23 or 25 hours away.
            let exprs = ["* * * * * *", "*/5 * * * * *", "30 2 * * *", "*/7 * * * *"];
            let s = LocalSchedule::parse(exprs[expr_i], "America/Los_Angeles").unwrap();
            let catchup = [Catchup::Latest, Catchup::All, Catchup::None][c];
            let base = DateTime::from_timestamp(start, 0).expect("in range");
            if let Some(due) = s.next_after(base) {
                let now = due + TimeDelta::milliseconds(lag_ms);
                let grace = TimeDelta::seconds(grace_s);
                if let Some(next) = on_time_next(s.next_after(due), due, now, grace) {
                    let r = super::resume(&s, Some(due), now, grace, catchup);
                    prop_assert_eq!(r, Resume { fire: vec![due], skipped: None, next });
                }
            }
        }

        #[test]
        fn jitter_is_bounded_and_deterministic(secs in 0i64..4_000_000_000, n in 1u32..=86_400) {
            let due = DateTime::from_timestamp(secs, 0).unwrap();
            let d = jitter("site1.local", "TS-1", due, n);
            prop_assert!(d >= TimeDelta::zero() && d < TimeDelta::seconds(i64::from(n)));
            prop_assert_eq!(d, jitter("site1.local", "TS-1", due, n));
            prop_assert_eq!(jitter("site1.local", "TS-1", due, 0), TimeDelta::zero());
        }
    }

    /// Daemons of different builds must agree on every jitter: the value is pinned.
    const PINNED: i64 = 58_599;

    #[test]
    fn jitter_spreads_and_is_pinned() {
        // The value is part of the contract between daemons of different builds: pinned.
        let due = at("2030-01-01T00:00:00Z");
        assert_eq!(jitter("s", "a", due, 60).num_milliseconds(), PINNED);
        let ds: std::collections::BTreeSet<i64> =
            (0..200).map(|i| jitter("s", &format!("TS-{i}"), due, 60).num_milliseconds()).collect();
        assert!(ds.len() > 190, "{}", ds.len());
        let mean = ds.iter().sum::<i64>() / ds.len() as i64;
        assert!((20_000..40_000).contains(&mean), "{mean}");
        assert_ne!(jitter("s", "a", due, 60), jitter("t", "a", due, 60));
    }

    #[test]
    fn catchup_all_enqueues_each_missed_run_oldest_first() {
        let s = sched("* * * * *");
        let r = super::resume(&s, Some(at("2030-01-01T00:00:00Z")), at("2030-01-01T00:10:30Z"), GRACE, Catchup::All);
        let want: Vec<_> = (6..=10).map(|m| at(&format!("2030-01-01T00:{m:02}:00Z"))).collect();
        assert_eq!(r.fire, want);
        assert_eq!(r.skipped, Some((at("2030-01-01T00:00:00Z"), at("2030-01-01T00:05:00Z"))));
        assert_eq!(r.next, Some(at("2030-01-01T00:11:00Z")));
        let r = super::resume(&s, Some(at("2030-01-01T00:00:00Z")), at("2030-01-01T00:10:30Z"), GRACE, Catchup::None);
        assert!(r.fire.is_empty());
        assert_eq!(r.skipped, Some((at("2030-01-01T00:00:00Z"), at("2030-01-01T00:10:00Z"))));
        // On time is not missed: `none` still fires it.
        let r = super::resume(&s, Some(at("2030-01-01T00:00:00Z")), at("2030-01-01T00:00:00.2Z"), GRACE, Catchup::None);
        assert_eq!(r.fire, vec![at("2030-01-01T00:00:00Z")]);
    }
}
