//! The typed messages: what a client may ask and what the daemon answers.
//!
//! Every body on the wire is ONE MessagePack map. The envelope keys `v` (protocol version) and
//! `id` (request id, echoed in the response) sit beside `type` (the snake_case message name) and
//! the message's own fields, all in the same flat map, e.g.
//! `{"v": 1, "id": 7, "type": "notify", "schedules": ["TS-0001"], "site": null}`.
//! Flat maps with string keys were chosen so that any msgpack library (Python `msgpack`, Go,
//! JavaScript) reads a message as a plain dictionary, with no positional knowledge.
//!
//! Timestamps are RFC 3339 strings (`utc` always ends in `Z`, `local` carries the schedule's
//! offset) rather than msgpack timestamps, because RFC 3339 keeps the local offset and every
//! language parses it.

use serde::{Deserialize, Serialize};

pub use crate::actions::{
    AuditEntry, Audited, BackfillRun, BackfillStatus, Backfilled, NextRun, PauseInfo, Paused, PausedSchedule, Resumed,
    Skipped, SkippedRun,
};

/// The protocol version this crate speaks. Bumped on any change an older peer would misread.
pub const PROTOCOL_VERSION: u32 = 2;

/// A request with its envelope: protocol version and request id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestEnvelope {
    /// Protocol version the client speaks; see [`PROTOCOL_VERSION`].
    pub v: u32,
    /// Chosen by the client, echoed in the response so a client can pair them.
    pub id: u64,
    #[serde(flatten)]
    pub request: Request,
}

impl RequestEnvelope {
    /// A request in this crate's protocol version.
    pub fn new(id: u64, request: Request) -> Self {
        Self { v: PROTOCOL_VERSION, id, request }
    }
}

/// A response with its envelope: the daemon's protocol version and the echoed request id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseEnvelope {
    /// Protocol version the daemon speaks.
    pub v: u32,
    /// The `id` of the request this answers (0 when the request was too broken to carry one).
    pub id: u64,
    #[serde(flatten)]
    pub response: Response,
}

impl ResponseEnvelope {
    /// A response in this crate's protocol version.
    pub fn new(id: u64, response: Response) -> Self {
        Self { v: PROTOCOL_VERSION, id, response }
    }

    /// An error response in this crate's protocol version.
    pub fn error(id: u64, code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(id, Response::Error(ErrorReply::new(code, message)))
    }
}

/// What a client asks the daemon. `site: None` means "the daemon's only (or default) site".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Is the daemon alive, and which versions does it run?
    Ping,
    /// Re-read these schedules from their source and replan them now (after a save in Frappe).
    Notify {
        schedules: Vec<String>,
        #[serde(default)]
        site: Option<String>,
    },
    /// Forget a schedule's planned runs (schedule deleted or disabled).
    Cancel {
        schedule: String,
        #[serde(default)]
        site: Option<String>,
    },
    /// Re-read every schedule of one site (or all sites) from the source.
    Rebuild {
        #[serde(default)]
        site: Option<String>,
    },
    /// Daemon health: versions, uptime, per-site state.
    Status,
    /// The next `count` planned runs, of one schedule or of all.
    Upcoming {
        #[serde(default)]
        schedule: Option<String>,
        #[serde(default)]
        site: Option<String>,
        count: u32,
    },
    /// The most recent `count` runs the daemon enqueued for a schedule.
    History {
        schedule: String,
        #[serde(default)]
        site: Option<String>,
        count: u32,
    },
    /// Enqueue the schedule's task immediately, outside its cron plan.
    RunNow {
        schedule: String,
        #[serde(default)]
        site: Option<String>,
    },
    /// No run of the schedule is enqueued until `until` (RFC 3339; `None`: until resumed).
    Pause {
        schedule: String,
        #[serde(default)]
        site: Option<String>,
        #[serde(default)]
        until: Option<String>,
        #[serde(default)]
        note: Option<String>,
    },
    /// Ends a pause (the runs due while paused are not replayed).
    Resume {
        schedule: String,
        #[serde(default)]
        site: Option<String>,
    },
    /// The next `count` planned runs (after those already skipped) are not enqueued.
    SkipNext {
        schedule: String,
        #[serde(default)]
        site: Option<String>,
        count: u32,
    },
    /// Enqueue every planned instant in `[start, end)` (RFC 3339) that has no job yet, at most
    /// `max` instants; `dry_run` only says what would be enqueued.
    Backfill {
        schedule: String,
        #[serde(default)]
        site: Option<String>,
        start: String,
        end: String,
        max: u32,
        #[serde(default)]
        dry_run: bool,
    },
    /// The newest `count` operator actions of the site's audit trail (of one schedule, or all).
    Audit {
        #[serde(default)]
        schedule: Option<String>,
        #[serde(default)]
        site: Option<String>,
        count: u32,
    },
}

