//! Hourly / Daily / Weekly / Monthly / Yearly schedules read from real MariaDB: the daemon
//! builds the local cron from the row's fields (ignoring the UTC `cron_string` the BTU app
//! stored on the day of the save) and plans the right UTC instants across New York's DST
//! change of 2027-03-14; a bad field skips only its schedule; an old schema without the
//! frequency columns keeps reading `cron_string`.

mod daemon_support;

use btu::source::{RowOutcome, ScheduleSpec, SkipReason, Source};
use chrono::{DateTime, Utc};
use daemon_support::*;

fn site_config(token: &str, db: &str) -> btu::config::Config {
    config(
        token,
        &format!("[[sites]]\nname = \"{token}.local\"\nhost = \"127.0.0.1\"\nuser = \"root\"\ndatabase = \"{db}\"\n"),
    )
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("instant").with_timezone(&Utc)
}

/// Inserts an enabled schedule of task BTU-00002 as the app saves it: `cron_string` is the
/// app's UTC copy made in winter (New York UTC-5), which the daemon must not use.
async fn add(db: &TestDb, id: &str, frequency: &str, fields: (i64, Option<&str>, Option<&str>, i64, Option<&str>)) {
    let (minute, hour, day_of_week, day_of_month, month) = fields;
    db.exec(
        "INSERT INTO `tabBTU Task Schedule` (name, task, enabled, queue_name, run_frequency, cron_string, \
         minute, hour, day_of_week, day_of_month, month) \
         VALUES (?, 'BTU-00002', 1, 'default', ?, '30 14 * * *', ?, ?, ?, ?, ?)",
        (id, frequency, minute, hour, day_of_week, day_of_month, month),
    )
    .await;
}

