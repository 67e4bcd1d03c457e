//! Unit tests of parsing, errors and worked daylight-saving examples.
//! (Property tests against a brute-force reference live in `cron/tests/cron_props.rs`.)

use super::*;
use chrono::{DateTime, Utc};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("test instant").with_timezone(&Utc)
}

fn next_n(expr: &str, zone: &str, from: &str, n: usize) -> Vec<String> {
    let sched = LocalSchedule::parse(expr, zone).expect("test schedule");
    sched.runs_after(t(from)).take(n).map(|u| u.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).collect()
}

fn err(expr: &str) -> String {
    CronExpr::parse(expr).expect_err("must be rejected").to_string()
}

#[test]
fn parses_the_dialect() {
    let c = CronExpr::parse("  */15\t9-17  *  JAN-mar,dec  mon-FRI ").unwrap();
    assert_eq!(c.source(), "*/15\t9-17  *  JAN-mar,dec  mon-FRI");
    assert_eq!(c.minutes, 1 | 1 << 15 | 1 << 30 | 1 << 45);
    assert_eq!(c.hours, ((1 << 18) - 1) & !((1 << 9) - 1));
    assert_eq!(c.months, 0b1_0000_0000_1110);
    assert_eq!(c.dows, 0b011_1110);
    assert!(c.is_wildcard());

    // 0 and 7 are both Sunday; a range may end on Sunday.
    assert_eq!(CronExpr::parse("0 0 * * 7").unwrap().dows, 1);
    assert_eq!(CronExpr::parse("0 0 * * 0").unwrap().dows, 1);
    assert_eq!(CronExpr::parse("0 0 * * FRI-SUN").unwrap().dows, 0b110_0001);
    assert_eq!(CronExpr::parse("0 0 * * 5-7").unwrap().dows, 0b110_0001);
    // `a/n` runs to the field's maximum.
    assert_eq!(CronExpr::parse("10/20 * * * *").unwrap().minutes, 1 << 10 | 1 << 30 | 1 << 50);
    assert_eq!(CronExpr::parse("0 0 1-10/3 * *").unwrap().doms, 1 << 1 | 1 << 4 | 1 << 7 | 1 << 10);
    // 6 and 7 fields.
    let c = CronExpr::parse("*/20 0 12 * * * 2030-2032").unwrap();
    assert_eq!(c.seconds, 1 | 1 << 20 | 1 << 40);
    assert!(c.is_wildcard());
    assert!(c.year_ok(2031) && !c.year_ok(2033));
    assert!(CronExpr::parse("0 0 12 * * * *").unwrap().years.is_none());
}

#[test]
fn classifies_wildcard_and_fixed_jobs() {
    for (expr, wild) in [
        ("* 2 * * *", true),
        ("30 * * * *", true),
        ("*/5 1 * * *", true),
        ("30 2 * * *", false),
        ("0-59 0-23 * * *", false), // a range is fixed-time by the rule
        ("0,30 1,2 * * *", false),
        ("0 30 2 * * *", false),
        ("* 30 2 * * *", true), // 6 fields: the second field counts
        ("*/10 30 2 * * *", true),
        ("@hourly", true),
        ("@daily", false),
        ("@yearly", false),
    ] {
        assert_eq!(CronExpr::parse(expr).unwrap().is_wildcard(), wild, "{expr}");
    }
}

#[test]
fn macros_expand() {
    let same = |a: &str, b: &str| {
        let (a, b) = (CronExpr::parse(a).unwrap(), CronExpr::parse(b).unwrap());
        assert_eq!((a.minutes, a.hours, a.doms, a.months, a.dows), (b.minutes, b.hours, b.doms, b.months, b.dows));
    };
    same("@yearly", "0 0 1 1 *");
    same("@ANNUALLY", "0 0 1 1 *");
    same("@monthly", "0 0 1 * *");
    same("@weekly", "0 0 * * 0");
    same("@daily", "0 0 * * *");
    same("@midnight", "0 0 * * *");
    same("@hourly", "0 * * * *");
}

