//! The `explain` property: in every window, the listed UTC expressions evaluated in UTC plus
//! the listed instants give exactly the runs the local schedule has there — checked over whole
//! years for hand-picked hard cases, and for random expressions around random transitions.

mod cron_support;

use btu_cron::explain::{Window, explain};
use btu_cron::{CronError, DstGap, DstOverlap, LocalSchedule};
use chrono::{DateTime, Duration, TimeZone, Utc};
use cron_support::{Spec, TestExpr, ZONES, first_difference, offset_secs, spec_strategy, transitions};
use proptest::prelude::*;

fn runs_in(s: &LocalSchedule, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    s.runs_after(from - Duration::seconds(1)).take_while(|&u| u < until).collect()
}

/// Check the windows tile the range with constant offsets and are exact. Returns an error text.
fn check_windows(
    s: &LocalSchedule,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    windows: &[Window],
) -> Result<(), String> {
    let zone = s.tz();
    if windows.first().map(|w| w.from) != Some(from) || windows.last().map(|w| w.until) != Some(until) {
        return Err("windows do not span the range".into());
    }
    for pair in windows.windows(2) {
        if pair[0].until != pair[1].from || pair[0].utc_offset == pair[1].utc_offset {
            return Err(format!("windows {} and {} do not meet at an offset change", pair[0].from, pair[1].from));
        }
    }
    for w in windows {
        let off = i64::from(w.utc_offset.local_minus_utc());
        if offset_secs(zone, w.from) != off || offset_secs(zone, w.until - Duration::seconds(1)) != off {
            return Err(format!("window {} .. {}: offset is not {}", w.from, w.until, w.utc_offset));
        }
        let mut got: Vec<DateTime<Utc>> = w.instants.clone();
        for cron in &w.utc_crons {
            let utc = LocalSchedule::parse(cron, "UTC").map_err(|e| format!("{cron}: {e}"))?;
            got.extend(runs_in(&utc, w.from, w.until));
        }
        got.sort();
        let n = got.len();
        got.dedup();
        if got.len() != n {
            return Err(format!("window {}: expressions/instants overlap: {:?}", w.from, w.utc_crons));
        }
        let want = runs_in(s, w.from, w.until);
        if let Some(diff) = first_difference(&got, &want) {
            return Err(format!(
                "window {} .. {} ({}) crons {:?} instants {:?}: {diff}",
                w.from, w.until, w.utc_offset, w.utc_crons, w.instants
            ));
        }
    }
    Ok(())
}

fn year(y: i32) -> (DateTime<Utc>, DateTime<Utc>) {
    (Utc.with_ymd_and_hms(y, 1, 1, 0, 0, 0).unwrap(), Utc.with_ymd_and_hms(y + 1, 1, 1, 0, 0, 0).unwrap())
}

#[test]
fn whole_years_are_exact_for_hard_cases() {
    let exprs = [
        "30 2 * * *",     // fixed, inside the spring gap
        "*/30 1,2 * * *", // wildcard around both transitions
        "0,30 0-3 * * *", // fixed, several gap times collapse, overlap first pass only
        "15 23 * * 1-5",  // crosses UTC midnight in both directions with weekdays
        "0 0 1 * *",      // day 1 becomes the previous month's last day west of UTC
        "30 18 * * *",    // evening: the next UTC day east of UTC
        "0 9 31 * *",
        "45 1 13 * 5",        // crontab OR rule: the 13th or a Friday
        "0 0 */2 * 1",        // AND rule with a restricted, `*`-prefixed day of month
        "*/20 30 2 * * *",    // seconds
        "0 0 12 29 2 * 2028", // year field
        "*/7 * * * *",        // dense
    ];
    let cases = [
        ("America/Los_Angeles", 2027),
        ("Australia/Lord_Howe", 2026),
        ("Pacific/Chatham", 2030),
        ("Antarctica/Troll", 2025),
        ("America/Havana", 2028),
        ("Asia/Kolkata", 2028),
        ("Europe/Dublin", 2024),
    ];
    for (zone, y) in cases {
        let (from, until) = year(y);
        for expr in exprs {
            for gap in DstGap::ALL {
                for overlap in DstOverlap::ALL {
                    let s = LocalSchedule::parse(expr, zone).unwrap().with_dst(gap, overlap);
                    let windows = explain(&s, from, until).unwrap();
                    if let Err(e) = check_windows(&s, from, until, &windows) {
                        panic!("{expr} in {zone} {y} ({gap}, {overlap}): {e}");
                    }
                }
            }
        }
    }
}

