//! The fixed messages behind the golden vectors in `tests/vectors/` (repo root), shared by the
//! golden test and the decoder fuzz test. The Python tests of `btu_client` read the same files.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::PathBuf;

use btu_protocol::*;

pub enum Golden {
    Request(RequestEnvelope),
    Response(ResponseEnvelope),
}

impl Golden {
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        match self {
            Golden::Request(r) => encode_request(r),
            Golden::Response(r) => encode_response(r),
        }
    }
}

pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("tests").join("vectors")
}

fn s(x: &str) -> String {
    x.to_owned()
}

fn req(id: u64, request: Request) -> Golden {
    Golden::Request(RequestEnvelope::new(id, request))
}

fn resp(id: u64, response: Response) -> Golden {
    Golden::Response(ResponseEnvelope::new(id, response))
}

fn next(utc: &str, local: &str) -> NextRun {
    NextRun { utc: s(utc), local: s(local) }
}

fn pause_info() -> PauseInfo {
    PauseInfo {
        until: Some(s("2025-12-27T08:00:00Z")),
        note: Some(s("holidays: office closed")),
        at: s("2025-01-15T14:00:00Z"),
        uid: Some(1000),
        pid: Some(4242),
    }
}

/// Name (file stem) and message of every golden vector.
pub fn golden_cases() -> Vec<(&'static str, Golden)> {
    let site = || Some(s("site1.local"));
    vec![
        ("request_ping", req(1, Request::Ping)),
        ("request_notify_one", req(2, Request::Notify { schedules: vec![s("TS-0001")], site: None })),
        (
            "request_notify_many",
            req(3, Request::Notify { schedules: vec![s("TS-0001"), s("TS-0002"), s("Zeitplan-Ü")], site: site() }),
        ),
        ("request_cancel", req(4, Request::Cancel { schedule: s("TS-0001"), site: None })),
        ("request_rebuild", req(5, Request::Rebuild { site: None })),
        ("request_status", req(6, Request::Status)),
        ("request_upcoming", req(7, Request::Upcoming { schedule: None, site: None, count: 10 })),
        ("request_upcoming_one", req(8, Request::Upcoming { schedule: Some(s("TS-0001")), site: site(), count: 3 })),
        ("request_history", req(9, Request::History { schedule: s("TS-0001"), site: None, count: 20 })),
        ("request_run_now", req(10, Request::RunNow { schedule: s("TS-0001"), site: None })),
        (
            "request_pause",
            req(
                12,
                Request::Pause {
                    schedule: s("TS-0001"),
                    site: site(),
                    until: Some(s("2025-12-27T08:00:00Z")),
                    note: Some(s("holidays: office closed")),
                },
            ),
        ),
        ("request_pause_bare", req(13, Request::Pause { schedule: s("TS-0001"), site: None, until: None, note: None })),
        ("request_resume", req(14, Request::Resume { schedule: s("TS-0001"), site: None })),
        ("request_skip_next", req(15, Request::SkipNext { schedule: s("TS-0001"), site: None, count: 2 })),
        (
            "request_backfill",
            req(
                16,
                Request::Backfill {
                    schedule: s("TS-0001"),
                    site: site(),
                    start: s("2025-01-13T00:00:00Z"),
                    end: s("2025-01-15T00:00:00+01:00"),
                    max: 1000,
                    dry_run: true,
                },
            ),
        ),
        ("request_audit", req(17, Request::Audit { schedule: None, site: None, count: 50 })),
        ("request_audit_one", req(18, Request::Audit { schedule: Some(s("TS-0001")), site: site(), count: 5 })),
        // A client of a future protocol version: the daemon must answer unsupported_version.
        ("request_ping_v3", Golden::Request(RequestEnvelope { v: 3, id: 11, request: Request::Ping })),
        // A client of the previous version (1): refused the same way, never misread.
        ("request_ping_v1", Golden::Request(RequestEnvelope { v: 1, id: 1, request: Request::Ping })),
        ("response_pong", resp(1, Response::Pong(Pong { daemon_version: s("0.1.0"), protocol_version: 2 }))),
        (
            "response_notified",
            resp(
                2,
                Response::Notified(Notified {
                    results: vec![ScheduleState {
                        site: s("site1.local"),
                        schedule: s("TS-0001"),
                        runs: true,
                        reason: None,
                        time_zone: Some(s("Europe/Berlin")),
                        // Across the spring-forward change: the local offset moves from +01 to +02.
                        next_runs: vec![
                            next("2025-03-30T00:30:00Z", "2025-03-30T01:30:00+01:00"),
                            next("2025-03-31T00:30:00Z", "2025-03-31T02:30:00+02:00"),
                        ],
                        settings: None,
                    }],
                }),
            ),
        ),
        (
            "response_notified_many",
            resp(
                3,
                Response::Notified(Notified {
                    results: vec![
                        ScheduleState {
                            site: s("site1.local"),
                            schedule: s("TS-0001"),
                            runs: true,
                            reason: None,
                            time_zone: Some(s("America/New_York")),
                            next_runs: vec![next("2025-01-15T14:00:00Z", "2025-01-15T09:00:00-05:00")],
                            settings: None,
                        },
                        ScheduleState {
                            site: s("site1.local"),
                            schedule: s("TS-0002"),
                            runs: false,
                            reason: Some(s("disabled")),
                            time_zone: Some(s("UTC")),
                            next_runs: vec![],
                            settings: None,
                        },
                        ScheduleState {
                            site: s("site1.local"),
                            schedule: s("Zeitplan-Ü"),
                            runs: false,
                            reason: Some(s("invalid cron: hour field: 24 is out of range 0-23")),
                            time_zone: None,
                            next_runs: vec![],
                            settings: None,
                        },
                    ],
                }),
            ),
        ),
        (
            "response_notified_settings",
            resp(
                12,
                Response::Notified(Notified {
                    results: vec![ScheduleState {
                        site: s("site1.local"),
                        schedule: s("TS-0001"),
                        runs: true,
                        reason: None,
                        time_zone: Some(s("America/Los_Angeles")),
                        next_runs: vec![next("2027-11-07T09:30:00Z", "2027-11-07T01:30:00-08:00")],
                        settings: Some(policy_settings()),
                    }],
                }),
            ),
        ),
        (
            "response_status_defaults",
            resp(
                13,
                Response::Status(Status {
                    daemon_version: s("0.1.0"),
                    protocol_version: 1,
                    started_at: s("2025-01-15T08:00:00Z"),
                    uptime_secs: 3600,
                    source: s("mariadb://127.0.0.1:3306"),
                    sites: vec![],
                    defaults: Some(Settings {
                        overlap: s("allow"),
                        catchup: s("latest"),
                        jitter_secs: 0,
                        dst_gap: s("shift"),
                        dst_overlap: s("auto"),
                    }),
                }),
            ),
        ),
        (
            "response_upcoming_settings",
            resp(
                14,
                Response::Upcoming(Upcoming {
                    runs: vec![UpcomingRun {
                        site: s("site1.local"),
                        schedule: s("TS-0001"),
                        task: None,
                        utc: s("2027-11-07T09:30:00Z"),
                        local: s("2027-11-07T01:30:00-08:00"),
                        paused: false,
                        skipped: false,
                        settings: Some(policy_settings()),
                    }],
                }),
            ),
        ),
        (
            "response_cancelled",
            resp(4, Response::Cancelled(Cancelled { site: s("site1.local"), schedule: s("TS-0001"), removed: true })),
        ),
        (
            "response_rebuilt",
            resp(
                5,
                Response::Rebuilt(Rebuilt {
                    sites: vec![s("site1.local")],
                    schedules: 42,
                    skipped: 3,
                    duration_ms: 187,
                }),
            ),
        ),
        (
            "response_status",
            resp(
                6,
                Response::Status(Status {
                    daemon_version: s("0.1.0"),
                    protocol_version: 2,
                    started_at: s("2025-01-15T08:00:00Z"),
                    uptime_secs: 3600,
                    source: s("mariadb://127.0.0.1:3306"),
                    sites: vec![SiteStatus {
                        site: s("site1.local"),
                        schedules: 42,
                        redis_ok: true,
                        source_ok: true,
                        last_rebuild: Some(s("2025-01-15T08:45:00Z")),
                        paused: vec![PausedSchedule { schedule: s("TS-0002"), pause: pause_info() }],
                        skipped: vec![SkippedRun { schedule: s("TS-0001"), utc: s("2025-01-16T14:00:00Z") }],
                    }],
                    defaults: None,
                }),
            ),
        ),
        (
            "response_upcoming",
            resp(
                7,
                Response::Upcoming(Upcoming {
                    runs: vec![
                        UpcomingRun {
                            site: s("site1.local"),
                            schedule: s("TS-0001"),
                            task: Some(s("TASK-0001")),
                            utc: s("2025-01-15T14:00:00Z"),
                            local: s("2025-01-15T09:00:00-05:00"),
                            paused: false,
                            skipped: true,
                            settings: None,
                        },
                        UpcomingRun {
                            site: s("site1.local"),
                            schedule: s("TS-0003"),
                            task: None,
                            utc: s("2025-01-15T14:30:00Z"),
                            local: s("2025-01-15T20:00:00+05:30"),
                            paused: true,
                            skipped: false,
                            settings: None,
                        },
                    ],
                }),
            ),
        ),
        (
            "response_history",
            resp(
                9,
                Response::History(History {
                    site: s("site1.local"),
                    schedule: s("TS-0001"),
                    runs: vec![
                        HistoryRun {
                            job_id: s("btu:TS-0001:1736949600"),
                            due: s("2025-01-15T14:00:00Z"),
                            enqueued_at: Some(s("2025-01-15T14:00:00.042Z")),
                            outcome: s("enqueued"),
                            lateness_ms: Some(42),
                        },
                        HistoryRun {
                            job_id: s("btu:TS-0001:1736949540"),
                            due: s("2025-01-15T13:59:00Z"),
                            enqueued_at: None,
                            outcome: s("skipped_overlap"),
                            lateness_ms: None,
                        },
                    ],
                }),
            ),
        ),
        (
            "response_ran_now",
            resp(
                10,
                Response::RanNow(RanNow {
                    site: s("site1.local"),
                    schedule: s("TS-0001"),
                    job_id: s("btu:TS-0001:now:1736949600"),
                    queue: s("default"),
                }),
            ),
        ),
        (
            "response_paused",
            resp(12, Response::Paused(Paused { site: s("site1.local"), schedule: s("TS-0001"), pause: pause_info() })),
        ),
        (
            "response_resumed",
            resp(14, Response::Resumed(Resumed { site: s("site1.local"), schedule: s("TS-0001"), was_paused: true })),
        ),
        (
            "response_skipped",
            resp(
                15,
                Response::Skipped(Skipped {
                    site: s("site1.local"),
                    schedule: s("TS-0001"),
                    added: vec![next("2025-01-16T14:00:00Z", "2025-01-16T09:00:00-05:00")],
                    pending: vec![
                        next("2025-01-15T14:00:00Z", "2025-01-15T09:00:00-05:00"),
                        next("2025-01-16T14:00:00Z", "2025-01-16T09:00:00-05:00"),
                    ],
                }),
            ),
        ),
        (
            "response_backfilled",
            resp(
                16,
                Response::Backfilled(Backfilled {
                    site: s("site1.local"),
                    schedule: s("TS-0001"),
                    dry_run: false,
                    runs: vec![
                        BackfillRun {
                            due: s("2025-01-13T14:00:00Z"),
                            local: s("2025-01-13T09:00:00-05:00"),
                            job_id: s("btu:TS-0001:1736776800"),
                            status: BackfillStatus::Exists,
                        },
                        BackfillRun {
                            due: s("2025-01-14T14:00:00Z"),
                            local: s("2025-01-14T09:00:00-05:00"),
                            job_id: s("btu:TS-0001:1736863200"),
                            status: BackfillStatus::Enqueued,
                        },
                    ],
                }),
            ),
        ),
        (
            "response_backfilled_dry_run",
            resp(
                16,
                Response::Backfilled(Backfilled {
                    site: s("site1.local"),
                    schedule: s("TS-0001"),
                    dry_run: true,
                    runs: vec![BackfillRun {
                        due: s("2025-01-14T14:00:00Z"),
                        local: s("2025-01-14T09:00:00-05:00"),
                        job_id: s("btu:TS-0001:1736863200"),
                        status: BackfillStatus::WouldEnqueue,
                    }],
                }),
            ),
        ),
        (
            "response_audited",
            resp(
                17,
                Response::Audited(Audited {
                    site: s("site1.local"),
                    entries: vec![
                        AuditEntry {
                            id: s("1736949600123-0"),
                            time: s("2025-01-15T14:00:00.123Z"),
                            action: s("pause"),
                            schedule: Some(s("TS-0001")),
                            args: s(r#"{"until":"2025-12-27T08:00:00Z"}"#),
                            note: Some(s("holidays: office closed")),
                            uid: Some(1000),
                            pid: Some(4242),
                        },
                        AuditEntry {
                            id: s("1736949500000-0"),
                            time: s("2025-01-15T13:58:20.000Z"),
                            action: s("rebuild"),
                            schedule: None,
                            args: s("{}"),
                            note: None,
                            uid: None,
                            pid: None,
                        },
                    ],
                }),
            ),
        ),
        (
            "response_error_invalid_argument",
            resp(
                16,
                Response::Error(ErrorReply::for_schedule(
                    ErrorCode::InvalidArgument,
                    "TS-0001",
                    "1440 planned runs in [2025-01-13T00:00:00Z, 2025-01-14T00:00:00Z), more than max 1000",
                )),
            ),
        ),
        (
            "response_error_unknown_schedule",
            resp(
                4,
                Response::Error(ErrorReply::for_schedule(
                    ErrorCode::UnknownSchedule,
                    "TS-9999",
                    "unknown schedule 'TS-9999' on site 'site1.local'",
                )),
            ),
        ),
        (
            "response_error_invalid_schedule",
            resp(
                10,
                Response::Error(ErrorReply::for_schedule(
                    ErrorCode::InvalidSchedule,
                    "TS-0001",
                    "schedule 'TS-0001' cannot run: hour field: 24 is out of range 0-23",
                )),
            ),
        ),
        (
            "response_error_unsupported_version",
            resp(
                11,
                Response::Error(ErrorReply::new(
                    ErrorCode::UnsupportedVersion,
                    "protocol version mismatch: client speaks 3, daemon speaks 2",
                )),
            ),
        ),
        // What a daemon of version 1 answers a client of this version: the client must report
        // the mismatch (bytes of the version-1 vector, kept).
        (
            "response_error_unsupported_version_v1",
            Golden::Response(ResponseEnvelope {
                v: 1,
                id: 11,
                response: Response::Error(ErrorReply::new(
                    ErrorCode::UnsupportedVersion,
                    "protocol version mismatch: client speaks 2, daemon speaks 1",
                )),
            }),
        ),
        (
            "response_error_malformed",
            resp(
                0,
                Response::Error(ErrorReply::new(ErrorCode::Malformed, "malformed message: body is not a msgpack map")),
            ),
        ),
        (
            "response_error_internal",
            resp(
                6,
                Response::Error(ErrorReply::new(ErrorCode::Internal, "redis at 127.0.0.1:6379: connection refused")),
            ),
        ),
        // A daemon of a future protocol version: the client must report the mismatch.
        (
            "response_pong_v3",
            Golden::Response(ResponseEnvelope {
                v: 3,
                id: 1,
                response: Response::Pong(Pong { daemon_version: s("9.0.0"), protocol_version: 3 }),
            }),
        ),
    ]
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a vector file: hex digits, whitespace ignored.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits.chunks(2).map(|pair| std::str::from_utf8(pair).ok().and_then(|p| u8::from_str_radix(p, 16).ok())).collect()
}

/// The settings of a schedule that chose every policy (the golden vectors' sample).
fn policy_settings() -> Settings {
    Settings {
        overlap: "skip".to_string(),
        catchup: "all".to_string(),
        jitter_secs: 30,
        dst_gap: "skip".to_string(),
        dst_overlap: "last".to_string(),
    }
}