#[test]
fn every_error_names_the_field_value_and_range() {
    assert_eq!(err(""), "empty cron expression");
    assert_eq!(err(" \t "), "empty cron expression");
    assert_eq!(err("* * * *"), "expected 5, 6 or 7 fields (or a macro such as @daily), found 4");
    assert_eq!(err("* * * * * * * *"), "expected 5, 6 or 7 fields (or a macro such as @daily), found 8");
    assert!(err("@reboot").starts_with("unknown macro '@reboot'"));
    assert_eq!(err("0 24 * * *"), "hour field: 24 is out of range 0-23");
    assert_eq!(err("60 * * * *"), "minute field: 60 is out of range 0-59");
    assert_eq!(err("60 * * * * *"), "second field: 60 is out of range 0-59");
    assert_eq!(err("0 0 0 * *"), "day-of-month field: 0 is out of range 1-31");
    assert_eq!(err("0 0 32 * *"), "day-of-month field: 32 is out of range 1-31");
    assert_eq!(err("0 0 * 13 *"), "month field: 13 is out of range 1-12");
    assert_eq!(err("0 0 * * 8"), "day-of-week field: 8 is out of range 0-7");
    assert_eq!(err("0 0 0 * * * 2100"), "year field: 2100 is out of range 1970-2099");
    assert_eq!(err("0 0 0 * * * 1969"), "year field: 1969 is out of range 1970-2099");
    assert_eq!(err("99999999999999999999 * * * *"), "minute field: '99999999999999999999' is not a number or a name");
    assert_eq!(err("0 0 * FOO *"), "month field: 'FOO' is not a number or a name");
    assert_eq!(err("0 0 * * MONDAY"), "day-of-week field: 'MONDAY' is not a number or a name");
    assert_eq!(err("0 JAN * * *"), "hour field: 'JAN' is not a number or a name");
    assert_eq!(err("0 0 L * *"), "day-of-month field: 'L' is not a number or a name");
    assert_eq!(err("0 0 ? * *"), "day-of-month field: '?' is not a number or a name");
    assert_eq!(err("-5 * * * *"), "minute field: '' is not a number or a name");
    assert_eq!(err("1,,2 * * * *"), "minute field: empty list element");
    assert_eq!(err("1, * * * *"), "minute field: empty list element");
    assert_eq!(err("*/0 * * * *"), "minute field: step '0' is out of range 1-60");
    assert_eq!(err("*/61 * * * *"), "minute field: step '61' is out of range 1-60");
    assert_eq!(err("*/x * * * *"), "minute field: step 'x' is out of range 1-60");
    assert_eq!(err("*/ * * * *"), "minute field: step '' is out of range 1-60");
    assert_eq!(err("0 5-2 * * *"), "hour field: range 5-2 is reversed (start is after end)");
    assert_eq!(err("0 0 * DEC-JAN *"), "month field: range 12-1 is reversed (start is after end)");
    assert_eq!(
        err("0 0 30 2 *"),
        "'0 0 30 2 *' never matches: no date satisfies its day-of-month, month, day-of-week and year fields together"
    );
    assert!(err("0 0 31 4,6,9,11 *").contains("never matches"));
    assert!(err("0 0 0 29 2 * 2025-2027").contains("never matches"));
    // Feb 29 with a year field that holds a leap year is fine, and so is 31 with a long month.
    assert!(CronExpr::parse("0 0 0 29 2 * 2025-2028").is_ok());
    assert!(CronExpr::parse("0 0 31 2,3 *").is_ok());
    // The OR rule makes `30 2` on Mondays satisfiable.
    assert!(CronExpr::parse("0 0 30 2 1").is_ok());
    assert_eq!(parse_zone("Mars/Base").unwrap_err().to_string(), "unknown time zone 'Mars/Base'");
    assert!(LocalSchedule::parse("* * * * *", "Nowhere").is_err());
    assert!(LocalSchedule::parse("* * * * *", " Europe/Dublin ").is_ok());
}

