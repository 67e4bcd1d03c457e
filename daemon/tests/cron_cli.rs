//! The `btu` binary: `next` and `explain` output, and errors (non-zero exit, stderr only).

use std::process::{Command, Output};

fn btu(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_btu")).args(args).output().expect("run btu")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

#[test]
fn next_json_runs_once_at_the_end_of_the_spring_gap() {
    // 02:30 does not exist in Los Angeles on 2027-03-14: the fixed-time job runs at 03:00 PDT.
    let o = btu(&[
        "next",
        "30 2 * * *",
        "--tz",
        "America/Los_Angeles",
        "--from",
        "2027-03-12T00:00:00Z",
        "--count",
        "4",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let runs: Vec<String> = serde_json::from_str(&stdout(&o)).expect("stdout is only a JSON array");
    assert_eq!(runs, ["2027-03-12T10:30:00Z", "2027-03-13T10:30:00Z", "2027-03-14T10:00:00Z", "2027-03-15T09:30:00Z"]);
}

#[test]
fn next_json_in_the_fall_back_overlap() {
    let o = btu(&[
        "next",
        "*/30 1 * * *",
        "--tz",
        "America/Los_Angeles",
        "--from",
        "2027-11-07T08:45:00Z",
        "--count",
        "2",
        "--json",
    ]);
    let runs: Vec<String> = serde_json::from_str(&stdout(&o)).expect("JSON array");
    assert_eq!(runs, ["2027-11-07T09:00:00Z", "2027-11-07T09:30:00Z"]);
    let o = btu(&["next", "@daily", "--from", "2030-01-01T00:00:00Z", "--count", "0", "--json"]);
    assert_eq!(stdout(&o).trim(), "[]");
}

#[test]
fn next_table_shows_local_time_with_offset_beside_utc() {
    let o =
        btu(&["next", "30 2 * * *", "--tz", "America/Los_Angeles", "--from", "2027-03-13T11:00:00Z", "--count", "2"]);
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(text.contains("2027-03-14 03:00:00 -07:00 (PDT)"), "{text}");
    assert!(text.contains("2027-03-14T10:00:00Z"), "{text}");
    assert!(text.contains("fixed-time job"), "{text}");
}

#[test]
fn explain_json_has_the_documented_shape() {
    let o = btu(&[
        "explain",
        "30 2 * * *",
        "--tz",
        "America/Los_Angeles",
        "--from",
        "2027-01-01",
        "--until",
        "2028-01-01",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("stdout is only JSON");
    let windows = v.as_array().expect("array");
    assert_eq!(windows.len(), 3);
    assert_eq!(windows[0]["from"], "2027-01-01T08:00:00Z"); // the date is midnight in --tz
    assert_eq!(
        windows[1],
        serde_json::json!({"from": "2027-03-14T10:00:00Z", "until": "2027-11-07T09:00:00Z", "utc_offset": "-07:00",
                           "utc_crons": ["30 9 * * *"], "instants": ["2027-03-14T10:00:00Z"]})
    );
    for w in windows {
        let keys: Vec<&String> = w.as_object().expect("object").keys().collect();
        assert_eq!(keys.len(), 5);
    }
}

#[test]
fn errors_exit_non_zero_with_nothing_on_stdout() {
    for args in [
        &["next", "0 24 * * *"][..],
        &["next", "* * * * *", "--tz", "Mars/Base", "--json"],
        &["next", "* * * * *", "--from", "yesterday", "--json"],
        &["next", "0 0 30 2 *", "--json"],
        &["explain", "* * * * *", "--from", "2027-13-01", "--json"],
        &["explain", "* * * * *", "--from", "2027-02-01", "--until", "2027-01-01", "--json"],
        &["explain", "@reboot"],
    ] {
        let o = btu(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(o.stdout.is_empty(), "{args:?} printed {:?}", stdout(&o));
        assert!(!o.stderr.is_empty(), "{args:?}: no message");
    }
    let o = btu(&["next", "0 24 * * *"]);
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim(), "btu: hour field: 24 is out of range 0-23");
    let o = btu(&["next", "* * * * *", "--tz", "Mars/Base"]);
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim(), "btu: unknown time zone 'Mars/Base'");
}

#[test]
fn next_and_explain_take_the_dst_policies() {
    let la = ["--tz", "America/Los_Angeles", "--json"];
    let runs = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["next", "30 1 * * *", "--from", "2027-11-07T08:00:00Z", "--count", "2"];
        args.extend(la);
        args.extend(extra);
        serde_json::from_str(&stdout(&btu(&args))).expect("JSON array")
    };
    assert_eq!(runs(&[]), ["2027-11-07T08:30:00Z", "2027-11-08T09:30:00Z"]);
    assert_eq!(runs(&["--dst-overlap", "last"]), ["2027-11-07T09:30:00Z", "2027-11-08T09:30:00Z"]);
    assert_eq!(runs(&["--dst-overlap", "both"]), ["2027-11-07T08:30:00Z", "2027-11-07T09:30:00Z"]);
    let mut args = vec!["next", "30 2 * * *", "--from", "2027-03-13T11:00:00Z", "--count", "1", "--dst-gap", "skip"];
    args.extend(la);
    let gap: Vec<String> = serde_json::from_str(&stdout(&btu(&args))).expect("JSON array");
    assert_eq!(gap, ["2027-03-15T09:30:00Z"]);
    let mut args = vec!["explain", "30 2 * * *", "--from", "2027-03-14", "--until", "2027-03-15", "--dst-gap", "skip"];
    args.extend(la);
    let w: serde_json::Value = serde_json::from_str(&stdout(&btu(&args))).expect("JSON");
    assert_eq!(w[0]["instants"], serde_json::json!([]), "{w}");
    let o = btu(&["next", "30 1 * * *", "--dst-overlap", "twice"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("auto|first|last|both"));
    let o = btu(&["next", "30 1 * * *", "--dst-gap", "skip", "--tz", "America/Los_Angeles"]);
    assert!(stdout(&o).contains("fixed-time job, dst_gap skip, dst_overlap auto"), "{}", stdout(&o));
}
