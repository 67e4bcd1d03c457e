//! Sources of schedules: the schedule model every source produces, and the sources themselves
//! ([`mariadb`]: Frappe BTU tables, [`file`]: a TOML schedules file).
//!
//! A source never fails because of one bad row: each row becomes a [`RowOutcome`], either a
//! runnable [`ScheduleSpec`] or a [`RowOutcome::Skipped`] with the reason. A [`SourceError`] means
//! the source as a whole could not be read (database down, file unreadable); the engine then
//! keeps the schedules it loaded last.

pub mod file;
pub mod mariadb;

use std::fmt;

use crate::config::{Config, Mode};
use crate::cron::LocalSchedule;
use crate::pyliteral::{self, Kwargs};

/// One runnable schedule, everything a fired run needs.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    pub site: String,
    /// Schedule id (`TS-000001` in BTU, the `id` in a schedules file).
    pub id: String,
    /// BTU Task id; in frappe mode the runner loads it.
    pub task: Option<String>,
    pub task_description: Option<String>,
    /// Dotted path of the Python function (the task's `function_string` in BTU).
    pub function: String,
    pub cron: String,
    /// IANA zone the cron string is read in.
    pub zone: String,
    /// Parsed `cron` + `zone`.
    pub schedule: LocalSchedule,
    /// Full RQ queue name (Frappe's bench prefix included).
    pub queue: String,
    /// Merged keyword arguments (task's, overridden by the schedule's).
    pub kwargs: Kwargs,
    pub timeout_secs: i64,
    pub mode: Mode,
    /// Changes whenever anything that shapes a run or its job changes; stored in Redis so a
    /// restarted daemon knows whether the stored next run still belongs to this schedule.
    pub fingerprint: String,
}

/// Why a schedule row does not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    Disabled,
    /// The schedule names no task.
    NoTask,
    TaskMissing { task: String },
    TaskDraft { task: String },
    TaskCancelled { task: String },
    /// A task with a docstatus other than 0/1/2.
    TaskNotSubmitted { task: String, docstatus: i64 },
    NoCron,
    InvalidCron { cron: String, error: String },
    UnknownZone { zone: String, error: String },
    BadArguments { field: String, error: String },
    /// Anything else wrong with the row (missing function, bad value type, ...).
    Invalid { problem: String },
    /// `load_one` found no such schedule.
    NotFound,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Disabled => write!(f, "disabled"),
            SkipReason::NoTask => write!(f, "no task set"),
            SkipReason::TaskMissing { task } => write!(f, "task {task} does not exist"),
            SkipReason::TaskDraft { task } => write!(f, "task {task} is a draft (not submitted)"),
            SkipReason::TaskCancelled { task } => write!(f, "task {task} is cancelled"),
            SkipReason::TaskNotSubmitted { task, docstatus } => {
                write!(f, "task {task} is not submitted (docstatus {docstatus})")
            }
            SkipReason::NoCron => write!(f, "no cron string"),
            SkipReason::InvalidCron { cron, error } => write!(f, "invalid cron {cron:?}: {error}"),
            SkipReason::UnknownZone { zone, error } => write!(f, "time zone {zone:?}: {error}"),
            SkipReason::BadArguments { field, error } => write!(f, "{field}: {error}"),
            SkipReason::Invalid { problem } => f.write_str(problem),
            SkipReason::NotFound => write!(f, "no such schedule"),
        }
    }
}

impl SkipReason {
    /// Short machine-readable code (for the protocol and JSON output).
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::Disabled => "disabled",
            SkipReason::NoTask | SkipReason::TaskMissing { .. } => "task_missing",
            SkipReason::TaskDraft { .. } | SkipReason::TaskNotSubmitted { .. } => "task_not_submitted",
            SkipReason::TaskCancelled { .. } => "task_cancelled",
            SkipReason::NoCron | SkipReason::InvalidCron { .. } => "invalid_cron",
            SkipReason::UnknownZone { .. } => "unknown_zone",
            SkipReason::BadArguments { .. } => "bad_arguments",
            SkipReason::Invalid { .. } => "invalid",
            SkipReason::NotFound => "not_found",
        }
    }
}

/// What one schedule row became.
#[derive(Debug, Clone)]
pub enum RowOutcome {
    Loaded(ScheduleSpec),
    Skipped { site: String, schedule: String, reason: SkipReason },
}