#[test]
fn worked_example_los_angeles_2027() {
    let s = LocalSchedule::parse("30 2 * * *", "America/Los_Angeles").unwrap();
    let (from, until) = year(2027);
    let w = explain(&s, from, until).unwrap();
    assert_eq!(w.len(), 3);
    assert_eq!(w[0].utc_crons, ["30 10 * * *"]);
    assert_eq!(w[1].from, Utc.with_ymd_and_hms(2027, 3, 14, 10, 0, 0).unwrap());
    assert_eq!(w[1].utc_crons, ["30 9 * * *"]);
    // 02:30 does not exist on 2027-03-14: the run moves to 03:00 PDT = 10:00Z.
    assert_eq!(w[1].instants, [Utc.with_ymd_and_hms(2027, 3, 14, 10, 0, 0).unwrap()]);
    assert_eq!(w[2].utc_offset.to_string(), "-08:00");
    let json = serde_json::to_value(&w[1]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "from": "2027-03-14T10:00:00Z", "until": "2027-11-07T09:00:00Z", "utc_offset": "-07:00",
            "utc_crons": ["30 9 * * *"], "instants": ["2027-03-14T10:00:00Z"]
        })
    );
}

#[test]
fn bad_ranges_are_errors() {
    let s = LocalSchedule::parse("* * * * *", "UTC").unwrap();
    let (from, until) = year(2027);
    assert!(explain(&s, until, from).unwrap_err().to_string().contains("must be after"));
    let (_, far) = year(2100);
    assert!(explain(&s, from, far).unwrap_err().to_string().contains("1970"));
}

#[derive(Debug, Clone)]
struct Parts([Spec; 6]);

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Random expressions over ~3 months around a random transition (2024-2040).
    #[test]
    fn random_expressions_are_exact_around_transitions(
        zone_ix in 0..ZONES.len(),
        tr_ix in 0usize..1000,
        specs in prop::array::uniform6(spec_strategy()),
        with_seconds in any::<bool>(),
        days_before in 1i64..60,
        gap_ix in 0usize..2,
        overlap_ix in 0usize..4,
    ) {
        let parts = Parts(specs);
        let zone = ZONES[zone_ix];
        let trs = transitions(zone);
        let (at, _) = trs[tr_ix % trs.len()];
        let [sec, min, hour, dom, month, dow] = &parts.0;
        let e = TestExpr::around(zone, at, with_seconds.then_some(sec), min, hour, dom, month, dow, None);
        let s = match LocalSchedule::parse(&e.text, zone) {
            Ok(s) => s.with_dst(DstGap::ALL[gap_ix], DstOverlap::ALL[overlap_ix]),
            Err(CronError::NeverMatches { .. }) => return Ok(()),
            Err(err) => return Err(TestCaseError::fail(format!("{}: {err}", e.text))),
        };
        let from = at - Duration::days(days_before) + Duration::seconds(days_before * 997);
        let until = at + Duration::days(40);
        let windows = explain(&s, from, until).map_err(|err| TestCaseError::fail(err.to_string()))?;
        if let Err(msg) = check_windows(&s, from, until, &windows) {
            return Err(TestCaseError::fail(format!("{:?} in {zone} {:?}: {msg}", e.text, (gap_ix, overlap_ix))));
        }
    }
}