impl Request {
    /// The wire name of this request (`"notify"`, `"run_now"` …), for logs and error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Ping => "ping",
            Request::Notify { .. } => "notify",
            Request::Cancel { .. } => "cancel",
            Request::Rebuild { .. } => "rebuild",
            Request::Status => "status",
            Request::Upcoming { .. } => "upcoming",
            Request::History { .. } => "history",
            Request::RunNow { .. } => "run_now",
            Request::Pause { .. } => "pause",
            Request::Resume { .. } => "resume",
            Request::SkipNext { .. } => "skip_next",
            Request::Backfill { .. } => "backfill",
            Request::Audit { .. } => "audit",
        }
    }
}

/// What the daemon answers: one typed payload per request kind, or an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    Pong(Pong),
    Notified(Notified),
    Cancelled(Cancelled),
    Rebuilt(Rebuilt),
    Status(Status),
    Upcoming(Upcoming),
    History(History),
    RanNow(RanNow),
    Paused(Paused),
    Resumed(Resumed),
    Skipped(Skipped),
    Backfilled(Backfilled),
    Audited(Audited),
    Error(ErrorReply),
}

impl Response {
    /// The wire name of this response (`"pong"`, `"ran_now"`, `"error"` …).
    pub fn kind(&self) -> &'static str {
        match self {
            Response::Pong(_) => "pong",
            Response::Notified(_) => "notified",
            Response::Cancelled(_) => "cancelled",
            Response::Rebuilt(_) => "rebuilt",
            Response::Status(_) => "status",
            Response::Upcoming(_) => "upcoming",
            Response::History(_) => "history",
            Response::RanNow(_) => "ran_now",
            Response::Paused(_) => "paused",
            Response::Resumed(_) => "resumed",
            Response::Skipped(_) => "skipped",
            Response::Backfilled(_) => "backfilled",
            Response::Audited(_) => "audited",
            Response::Error(_) => "error",
        }
    }

    /// Whether this response may answer `request`: its own kind (`pong` to `ping`, `notified`
    /// to `notify` …) or an error, which may answer anything.
    pub fn answers(&self, request: &Request) -> bool {
        matches!(
            (request, self),
            (_, Response::Error(_))
                | (Request::Ping, Response::Pong(_))
                | (Request::Notify { .. }, Response::Notified(_))
                | (Request::Cancel { .. }, Response::Cancelled(_))
                | (Request::Rebuild { .. }, Response::Rebuilt(_))
                | (Request::Status, Response::Status(_))
                | (Request::Upcoming { .. }, Response::Upcoming(_))
                | (Request::History { .. }, Response::History(_))
                | (Request::RunNow { .. }, Response::RanNow(_))
                | (Request::Pause { .. }, Response::Paused(_))
                | (Request::Resume { .. }, Response::Resumed(_))
                | (Request::SkipNext { .. }, Response::Skipped(_))
                | (Request::Backfill { .. }, Response::Backfilled(_))
                | (Request::Audit { .. }, Response::Audited(_))
        )
    }
}

/// Answer to [`Request::Ping`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    pub daemon_version: String,
    pub protocol_version: u32,
}

/// Answer to [`Request::Notify`]: one state per requested schedule, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notified {
    pub results: Vec<ScheduleState>,
}

/// Where a schedule stands after the daemon re-read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleState {
    pub site: String,
    pub schedule: String,
    /// True when the schedule has planned runs.
    pub runs: bool,
    /// Why it will not run (disabled, task not submitted, invalid cron + reason, unknown
    /// schedule); `None` when `runs` is true.
    #[serde(default)]
    pub reason: Option<String>,
    /// IANA zone the cron string is read in, e.g. `Europe/Berlin`.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// The next due instants, soonest first (empty when `runs` is false).
    pub next_runs: Vec<NextRun>,
    /// The schedule's effective policies (when it runs); absent from older daemons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Settings>,
}

/// A schedule's effective policies (`docs/policies.md`): the config's `[defaults]` overridden
/// by the schedule's own settings. Values are the policies' spellings, e.g. `"skip"`, so a
/// newer daemon's value reaches an older client as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// `allow`, `skip` or `replace`.
    pub overlap: String,
    /// `latest`, `all` or `none`.
    pub catchup: String,
    pub jitter_secs: u32,
    /// `shift` or `skip`.
    pub dst_gap: String,
    /// `auto`, `first`, `last` or `both`.
    pub dst_overlap: String,
}

/// Answer to [`Request::Cancel`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancelled {
    pub site: String,
    pub schedule: String,
    /// False when there was nothing planned for that schedule.
    pub removed: bool,
}

/// Answer to [`Request::Rebuild`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rebuilt {
    pub sites: Vec<String>,
    /// Schedules that now have planned runs.
    pub schedules: u32,
    /// Schedules read but not planned (disabled, invalid …).
    pub skipped: u32,
    pub duration_ms: u64,
}