impl RowOutcome {
    pub fn site(&self) -> &str {
        match self {
            RowOutcome::Loaded(s) => &s.site,
            RowOutcome::Skipped { site, .. } => site,
        }
    }
    pub fn schedule(&self) -> &str {
        match self {
            RowOutcome::Loaded(s) => &s.id,
            RowOutcome::Skipped { schedule, .. } => schedule,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("site {site}: database {target}: {message}")]
    Database { site: String, target: String, message: String },
    #[error("site {site}: database {target}: no answer within {secs} s")]
    Timeout { site: String, target: String, secs: u64 },
    #[error("schedules file {path}: {message}")]
    File { path: String, message: String },
    #[error("unknown site {0}")]
    UnknownSite(String),
}

/// Everything a source needs besides its own connection settings.
#[derive(Debug, Clone)]
pub struct BuildContext {
    pub site: String,
    pub mode: Mode,
    /// Prepended to queue names (Frappe's `<bench_id>:`), in frappe mode only.
    pub queue_prefix: String,
    /// The config file's zone, the fallback when the site says nothing.
    pub default_zone: Option<String>,
    /// Frappe mode calls this runner; kept here so the fingerprint changes when it does.
    pub runner: String,
}

/// Fields of one schedule as a source read them, before validation.
#[derive(Debug, Clone, Default)]
pub struct RawSchedule {
    pub id: String,
    pub task: Option<String>,
    pub task_description: Option<String>,
    pub function: Option<String>,
    pub cron: Option<String>,
    pub zone: String,
    pub queue: Option<String>,
    pub kwargs: Kwargs,
    pub timeout_secs: i64,
}

/// Validates a row that is enabled and whose task is runnable: cron, zone, function; computes
/// the fingerprint. Pure.
pub fn finish(ctx: &BuildContext, raw: RawSchedule) -> RowOutcome {
    let skip = |reason| RowOutcome::Skipped { site: ctx.site.clone(), schedule: raw.id.clone(), reason };
    let Some(cron) = raw.cron.as_deref().map(str::trim).filter(|c| !c.is_empty()) else {
        return skip(SkipReason::NoCron);
    };
    let zone_name = raw.zone.trim();
    let tz = match crate::cron::parse_zone(zone_name) {
        Ok(tz) => tz,
        Err(e) => return skip(SkipReason::UnknownZone { zone: zone_name.to_string(), error: e.to_string() }),
    };
    let expr = match crate::cron::CronExpr::parse(cron) {
        Ok(expr) => expr,
        Err(e) => return skip(SkipReason::InvalidCron { cron: cron.to_string(), error: e.to_string() }),
    };
    let function = raw.function.as_deref().map(str::trim).unwrap_or("").to_string();
    if ctx.mode == Mode::Plain && function.is_empty() {
        return skip(SkipReason::Invalid { problem: "no function to call".into() });
    }
    if ctx.mode == Mode::Frappe && raw.task.as_deref().is_none_or(str::is_empty) {
        return skip(SkipReason::NoTask);
    }
    let queue_name = raw.queue.as_deref().map(str::trim).filter(|q| !q.is_empty()).unwrap_or("default");
    let queue = match ctx.mode {
        Mode::Frappe => format!("{}{}", ctx.queue_prefix, queue_name),
        Mode::Plain => queue_name.to_string(),
    };
    if raw.timeout_secs == 0 || raw.timeout_secs < -1 {
        return skip(SkipReason::Invalid {
            problem: format!("timeout {} s: must be positive (or -1 for no limit)", raw.timeout_secs),
        });
    }
    let fingerprint = fingerprint(&[
        ctx.mode.to_string().as_str(),
        if ctx.mode == Mode::Frappe { ctx.runner.as_str() } else { "" },
        raw.task.as_deref().unwrap_or(""),
        raw.task_description.as_deref().unwrap_or(""),
        &function,
        cron,
        zone_name,
        &queue,
        &raw.timeout_secs.to_string(),
        &pyliteral::kwargs_repr(&raw.kwargs),
    ]);
    RowOutcome::Loaded(ScheduleSpec {
        site: ctx.site.clone(),
        id: raw.id,
        task: raw.task,
        task_description: raw.task_description,
        function,
        cron: cron.to_string(),
        zone: zone_name.to_string(),
        schedule: crate::cron::LocalSchedule::new(expr, tz),
        queue,
        kwargs: raw.kwargs,
        timeout_secs: raw.timeout_secs,
        mode: ctx.mode,
        fingerprint,
    })
}

/// FNV-1a 64 over the parts (separated), as 16 hex digits. Stable across Rust releases,
/// unlike `DefaultHasher`, because the value is stored in Redis across restarts.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0x1f)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// A configured source of schedules.
#[derive(Debug, Clone)]
pub enum Source {
    MariaDb(mariadb::MariaDbSource),
    File(file::FileSource),
}

impl Source {
    /// One source per `[[sites]]` entry plus the `[file]` source, as configured.
    pub fn all_from_config(config: &Config) -> Vec<Source> {
        let mut out: Vec<Source> = config
            .sites
            .iter()
            .map(|site| Source::MariaDb(mariadb::MariaDbSource::new(site, config)))
            .collect();
        if let Some(f) = &config.file {
            out.push(Source::File(file::FileSource::new(f, config)));
        }
        out
    }

