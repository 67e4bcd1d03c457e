//! Sources of schedules: the schedule model every source produces, and the sources themselves
//! ([`mariadb`]: Frappe BTU tables, [`file`]: a TOML schedules file).
//!
//! A source never fails because of one bad row: each row becomes a [`RowOutcome`], either a
//! runnable [`ScheduleSpec`] or a [`RowOutcome::Skipped`] with the reason. A [`SourceError`] means
//! the source as a whole could not be read (database down, file unreadable); the engine then
//! keeps the schedules it loaded last.

pub mod file;
pub mod mariadb;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use crate::config::{Config, Mode};
use crate::cron::LocalSchedule;
use crate::pyvalue::{self, Kwargs};

/// One runnable schedule, everything a fired run needs.
///
/// Kept small because the engine holds one per planned schedule (100k of them on a large
/// bench): the texts many schedules share (site, task, description, cron, zone) and the parsed
/// schedule are shared `Arc`s handed out by an [`Interner`], and the id is the same `Arc` the
/// engine keys its plan by.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    pub site: Arc<str>,
    /// Schedule id (`TS-000001` in BTU, the `id` in a schedules file).
    pub id: Arc<str>,
    /// BTU Task id; in frappe mode the runner loads it.
    pub task: Option<Arc<str>>,
    pub task_description: Option<Arc<str>>,
    /// Dotted path of the Python function (the task's `function_string` in BTU).
    pub function: String,
    pub cron: Arc<str>,
    /// IANA zone the cron string is read in.
    pub zone: Arc<str>,
    /// Parsed `cron` + `zone`, shared by every schedule with the same pair.
    pub schedule: Arc<LocalSchedule>,
    /// Full RQ queue name (Frappe's bench prefix included).
    pub queue: String,
    /// Merged keyword arguments (task's, overridden by the schedule's).
    pub kwargs: Kwargs,
    pub timeout_secs: i64,
    pub mode: Mode,
    /// Changes whenever anything that shapes a run or its job changes; stored in Redis so a
    /// restarted daemon knows whether the stored next run still belongs to this schedule.
    pub fingerprint: Fingerprint,
}

/// FNV-1a 64 over everything that shapes a schedule's runs and jobs. A number, not text: the
/// engine keeps one per schedule and compares them on every rebuild. Written to Redis as 16
/// hex digits ([`fmt::Display`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub u64);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Fingerprint {
    /// The value a [`fmt::Display`] wrote (16 hex digits); `None` for anything else.
    pub fn parse_hex(text: &str) -> Option<Fingerprint> {
        (text.len() == 16).then(|| u64::from_str_radix(text, 16).ok().map(Fingerprint)).flatten()
    }
}

/// Incremental FNV-1a 64: parts are hashed in place, so computing a fingerprint does not
/// build the joined text. Stable across Rust releases, unlike `DefaultHasher`, because the
/// value is stored in Redis across restarts.
struct FingerprintHasher(u64);

impl FingerprintHasher {
    fn new() -> Self {
        FingerprintHasher(0xcbf2_9ce4_8422_2325)
    }
    /// Continues the current part.
    fn write(&mut self, text: &str) {
        for b in text.bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    /// Ends the current part (a separator byte, so `("ab", "c")` and `("a", "bc")` differ).
    fn end(&mut self) {
        self.0 ^= 0x1f;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }
    fn part(&mut self, text: &str) {
        self.write(text);
        self.end();
    }
}

/// Fingerprint of the parts (FNV-1a 64, each part followed by a separator).
pub fn fingerprint(parts: &[&str]) -> Fingerprint {
    let mut h = FingerprintHasher::new();
    for part in parts {
        h.part(part);
    }
    Fingerprint(h.0)
}

/// Shares repeated texts and parsed schedules among the schedules of one load, so 100k
/// schedules of a handful of tasks, zones and cron strings hold each of those once.
#[derive(Debug, Default)]
pub struct Interner {
    texts: HashSet<Arc<str>>,
    schedules: HashMap<(Arc<str>, Arc<str>), Arc<LocalSchedule>>,
}

impl Interner {
    /// The shared copy of `text`.
    pub fn text(&mut self, text: &str) -> Arc<str> {
        if let Some(t) = self.texts.get(text) {
            return t.clone();
        }
        let t: Arc<str> = Arc::from(text);
        self.texts.insert(t.clone());
        t
    }