#[test]
fn day_rule_or_when_both_restricted_and_otherwise_and() {
    // 13th of the month OR a Friday.
    let runs = next_n("0 12 13 * 5", "UTC", "2027-01-01T00:00:00Z", 4);
    assert_eq!(runs, ["2027-01-01T12:00:00Z", "2027-01-08T12:00:00Z", "2027-01-13T12:00:00Z", "2027-01-15T12:00:00Z"]);
    // `*/2` in day-of-month starts with `*`: both must match (odd days that are Fridays).
    let runs = next_n("0 12 */2 * 5", "UTC", "2027-01-01T00:00:00Z", 3);
    assert_eq!(runs, ["2027-01-01T12:00:00Z", "2027-01-15T12:00:00Z", "2027-01-29T12:00:00Z"]);
    // Feb 1 or 29 that is a Monday (AND rule through the `*`-prefixed day-of-month): years apart.
    let runs = next_n("0 0 */28 2 1", "UTC", "2025-01-01T00:00:00Z", 4);
    assert_eq!(runs, ["2027-02-01T00:00:00Z", "2038-02-01T00:00:00Z", "2044-02-01T00:00:00Z", "2044-02-29T00:00:00Z"]);
}

#[test]
fn spring_forward_los_angeles_2027() {
    // 2027-03-14 02:00 PST -> 03:00 PDT, i.e. at 10:00Z.
    let la = "America/Los_Angeles";
    assert_eq!(
        next_n("30 2 * * *", la, "2027-03-13T00:00:00Z", 3),
        ["2027-03-13T10:30:00Z", "2027-03-14T10:00:00Z", "2027-03-15T09:30:00Z"]
    );
    // Several gap times collapse into one run; a match at the gap's end is the same run.
    assert_eq!(
        next_n("0,30 2,3 * * *", la, "2027-03-14T09:00:00Z", 3),
        ["2027-03-14T10:00:00Z", "2027-03-14T10:30:00Z", "2027-03-15T09:00:00Z"]
    );
    // Wildcard jobs have no runs in the gap.
    assert_eq!(next_n("*/30 2 * * *", la, "2027-03-13T11:00:00Z", 2), ["2027-03-15T09:00:00Z", "2027-03-15T09:30:00Z"]);
    // Start one second before, exactly on, and after the collapsed run.
    assert_eq!(next_n("30 2 * * *", la, "2027-03-14T09:59:59Z", 1), ["2027-03-14T10:00:00Z"]);
    assert_eq!(next_n("30 2 * * *", la, "2027-03-14T10:00:00Z", 1), ["2027-03-15T09:30:00Z"]);
    let s = LocalSchedule::parse("30 2 * * *", la).unwrap();
    assert_eq!(s.last_at_or_before(t("2027-03-14T10:00:00Z")), Some(t("2027-03-14T10:00:00Z")));
    assert_eq!(s.last_at_or_before(t("2027-03-14T09:59:59Z")), Some(t("2027-03-13T10:30:00Z")));
    let w = LocalSchedule::parse("*/30 2 * * *", la).unwrap();
    assert_eq!(w.last_at_or_before(t("2027-03-15T09:00:00Z")), Some(t("2027-03-15T09:00:00Z")));
    assert_eq!(w.last_at_or_before(t("2027-03-15T08:59:59Z")), Some(t("2027-03-13T10:30:00Z")));
}

