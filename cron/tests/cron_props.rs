//! Property tests of the cron engine against an independent brute-force reference.
//!
//! The reference shares no code with `btu_cron`: it builds field sets from a structured
//! description of the expression (the same description renders the text the engine parses),
//! walks every wall-clock minute of a four-day span around a real DST transition (2024-2040),
//! matches the fields naively and resolves each match with the Vixie/cronie rule by hand.

mod cron_support;

use btu_cron::{CronError, DstGap, DstOverlap, LocalSchedule};
use chrono::{DateTime, Duration, Utc};
use cron_support::{RefDst, Spec, TestExpr, ZONES, first_difference, reference_runs_with, spec_strategy, transitions};
use proptest::prelude::*;

fn check(
    zone_ix: usize,
    tr_ix: usize,
    e: &TestExprParts,
    start_kind: u8,
    start_pick: i64,
    dst: RefDst,
) -> Result<(), TestCaseError> {
    let zone = ZONES[zone_ix];
    let trs = transitions(zone);
    let (at, shift) = trs[tr_ix % trs.len()];
    let expr = e.build(zone, at);
    let gap = if dst.gap_skip { DstGap::Skip } else { DstGap::Shift };
    let overlap = DstOverlap::ALL[usize::from(dst.overlap)];
    let sched = match LocalSchedule::parse(&expr.text, zone) {
        Ok(sched) => sched.with_dst(gap, overlap),
        Err(CronError::NeverMatches { .. }) => {
            // Rejected as never matching: no date in four centuries may match either.
            prop_assert!(!expr.any_date_matches(1970, 2400), "{:?} wrongly rejected", expr.text);
            return Ok(());
        }
        Err(err) => return Err(TestCaseError::fail(format!("{} rejected: {err}", expr.text))),
    };
    let w0 = at - Duration::hours(30);
    let w1 = at + Duration::hours(30);
    let runs = reference_runs_with(&expr, zone, w0, w1, dst);

    // Start instants that matter: random, around the transition, one overlap/gap length after
    // it, exactly on a run, and one second either side of a run.
    let s = match start_kind % 5 {
        0 => w0 + Duration::seconds(start_pick.rem_euclid(60 * 3600)),
        1 => at + Duration::seconds(start_pick.rem_euclid(7) - 3),
        2 => at + Duration::seconds(shift.abs() + start_pick.rem_euclid(3) - 1),
        k => match runs.len() {
            0 => at,
            n => {
                runs[start_pick.rem_euclid(n as i64) as usize]
                    + Duration::seconds(if k == 3 { 0 } else { start_pick.rem_euclid(3) - 1 })
            }
        },
    };
    let want: Vec<DateTime<Utc>> = runs.iter().copied().filter(|&u| u > s).collect();
    let got: Vec<DateTime<Utc>> = sched.runs_after(s).take_while(|&u| u < w1).collect();
    if let Some(diff) = first_difference(&got, &want) {
        return Err(TestCaseError::fail(format!(
            "expr {:?} zone {zone} {gap}/{overlap} start {s} transition {at}: {diff}",
            expr.text
        )));
    }

    let before: Option<DateTime<Utc>> = runs.iter().copied().rfind(|&u| u <= s);
    let last = sched.last_at_or_before(s);
    match before {
        Some(b) => prop_assert_eq!(last, Some(b), "last_at_or_before {:?} {} at {}", expr.text, zone, s),
        None => {
            prop_assert!(last.is_none_or(|l| l < w0), "last_at_or_before {:?} {} at {}: {:?}", expr.text, zone, s, last)
        }
    }
    Ok(())
}

/// The random part of an expression; hours, days and months are drawn relative to the
/// transition so that most cases actually have runs near it.
#[derive(Debug, Clone)]
struct TestExprParts {
    second: Option<Spec>,
    minute: Spec,
    hour: Spec,
    dom: Spec,
    month: Spec,
    dow: Spec,
    year: Option<Spec>,
}

impl TestExprParts {
    fn build(&self, zone: &str, at: DateTime<Utc>) -> TestExpr {
        TestExpr::around(
            zone,
            at,
            self.second.as_ref(),
            &self.minute,
            &self.hour,
            &self.dom,
            &self.month,
            &self.dow,
            self.year.as_ref(),
        )
    }
}

fn parts() -> impl Strategy<Value = TestExprParts> {
    (
        prop::option::weighted(0.2, spec_strategy()),
        spec_strategy(),
        spec_strategy(),
        spec_strategy(),
        spec_strategy(),
        spec_strategy(),
        prop::option::weighted(0.1, spec_strategy()),
    )
        .prop_map(|(second, minute, hour, dom, month, dow, year)| TestExprParts {
            second,
            minute,
            hour,
            dom,
            month,
            dow,
            year,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn runs_match_the_brute_force_reference_around_transitions(
        zone_ix in 0..ZONES.len(),
        tr_ix in 0usize..1000,
        e in parts(),
        start_kind in 0u8..5,
        start_pick in any::<i64>(),
    ) {
        check(zone_ix, tr_ix, &e, start_kind, start_pick, RefDst::default())?;
    }

    /// The same against the reference under every `dst_gap` and `dst_overlap` policy.
    #[test]
    fn dst_policies_match_the_brute_force_reference(
        zone_ix in 0..ZONES.len(),
        tr_ix in 0usize..1000,
        e in parts(),
        start_kind in 0u8..5,
        start_pick in any::<i64>(),
        gap_skip in any::<bool>(),
        overlap in 0u8..4,
    ) {
        check(zone_ix, tr_ix, &e, start_kind, start_pick, RefDst { gap_skip, overlap })?;
    }
}

#[test]
fn every_zone_has_the_transitions_the_issue_names() {
    for zone in ZONES {
        let n = transitions(zone).len();
        match *zone {
            "UTC" | "Asia/Kolkata" => assert!(n > 0), // synthetic checkpoints, no DST
            _ => assert!(n >= 30, "{zone}: only {n} transitions found 2024-2040"),
        }
    }
}