/// Answer to [`Request::Status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub daemon_version: String,
    pub protocol_version: u32,
    /// RFC 3339 UTC instant the daemon started.
    pub started_at: String,
    pub uptime_secs: u64,
    /// Where schedules are read from, e.g. `mariadb://127.0.0.1:3306` or `toml:/etc/btu.toml`.
    pub source: String,
    pub sites: Vec<SiteStatus>,
    /// The config's `[defaults]`: the policies of schedules that set none; absent from older
    /// daemons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<Settings>,
}

/// Per-site part of [`Status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteStatus {
    pub site: String,
    /// Schedules with planned runs.
    pub schedules: u32,
    pub redis_ok: bool,
    pub source_ok: bool,
    /// RFC 3339 UTC instant of the last complete rebuild, if any.
    #[serde(default)]
    pub last_rebuild: Option<String>,
    /// The site's paused schedules (version 2).
    #[serde(default)]
    pub paused: Vec<PausedSchedule>,
    /// The site's skipped instants still ahead, soonest first (version 2).
    #[serde(default)]
    pub skipped: Vec<SkippedRun>,
}

/// Answer to [`Request::Upcoming`]: runs soonest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upcoming {
    pub runs: Vec<UpcomingRun>,
}

/// One planned run in [`Upcoming`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpcomingRun {
    pub site: String,
    pub schedule: String,
    /// The BTU Task the schedule runs, when known.
    #[serde(default)]
    pub task: Option<String>,
    /// RFC 3339 UTC with `Z`.
    pub utc: String,
    /// RFC 3339 with the schedule's local offset.
    pub local: String,
    /// The run falls while the schedule is paused: it will not be enqueued (version 2).
    #[serde(default)]
    pub paused: bool,
    /// The run was skipped with `skip_next`: it will not be enqueued (version 2).
    #[serde(default)]
    pub skipped: bool,
    /// The schedule's effective policies; absent from older daemons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Settings>,
}

/// Answer to [`Request::History`]: most recent run first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub site: String,
    pub schedule: String,
    pub runs: Vec<HistoryRun>,
}

/// What happened to one due instant, in [`History`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRun {
    /// The RQ job id (for a run not enqueued: the id it would have had).
    pub job_id: String,
    /// RFC 3339 UTC due instant the run was planned for.
    pub due: String,
    /// RFC 3339 UTC instant the job was written to Redis; `None` when it was not enqueued.
    #[serde(default)]
    pub enqueued_at: Option<String>,
    /// `enqueued`, `replaced`, `skipped_overlap`, `skipped_paused`, `skipped_by_request` or
    /// `skipped_missed` (a string, so a newer daemon's outcome reaches an older client as text).
    #[serde(default = "enqueued")]
    pub outcome: String,
    /// `enqueued_at` minus `due` in milliseconds, for enqueued and replaced runs.
    #[serde(default)]
    pub lateness_ms: Option<i64>,
}

fn enqueued() -> String {
    "enqueued".to_string()
}

/// Answer to [`Request::RunNow`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RanNow {
    pub site: String,
    pub schedule: String,
    pub job_id: String,
    pub queue: String,
}

/// A typed error answer. `message` is for humans; programs branch on `code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub code: ErrorCode,
    pub message: String,
    /// The schedule the error is about, when there is one.
    #[serde(default)]
    pub schedule: Option<String>,
}

impl ErrorReply {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), schedule: None }
    }

    /// An error about one schedule (unknown / invalid).
    pub fn for_schedule(code: ErrorCode, schedule: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), schedule: Some(schedule.into()) }
    }
}

/// Error codes, on the wire as snake_case strings (`"unknown_schedule"` …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No schedule with that id on that site.
    UnknownSchedule,
    /// The schedule exists but cannot be planned; the message says why.
    InvalidSchedule,
    /// The request's `v` is not one the daemon speaks.
    UnsupportedVersion,
    /// The frame's length prefix exceeds the maximum frame length.
    FrameTooLarge,
    /// The body is not a valid message (bad msgpack, missing field, unknown type …).
    Malformed,
    /// The daemon failed while serving a valid request (Redis down, source unreadable …).
    Internal,
    /// A well-formed request whose argument cannot be honoured: an unreadable or past instant,
    /// `end` before `start`, a count of 0, more runs than `max` (version 2).
    InvalidArgument,
}

impl ErrorCode {
    /// The wire spelling, e.g. `"unknown_schedule"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownSchedule => "unknown_schedule",
            ErrorCode::InvalidSchedule => "invalid_schedule",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::Malformed => "malformed",
            ErrorCode::Internal => "internal",
            ErrorCode::InvalidArgument => "invalid_argument",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