    pub fn site(&self) -> &str {
        match self {
            Source::MariaDb(s) => s.site(),
            Source::File(s) => s.site(),
        }
    }

    /// Every schedule row of this source, each validated on its own.
    pub async fn load_all(&self) -> Result<Vec<RowOutcome>, SourceError> {
        match self {
            Source::MariaDb(s) => s.load_all().await,
            Source::File(s) => s.load_all().await,
        }
    }

    /// One schedule (for live notifications); `Skipped { NotFound }` when it does not exist.
    pub async fn load_one(&self, schedule: &str) -> Result<RowOutcome, SourceError> {
        match self {
            Source::MariaDb(s) => s.load_one(schedule).await,
            Source::File(s) => s.load_one(schedule).await,
        }
    }

    /// Releases connections (MariaDB pool); call once at shutdown.
    pub async fn close(&self) {
        if let Source::MariaDb(s) = self {
            s.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(mode: Mode) -> BuildContext {
        BuildContext {
            site: "s1.local".into(),
            mode,
            queue_prefix: "bench:".into(),
            default_zone: None,
            runner: "btu_hooks.runner.run_task".into(),
        }
    }

    fn raw() -> RawSchedule {
        RawSchedule {
            id: "TS-1".into(),
            task: Some("BTU-1".into()),
            function: Some("m.f".into()),
            cron: Some("0 * * * *".into()),
            zone: "Europe/Paris".into(),
            queue: Some("long".into()),
            timeout_secs: 600,
            ..Default::default()
        }
    }

    #[test]
    fn valid_row_loads_with_prefixed_queue() {
        match finish(&ctx(Mode::Frappe), raw()) {
            RowOutcome::Loaded(s) => {
                assert_eq!(s.queue, "bench:long");
                assert_eq!(s.fingerprint.len(), 16);
            }
            other => panic!("{other:?}"),
        }
        match finish(&ctx(Mode::Plain), raw()) {
            RowOutcome::Loaded(s) => assert_eq!(s.queue, "long"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_rows_are_skipped_with_reasons() {
        let mut r = raw();
        r.cron = Some("61 25 * * *".into());
        let RowOutcome::Skipped { reason, .. } = finish(&ctx(Mode::Frappe), r) else { panic!() };
        assert_eq!(reason.code(), "invalid_cron");
        let mut r = raw();
        r.zone = "Mars/Base".into();
        let RowOutcome::Skipped { reason, .. } = finish(&ctx(Mode::Frappe), r) else { panic!() };
        assert!(reason.to_string().contains("Mars/Base"), "{reason}");
        let mut r = raw();
        r.function = None;
        assert!(matches!(finish(&ctx(Mode::Plain), r), RowOutcome::Skipped { .. }));
        let mut r = raw();
        r.timeout_secs = 0;
        assert!(matches!(finish(&ctx(Mode::Plain), r), RowOutcome::Skipped { .. }));
    }

    #[test]
    fn fingerprint_changes_with_any_field() {
        let fp = |r: RawSchedule| match finish(&ctx(Mode::Frappe), r) {
            RowOutcome::Loaded(s) => s.fingerprint,
            other => panic!("{other:?}"),
        };
        let base = fp(raw());
        assert_eq!(base, fp(raw()));
        let mut r = raw();
        r.cron = Some("1 * * * *".into());
        assert_ne!(base, fp(r));
        let mut r = raw();
        r.kwargs = vec![("a".into(), crate::pyliteral::PyValue::Int(1))];
        assert_ne!(base, fp(r));
        let mut r = raw();
        r.zone = "UTC".into();
        assert_ne!(base, fp(r));
    }
}