    /// The parsed `cron` in `zone`, parsed once per pair; errors are not remembered (bad rows
    /// are rare and each one reports its own problem).
    fn schedule(&mut self, cron: &str, zone: &str) -> Result<SharedSchedule, SkipReason> {
        let (cron, zone) = (self.text(cron), self.text(zone));
        if let Some(s) = self.schedules.get(&(cron.clone(), zone.clone())) {
            return Ok((cron, zone, s.clone()));
        }
        let tz = crate::cron::parse_zone(&zone)
            .map_err(|e| SkipReason::UnknownZone { zone: zone.to_string(), error: e.to_string() })?;
        let expr = crate::cron::CronExpr::parse(&cron)
            .map_err(|e| SkipReason::InvalidCron { cron: cron.to_string(), error: e.to_string() })?;
        let s = Arc::new(LocalSchedule::new(expr, tz));
        self.schedules.insert((cron.clone(), zone.clone()), s.clone());
        Ok((cron, zone, s))
    }
}

/// A cron text, a zone name and the schedule parsed from them, each shared.
type SharedSchedule = (Arc<str>, Arc<str>, Arc<LocalSchedule>);

/// The fingerprints of the schedules a caller already plans, by id: a rebuild skips building
/// (parsing, allocating) every row whose fingerprint is listed.
pub type KnownFingerprints = HashMap<Arc<str>, Fingerprint>;

/// Why a schedule row does not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    Disabled,
    /// The schedule names no task.
    NoTask,
    TaskMissing {
        task: String,
    },
    TaskDraft {
        task: String,
    },
    TaskCancelled {
        task: String,
    },
    /// A task with a docstatus other than 0/1/2.
    TaskNotSubmitted {
        task: String,
        docstatus: i64,
    },
    NoCron,
    InvalidCron {
        cron: String,
        error: String,
    },
    UnknownZone {
        zone: String,
        error: String,
    },
    BadArguments {
        field: String,
        error: String,
    },
    /// Anything else wrong with the row (missing function, bad value type, ...).
    Invalid {
        problem: String,
    },
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
            RowOutcome::Loaded(s) => &s.site[..],
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

/// A row as a rebuild needs it: small, and not built at all when the caller already plans
/// the schedule with the same fingerprint.
#[derive(Debug, Clone)]
pub enum RebuildRow {
    /// Runnable, and its fingerprint is the one the caller listed for this id (`id` is the
    /// caller's own `Arc`): nothing was parsed or allocated for it.
    Unchanged {
        id: Arc<str>,
        fingerprint: Fingerprint,
    },
    Loaded(Arc<ScheduleSpec>),
    /// Boxed: skipped rows are few, and the other variants stay two words.
    Skipped(Box<SkippedRow>),
}

#[derive(Debug, Clone)]
pub struct SkippedRow {
    pub schedule: String,
    pub reason: SkipReason,
}

impl RebuildRow {
    pub fn schedule(&self) -> &str {
        match self {
            RebuildRow::Unchanged { id, .. } => id,
            RebuildRow::Loaded(s) => &s.id,
            RebuildRow::Skipped(s) => &s.schedule,
        }
    }

    fn skipped(schedule: String, reason: SkipReason) -> RebuildRow {
        RebuildRow::Skipped(Box::new(SkippedRow { schedule, reason }))
    }
}

/// Rows per batch a rebuild load sends to the engine.
pub const SINK_BATCH: usize = 1024;

/// Where a rebuild load sends its rows: batches of [`SINK_BATCH`] through a bounded channel
/// to the engine, which applies each batch as it arrives. However many rows a source has,
/// only the few batches in flight exist beside the plan (when every schedule changed, a
/// loaded `Vec` of all rows would double the plan's memory).
#[derive(Debug)]
pub struct RowSink {
    /// The engine's index of the site, sent with each batch.
    site: usize,
    tx: tokio::sync::mpsc::Sender<(usize, Vec<RebuildRow>)>,
    batch: Vec<RebuildRow>,
}

impl RowSink {
    pub fn new(site: usize, tx: tokio::sync::mpsc::Sender<(usize, Vec<RebuildRow>)>) -> Self {
        RowSink { site, tx, batch: Vec::with_capacity(SINK_BATCH) }
    }

    /// Adds a row; sends the batch when it is full. `false` once the engine is gone (stop
    /// reading).
    pub async fn push(&mut self, row: RebuildRow) -> bool {
        self.batch.push(row);
        if self.batch.len() < SINK_BATCH {
            return true;
        }
        self.flush().await
    }

    /// Sends what is left. `false` once the engine is gone.
    pub async fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(SINK_BATCH));
        self.tx.send((self.site, batch)).await.is_ok()
    }
}

/// Everything a source needs besides its own connection settings.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// Shared by every schedule of the site.
    pub site: Arc<str>,
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
    finish_with(ctx, &mut Interner::default(), raw)
}