#[test]
fn fall_back_los_angeles_2027() {
    // 2027-11-07 02:00 PDT -> 01:00 PST, i.e. at 09:00Z; 01:xx happens at 08:xxZ and 09:xxZ.
    let la = "America/Los_Angeles";
    assert_eq!(next_n("30 1 * * *", la, "2027-11-07T00:00:00Z", 2), ["2027-11-07T08:30:00Z", "2027-11-08T09:30:00Z"]);
    assert_eq!(
        next_n("*/30 1 * * *", la, "2027-11-07T00:00:00Z", 5),
        [
            "2027-11-07T08:00:00Z",
            "2027-11-07T08:30:00Z",
            "2027-11-07T09:00:00Z",
            "2027-11-07T09:30:00Z",
            "2027-11-08T09:00:00Z"
        ]
    );
    // Starting inside the first pass, exactly on a run, and inside the second pass.
    assert_eq!(next_n("*/30 1 * * *", la, "2027-11-07T08:45:00Z", 2), ["2027-11-07T09:00:00Z", "2027-11-07T09:30:00Z"]);
    assert_eq!(next_n("*/30 1 * * *", la, "2027-11-07T08:30:00Z", 1), ["2027-11-07T09:00:00Z"]);
    assert_eq!(next_n("*/30 1 * * *", la, "2027-11-07T09:00:00Z", 1), ["2027-11-07T09:30:00Z"]);
    assert_eq!(next_n("*/30 1 * * *", la, "2027-11-07T09:15:00Z", 1), ["2027-11-07T09:30:00Z"]);
    assert_eq!(next_n("0 1 * * *", la, "2027-11-07T08:30:00Z", 1), ["2027-11-08T09:00:00Z"]);
    assert_eq!(next_n("45 1 * * *", la, "2027-11-07T08:30:00Z", 1), ["2027-11-07T08:45:00Z"]);
    assert_eq!(next_n("30 1 * * *", la, "2027-11-07T09:15:00Z", 1), ["2027-11-08T09:30:00Z"]);
    // A wildcard job started in the first pass after its last first-pass run gets the second pass.
    assert_eq!(
        next_n("0 * * * *", la, "2027-11-07T08:10:00Z", 3),
        ["2027-11-07T09:00:00Z", "2027-11-07T10:00:00Z", "2027-11-07T11:00:00Z"]
    );

    let w = LocalSchedule::parse("*/30 1 * * *", la).unwrap();
    assert_eq!(w.last_at_or_before(t("2027-11-07T09:15:00Z")), Some(t("2027-11-07T09:00:00Z")));
    assert_eq!(w.last_at_or_before(t("2027-11-07T08:59:00Z")), Some(t("2027-11-07T08:30:00Z")));
    assert_eq!(w.last_at_or_before(t("2027-11-07T12:00:00Z")), Some(t("2027-11-07T09:30:00Z")));
    let f = LocalSchedule::parse("30 1 * * *", la).unwrap();
    assert_eq!(f.last_at_or_before(t("2027-11-07T09:45:00Z")), Some(t("2027-11-07T08:30:00Z")));
    assert_eq!(f.last_at_or_before(t("2027-11-07T08:30:00Z")), Some(t("2027-11-07T08:30:00Z")));
}

#[test]
fn never_running_again_is_none_not_a_hang() {
    let s = LocalSchedule::parse("0 0 0 1 1 * 1999", "UTC").unwrap();
    assert_eq!(s.next_after(t("2000-01-01T00:00:00Z")), None);
    assert_eq!(s.last_at_or_before(t("1998-01-01T00:00:00Z")), None);
    assert_eq!(s.last_at_or_before(t("2030-01-01T00:00:00Z")), Some(t("1999-01-01T00:00:00Z")));
    // Only wall times inside one gap: a wildcard job never runs at all.
    let s = LocalSchedule::parse("* 30 2 14 3 * 2027", "America/Los_Angeles").unwrap();
    assert_eq!(s.next_after(t("2027-01-01T00:00:00Z")), None);
    // Extreme start instants do not panic.
    let s = LocalSchedule::parse("* * * * *", "Pacific/Chatham").unwrap();
    assert_eq!(s.next_after(DateTime::<Utc>::MAX_UTC), None);
    assert!(s.last_at_or_before(DateTime::<Utc>::MIN_UTC).is_none());
}

#[test]
fn sub_second_start_and_leap_days() {
    assert_eq!(next_n("0 0 29 2 *", "Europe/London", "2096-03-01T00:00:00.5Z", 1), ["2104-02-29T00:00:00Z"]);
    assert_eq!(next_n("* * * * * *", "UTC", "2030-01-01T00:00:00.999Z", 1), ["2030-01-01T00:00:01Z"]);
}