fn spec<'a>(rows: &'a [RowOutcome], id: &str) -> &'a ScheduleSpec {
    rows.iter()
        .find_map(|r| match r {
            RowOutcome::Loaded(s) if &*s.id == id => Some(s),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{id} not loaded: {rows:?}"))
}

fn runs(spec: &ScheduleSpec, from: &str, n: usize) -> Vec<DateTime<Utc>> {
    spec.schedule.runs_after(utc(from)).take(n).collect()
}

#[tokio::test]
async fn every_frequency_runs_at_local_time_across_a_dst_change() {
    let token = token();
    let db = TestDb::create("frequency").await;
    // As on a real site: the app's "Time Zone for Scheduling" left at its default (UTC), the
    // site itself in New York. The app reads the frequency fields in the System Settings zone,
    // and so does the daemon.
    db.exec("UPDATE tabSingles SET value = 'UTC' WHERE doctype = 'BTU Configuration' AND field = 'cron_time_zone'", ())
        .await;
    db.exec(
        "UPDATE tabSingles SET value = ? WHERE doctype = 'System Settings' AND field = 'time_zone'",
        ("America/New_York",),
    )
    .await;
    add(&db, "TS-H", "Hourly", (15, None, None, 0, None)).await;
    add(&db, "TS-D", "Daily", (30, Some("9"), None, 0, None)).await;
    add(&db, "TS-W", "Weekly", (0, Some("20"), Some("Monday"), 0, None)).await;
    add(&db, "TS-M", "Monthly", (30, Some("9"), None, 10, None)).await;
    add(&db, "TS-Y", "Yearly", (30, Some("9"), None, 14, Some("MAR"))).await;
    add(&db, "TS-BAD", "Weekly", (0, Some("20"), Some("Funday"), 0, None)).await;
    let cfg = site_config(&token, &db.name);
    let source = Source::all_from_config(&cfg).remove(0);
    let rows = source.load_all().await.expect("load");

    // The local crons actually used.
    let crons: Vec<(&str, &str)> =
        ["TS-H", "TS-D", "TS-W", "TS-M", "TS-Y"].iter().map(|id| (*id, &*spec(&rows, id).cron)).collect();
    assert_eq!(
        crons,
        vec![
            ("TS-H", "15 * * * *"),
            ("TS-D", "30 9 * * *"),
            ("TS-W", "0 20 * * MON"),
            ("TS-M", "30 9 10 * *"),
            ("TS-Y", "30 9 14 MAR *"),
        ]
    );
    // The sample's Daily TS-000001 (02:30 in its zone, stored as "30 10 * * *") too.
    assert_eq!(&*spec(&rows, "TS-000001").cron, "30 2 * * *");
    // Zones: the fields in the site's System Settings zone, Cron Style strings in the app's
    // "Time Zone for Scheduling".
    assert_eq!(&*spec(&rows, "TS-D").zone, "America/New_York");
    assert_eq!(&*spec(&rows, "TS-000001").zone, "America/New_York");
    assert_eq!(&*spec(&rows, "TS-000002").zone, "UTC");

    // Spring forward in New York: Sunday 2027-03-14 02:00 EST -> 03:00 EDT.
    let at = |texts: &[&str]| texts.iter().map(|t| utc(t)).collect::<Vec<_>>();
    assert_eq!(
        runs(spec(&rows, "TS-H"), "2027-03-14T05:30:00Z", 3),
        at(&["2027-03-14T06:15:00Z", "2027-03-14T07:15:00Z", "2027-03-14T08:15:00Z"]),
        "01:15 EST, then 03:15 and 04:15 EDT (02:15 does not exist)"
    );
    assert_eq!(
        runs(spec(&rows, "TS-D"), "2027-03-13T00:00:00Z", 3),
        at(&["2027-03-13T14:30:00Z", "2027-03-14T13:30:00Z", "2027-03-15T13:30:00Z"]),
        "09:30 New York time in winter and in summer"
    );
    assert_eq!(
        runs(spec(&rows, "TS-W"), "2027-03-05T00:00:00Z", 2),
        at(&["2027-03-09T01:00:00Z", "2027-03-16T00:00:00Z"]),
        "Monday 20:00 EST, then Monday 20:00 EDT"
    );
    assert_eq!(
        runs(spec(&rows, "TS-M"), "2027-03-01T00:00:00Z", 2),
        at(&["2027-03-10T14:30:00Z", "2027-04-10T13:30:00Z"])
    );
    assert_eq!(
        runs(spec(&rows, "TS-Y"), "2027-01-01T00:00:00Z", 2),
        at(&["2027-03-14T13:30:00Z", "2028-03-14T13:30:00Z"]),
        "the day of the change itself, after it"
    );

    // A bad field skips that schedule only, naming field and value.
    let bad = rows.iter().find(|r| r.schedule() == "TS-BAD").expect("TS-BAD read");
    let RowOutcome::Skipped { reason: reason @ SkipReason::InvalidFrequency(_), .. } = bad else { panic!("{bad:?}") };
    let text = reason.to_string();
    assert!(text.contains("day_of_week") && text.contains("Funday"), "{text}");
    assert_eq!(reason.code(), "invalid_cron");

    // The stored UTC copy is not part of the schedule: re-saved in summer, nothing changes.
    let before = spec(&rows, "TS-D").fingerprint;
    db.exec("UPDATE `tabBTU Task Schedule` SET cron_string = '30 13 * * *' WHERE name = 'TS-D'", ()).await;
    let RowOutcome::Loaded(after) = source.load_one("TS-D").await.expect("one") else { panic!("TS-D not loaded") };
    assert_eq!((after.fingerprint, &*after.cron), (before, "30 9 * * *"));
    source.close().await;

    // An old schema without the frequency columns: cron_string is the cron, as before.
    for column in ["run_frequency", "minute", "hour", "day_of_week", "day_of_month", "month"] {
        db.exec(&format!("ALTER TABLE `tabBTU Task Schedule` DROP COLUMN `{column}`"), ()).await;
    }
    let source = Source::all_from_config(&cfg).remove(0);
    let rows = source.load_all().await.expect("load old schema");
    assert_eq!(&*spec(&rows, "TS-D").cron, "30 13 * * *");
    assert_eq!(&*spec(&rows, "TS-BAD").cron, "30 14 * * *");
    source.close().await;
    db.drop_db().await;
}