/// [`finish`], sharing texts and parsed schedules through `interner`.
pub fn finish_with(ctx: &BuildContext, interner: &mut Interner, raw: RawSchedule) -> RowOutcome {
    let built = fingerprint_of(ctx, &raw).and_then(|fp| build_spec(ctx, interner, raw, fp));
    match built {
        Ok(spec) => RowOutcome::Loaded(spec),
        Err((schedule, reason)) => RowOutcome::Skipped { site: ctx.site.to_string(), schedule, reason },
    }
}

/// [`finish_with`] for a rebuild: a row whose fingerprint `known` lists for its id becomes
/// [`RebuildRow::Unchanged`] before anything is parsed or allocated for it.
///
/// The fingerprint covers every input of the checks in [`build_spec`] (mode, task, function,
/// cron, zone, timeout), so a listed fingerprint also means the row passed them when it was
/// planned.
pub fn build(ctx: &BuildContext, interner: &mut Interner, known: &KnownFingerprints, raw: RawSchedule) -> RebuildRow {
    let fp = match fingerprint_of(ctx, &raw) {
        Ok(fp) => fp,
        Err((schedule, reason)) => return RebuildRow::skipped(schedule, reason),
    };
    if let Some((id, _)) = known.get_key_value(raw.id.as_str()).filter(|(_, f)| **f == fp) {
        return RebuildRow::Unchanged { id: id.clone(), fingerprint: fp };
    }
    match build_spec(ctx, interner, raw, fp) {
        Ok(spec) => RebuildRow::Loaded(Arc::new(spec)),
        Err((schedule, reason)) => RebuildRow::skipped(schedule, reason),
    }
}

/// Trimmed cron (None when there is none), zone, function, queue prefix and queue name.
fn fields<'a>(ctx: &'a BuildContext, raw: &'a RawSchedule) -> (Option<&'a str>, &'a str, &'a str, &'a str, &'a str) {
    (
        raw.cron.as_deref().map(str::trim).filter(|c| !c.is_empty()),
        raw.zone.trim(),
        raw.function.as_deref().map(str::trim).unwrap_or(""),
        if ctx.mode == Mode::Frappe { ctx.queue_prefix.as_str() } else { "" },
        raw.queue.as_deref().map(str::trim).filter(|q| !q.is_empty()).unwrap_or("default"),
    )
}

/// The row's fingerprint, hashed in place (no joined text is built). The same parts, in the
/// same order, as every earlier release, so fingerprints a previous daemon stored in Redis
/// stay valid.
fn fingerprint_of(ctx: &BuildContext, raw: &RawSchedule) -> Result<Fingerprint, (String, SkipReason)> {
    let (cron, zone, function, queue_prefix, queue_name) = fields(ctx, raw);
    let Some(cron) = cron else { return Err((raw.id.clone(), SkipReason::NoCron)) };
    let mut h = FingerprintHasher::new();
    h.part(match ctx.mode {
        Mode::Frappe => "frappe",
        Mode::Plain => "plain",
    });
    h.part(if ctx.mode == Mode::Frappe { ctx.runner.as_str() } else { "" });
    h.part(raw.task.as_deref().unwrap_or(""));
    h.part(raw.task_description.as_deref().unwrap_or(""));
    h.part(function);
    h.part(cron);
    h.part(zone);
    h.write(queue_prefix);
    h.part(queue_name);
    // Writing into the hasher cannot fail.
    let _ = fmt::Write::write_fmt(&mut h, format_args!("{}", raw.timeout_secs));
    h.end();
    h.part(&pyvalue::kwargs_repr(&raw.kwargs));
    Ok(Fingerprint(h.0))
}

/// Validates the row (zone, cron, function, task, timeout) and builds its spec.
fn build_spec(
    ctx: &BuildContext,
    interner: &mut Interner,
    raw: RawSchedule,
    fingerprint: Fingerprint,
) -> Result<ScheduleSpec, (String, SkipReason)> {
    let (cron, zone, function, queue_prefix, queue_name) = fields(ctx, &raw);
    let mut check = || -> Result<_, SkipReason> {
        let Some(cron) = cron else { return Err(SkipReason::NoCron) };
        let parsed = interner.schedule(cron, zone)?;
        if ctx.mode == Mode::Plain && function.is_empty() {
            return Err(SkipReason::Invalid { problem: "no function to call".into() });
        }
        if ctx.mode == Mode::Frappe && raw.task.as_deref().is_none_or(str::is_empty) {
            return Err(SkipReason::NoTask);
        }
        if raw.timeout_secs == 0 || raw.timeout_secs < -1 {
            return Err(SkipReason::Invalid {
                problem: format!("timeout {} s: must be positive (or -1 for no limit)", raw.timeout_secs),
            });
        }
        Ok(parsed)
    };
    let (cron, zone, schedule) = match check() {
        Ok(parsed) => parsed,
        Err(reason) => return Err((raw.id, reason)),
    };
    let function = function.to_string();
    let queue = format!("{queue_prefix}{queue_name}");
    let task = raw.task.as_deref().map(|t| interner.text(t));
    let task_description = raw.task_description.as_deref().map(|d| interner.text(d));
    let mut kwargs = raw.kwargs;
    // Merging grows the vector by doubling; the plan keeps it as long as the schedule.
    kwargs.shrink_to_fit();
    Ok(ScheduleSpec {
        site: ctx.site.clone(),
        id: Arc::from(raw.id),
        task,
        task_description,
        function,
        cron,
        zone,
        schedule,
        queue,
        kwargs,
        timeout_secs: raw.timeout_secs,
        mode: ctx.mode,
        fingerprint,
    })
}

impl fmt::Write for FingerprintHasher {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write(s);
        Ok(())
    }
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
        let mut out: Vec<Source> =
            config.sites.iter().map(|site| Source::MariaDb(mariadb::MariaDbSource::new(site, config))).collect();
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

    /// Every schedule row, for a rebuild, streamed into `sink` (flushed at the end): rows
    /// whose fingerprint `known` lists for their id are sent as [`RebuildRow::Unchanged`]
    /// without being built. On `Err` the rows already sent are genuine but not all rows were.
    pub async fn load_rebuild(&self, known: &KnownFingerprints, sink: &mut RowSink) -> Result<(), SourceError> {
        match self {
            Source::MariaDb(s) => s.load_rebuild(known, sink).await,
            Source::File(s) => s.load_rebuild(known, sink).await,
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
                assert_eq!(s.fingerprint.to_string().len(), 16);
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
        r.kwargs = vec![("a".into(), crate::pyvalue::PyValue::Int(1))];
        assert_ne!(base, fp(r));
        let mut r = raw();
        r.zone = "UTC".into();
        assert_ne!(base, fp(r));
    }

    /// Fingerprints are stored in Redis: the value must stay what earlier releases computed
    /// (FNV-1a over the joined parts), or a restarted daemon would replan everything.
    #[test]
    fn fingerprint_is_stable_across_releases() {
        let RowOutcome::Loaded(s) = finish(&ctx(Mode::Frappe), raw()) else { panic!() };
        let joined = fingerprint(&[
            "frappe",
            "btu_hooks.runner.run_task",
            "BTU-1",
            "",
            "m.f",
            "0 * * * *",
            "Europe/Paris",
            "bench:long",
            "600",
            "{}",
        ]);
        assert_eq!(s.fingerprint, joined);
        assert_eq!(Fingerprint::parse_hex(&s.fingerprint.to_string()), Some(s.fingerprint));
        assert_eq!(Fingerprint::parse_hex("xyz"), None);
    }

    #[test]
    fn interner_shares_texts_and_schedules() {
        let mut interner = Interner::default();
        let a = finish_with(&ctx(Mode::Frappe), &mut interner, raw());
        let mut r = raw();
        r.id = "TS-2".into();
        let b = finish_with(&ctx(Mode::Frappe), &mut interner, r);
        let (RowOutcome::Loaded(a), RowOutcome::Loaded(b)) = (a, b) else { panic!() };
        assert!(Arc::ptr_eq(&a.schedule, &b.schedule));
        assert!(Arc::ptr_eq(&a.zone, &b.zone));
        assert!(Arc::ptr_eq(a.task.as_ref().unwrap(), b.task.as_ref().unwrap()));
    }

    #[test]
    fn known_fingerprint_short_circuits_only_on_a_match() {
        let RowOutcome::Loaded(s) = finish(&ctx(Mode::Frappe), raw()) else { panic!() };
        let id: Arc<str> = Arc::from("TS-1");
        let mut known = KnownFingerprints::new();
        known.insert(id.clone(), s.fingerprint);
        match build(&ctx(Mode::Frappe), &mut Interner::default(), &known, raw()) {
            RebuildRow::Unchanged { id: got, fingerprint } => {
                assert!(Arc::ptr_eq(&got, &id));
                assert_eq!(fingerprint, s.fingerprint);
            }
            other => panic!("{other:?}"),
        }
        let mut r = raw();
        r.queue = Some("short".into());
        assert!(matches!(build(&ctx(Mode::Frappe), &mut Interner::default(), &known, r), RebuildRow::Loaded(_)));
        known.insert(id, Fingerprint(0));
        assert!(matches!(build(&ctx(Mode::Frappe), &mut Interner::default(), &known, raw()), RebuildRow::Loaded(_)));
        let mut r = raw();
        r.cron = Some("61 * * * *".into());
        assert!(matches!(build(&ctx(Mode::Frappe), &mut Interner::default(), &known, r), RebuildRow::Skipped(_)));
    }
}
