//! Schedules from a TOML file: the embedded default for machines without MariaDB and for RQ
//! users outside Frappe. The file is re-read on every rebuild (and SIGHUP), so edits apply
//! without a restart.
//!
//! ```toml
//! [defaults]            # optional, for every schedule below
//! zone = "Europe/Paris"
//! queue = "default"
//! timeout = 300
//!
//! [[schedule]]
//! id = "heartbeat"
//! function = "demo_tasks.heartbeat"   # dotted path the worker imports
//! cron = "*/5 * * * * *"              # 5, 6 (seconds first) or 7 fields
//! zone = "UTC"
//! queue = "default"
//! timeout = 60                        # seconds, -1 = no limit
//! enabled = true
//! kwargs = { greeting = "hello", n = 3, tags = ["a", "b"] }
//! # task = "BTU-00001"                # frappe mode: the BTU Task the runner loads
//! # description = "Say hello"
//! overlap = "skip"                    # policies (docs/policies.md); unset: the config's [defaults]
//! catchup = "all"
//! jitter_secs = 30
//! dst_gap = "skip"
//! dst_overlap = "first"
//! ```

use std::path::PathBuf;

use super::check::{BuildContext, RawSchedule, RowChecker, SourceRow};
use super::coalesce::Coalescer;
use super::error::SourceError;
use super::row::RowOutcome;
use super::sink::RowSink;
use super::skip::SkipReason;
use super::spec::KnownFingerprints;
use crate::config::{Config, FileConfig};
use crate::policy::PolicyTexts;
use crate::pyvalue::{Kwargs, PyValue};

const SCHEDULE_KEYS: &[&str] = &[
    "id",
    "function",
    "cron",
    "zone",
    "queue",
    "timeout",
    "enabled",
    "kwargs",
    "task",
    "description",
    "overlap",
    "catchup",
    "jitter_secs",
    "dst_gap",
    "dst_overlap",
];
const DEFAULT_TIMEOUT: i64 = 600;

#[derive(Debug, Clone)]
pub struct FileSource {
    ctx: BuildContext,
    path: PathBuf,
    /// The notifies' single-schedule reads, coalesced into [`FileSource::load_many`] (one
    /// read and parse of the file for all of them).
    reads: Coalescer<RowOutcome, SourceError>,
}

impl FileSource {
    pub fn new(file: &FileConfig, config: &Config) -> Self {
        FileSource {
            ctx: BuildContext {
                site: file.site.as_str().into(),
                mode: file.mode,
                queue_prefix: config.frappe.queue_prefix.clone(),
                default_zone: config.daemon.time_zone.clone(),
                runner: config.frappe.runner.clone(),
                defaults: config.defaults,
            },
            path: file.path.clone(),
            reads: Coalescer::new(),
        }
    }

    /// The single-schedule reads of this file (shared by clones).
    pub(super) fn reads(&self) -> &Coalescer<RowOutcome, SourceError> {
        &self.reads
    }

    pub fn site(&self) -> &str {
        &self.ctx.site
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    fn err(&self, message: impl Into<String>) -> SourceError {
        SourceError::File { path: self.path.display().to_string(), message: message.into() }
    }

    pub async fn load_all(&self) -> Result<Vec<RowOutcome>, SourceError> {
        let text = tokio::fs::read_to_string(&self.path).await.map_err(|e| self.err(e.to_string()))?;
        parse_schedules(&self.ctx, &text).map_err(|m| self.err(m))
    }

    /// Every schedule for a rebuild, streamed into `sink`; those `known` lists with their
    /// fingerprint are not built.
    pub async fn load_rebuild(&self, known: &KnownFingerprints, sink: &mut RowSink) -> Result<(), SourceError> {
        let text = tokio::fs::read_to_string(&self.path).await.map_err(|e| self.err(e.to_string()))?;
        let table = parse_table(&text).map_err(|m| self.err(m))?;
        let mut checker = RowChecker::new(&self.ctx);
        for row in schedules(&self.ctx, &table).map_err(|m| self.err(m))? {
            if !sink.push(checker.check_rebuild(row, known)).await {
                return Ok(()); // the engine stopped
            }
        }
        sink.flush().await;
        Ok(())
    }

    pub async fn load_one(&self, schedule: &str) -> Result<RowOutcome, SourceError> {
        let mut rows = self.load_many(&[schedule.to_string()]).await?;
        Ok(rows.pop().unwrap_or_else(|| self.not_found(schedule)))
    }

    /// One answer per id, in order (duplicates allowed), from one read of the file: the first
    /// schedule with that id, or `Skipped { NotFound }`.
    pub async fn load_many(&self, ids: &[String]) -> Result<Vec<RowOutcome>, SourceError> {
        let mut by_id = std::collections::HashMap::new();
        for row in self.load_all().await? {
            by_id.entry(row.schedule().to_string()).or_insert(row);
        }
        Ok(ids.iter().map(|id| by_id.get(id).cloned().unwrap_or_else(|| self.not_found(id))).collect())
    }

    fn not_found(&self, schedule: &str) -> RowOutcome {
        RowOutcome::Skipped {
            site: self.ctx.site.to_string(),
            schedule: schedule.to_string(),
            reason: SkipReason::NotFound,
        }
    }
}

/// Parses the whole file; `Err` only when the file as a whole is unreadable (syntax, layout).
fn parse_schedules(ctx: &BuildContext, text: &str) -> Result<Vec<RowOutcome>, String> {
    let table = parse_table(text)?;
    let mut checker = RowChecker::new(ctx);
    Ok(schedules(ctx, &table)?.map(|row| checker.check(row)).collect())
}

fn parse_table(text: &str) -> Result<toml::Table, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string().trim_end().replace('\n', " "))?;
    for key in table.keys() {
        if key != "schedule" && key != "defaults" {
            return Err(format!("unknown top-level key `{key}` (expected [defaults] and [[schedule]])"));
        }
    }
    Ok(table)
}

/// The file's `[[schedule]]` tables in order: the fields to check, or why the schedule does
/// not run. A repeated id is skipped. `Err` when the layout is wrong.
fn schedules<'a>(
    ctx: &'a BuildContext,
    table: &'a toml::Table,
) -> Result<impl Iterator<Item = SourceRow> + Send + 'a, String> {
    static EMPTY: std::sync::LazyLock<toml::Table> = std::sync::LazyLock::new(toml::Table::new);
    let defaults = match table.get("defaults") {
        None => &*EMPTY,
        Some(toml::Value::Table(t)) => t,
        Some(_) => return Err("`defaults` must be a table".into()),
    };
    let items: &[toml::Value] = match table.get("schedule") {
        None => &[],
        Some(toml::Value::Array(items)) => items,
        Some(_) => return Err("`schedule` must be an array of tables ([[schedule]])".into()),
    };
    if let Some(i) = items.iter().position(|item| !item.is_table()) {
        return Err(format!("schedule[{i}] is not a table"));
    }
    let mut seen = std::collections::HashSet::new();
    Ok(items.iter().enumerate().filter_map(|(i, item)| item.as_table().map(|t| (i, t))).map(move |(i, t)| {
        let id = match t.get("id") {
            Some(toml::Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            _ => format!("schedule[{i}]"),
        };
        if !seen.insert(id.clone()) {
            let problem = "the id is used by an earlier schedule in the file".into();
            return Err((id, SkipReason::Invalid { problem }));
        }
        read_one(ctx, defaults, t, &id).map_err(|reason| (id, reason))
    }))
}

fn read_one(ctx: &BuildContext, defaults: &toml::Table, t: &toml::Table, id: &str) -> Result<RawSchedule, SkipReason> {
    let invalid = |problem: String| SkipReason::Invalid { problem };
    if let Some(k) = t.keys().find(|k| !SCHEDULE_KEYS.contains(&k.as_str())) {
        return Err(invalid(format!("unknown key `{k}`")));
    }
    if t.get("id").and_then(|v| v.as_str()).is_none_or(|s| s.trim().is_empty()) {
        return Err(invalid("needs an `id` (a non-empty string)".into()));
    }
    let get = |k: &str| t.get(k).or_else(|| defaults.get(k));
    let string = |k: &str| -> Result<Option<String>, SkipReason> {
        match get(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(invalid(format!("`{k}` must be a string, not {}", other.type_str()))),
        }
    };
    let enabled = match get("enabled") {
        None => true,
        Some(toml::Value::Boolean(b)) => *b,
        Some(other) => return Err(invalid(format!("`enabled` must be true or false, not {}", other.type_str()))),
    };
    if !enabled {
        return Err(SkipReason::Disabled);
    }
    let timeout_secs = match get("timeout") {
        None => DEFAULT_TIMEOUT,
        Some(toml::Value::Integer(n)) => *n,
        Some(other) => return Err(invalid(format!("`timeout` must be whole seconds, not {}", other.type_str()))),
    };
    let kwargs: Kwargs = match t.get("kwargs") {
        None => Vec::new(),
        Some(toml::Value::Table(kw)) => kw.iter().map(|(k, v)| (k.clone(), to_py(v))).collect(),
        Some(other) => {
            return Err(SkipReason::BadArguments {
                field: "kwargs".into(),
                error: format!("must be a table, not {}", other.type_str()),
            });
        }
    };
    let zone = string("zone")?.or_else(|| ctx.default_zone.clone()).unwrap_or_else(|| "UTC".into());
    let jitter_secs = match get("jitter_secs") {
        None => None,
        Some(toml::Value::Integer(n)) => Some(*n),
        Some(other) => {
            let problem = format!("must be whole seconds, not {}", other.type_str());
            return Err(SkipReason::InvalidSetting { key: "jitter_secs", problem });
        }
    };
    let policies = PolicyTexts {
        overlap: string("overlap")?,
        catchup: string("catchup")?,
        jitter_secs,
        dst_gap: string("dst_gap")?,
        dst_overlap: string("dst_overlap")?,
    };
    Ok(RawSchedule {
        id: id.to_string(),
        task: string("task")?,
        task_description: string("description")?,
        function: string("function")?,
        cron: string("cron")?,
        zone,
        queue: string("queue")?,
        kwargs,
        timeout_secs,
        policies,
    })
}

/// TOML value → the Python value the job's function receives.
fn to_py(v: &toml::Value) -> PyValue {
    match v {
        toml::Value::String(s) => PyValue::Str(s.clone()),
        toml::Value::Integer(n) => PyValue::Int(*n),
        toml::Value::Float(f) => PyValue::Float(*f),
        toml::Value::Boolean(b) => PyValue::Bool(*b),
        // Python has no TOML date type in plain kwargs; pass the RFC 3339 text.
        toml::Value::Datetime(d) => PyValue::Str(d.to_string()),
        toml::Value::Array(items) => PyValue::List(items.iter().map(to_py).collect()),
        toml::Value::Table(t) => PyValue::Dict(t.iter().map(|(k, v)| (PyValue::Str(k.clone()), to_py(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;

    fn ctx() -> BuildContext {
        BuildContext {
            site: "local".into(),
            mode: Mode::Plain,
            queue_prefix: String::new(),
            default_zone: Some("Europe/Paris".into()),
            runner: "r.run".into(),
            defaults: crate::policy::Policies::default(),
        }
    }

    #[test]
    fn parses_schedules_and_isolates_bad_ones() {
        let text = r#"
            [defaults]
            queue = "short"
            [[schedule]]
            id = "a"
            function = "m.f"
            cron = "*/5 * * * * *"
            kwargs = { n = 1, s = "x", l = [1, 2.5, true], d = { k = "v" } }
            [[schedule]]
            id = "b"
            function = "m.g"
            cron = "61 * * * *"
            [[schedule]]
            id = "c"
            function = "m.h"
            cron = "* * * * *"
            enabled = false
            [[schedule]]
            id = "d"
            function = "m.h"
            cron = "* * * * *"
            zone = "Nowhere/City"
            [[schedule]]
            id = "e"
            function = "m.h"
            crom = "* * * * *"
        "#;
        let rows = parse_schedules(&ctx(), text).unwrap();
        assert_eq!(rows.len(), 5);
        let RowOutcome::Loaded(a) = &rows[0] else { panic!("{:?}", rows[0]) };
        assert_eq!(a.queue, "short");
        assert_eq!(&*a.zone, "Europe/Paris");
        // Key order follows toml's map (file order with its `preserve_order` feature, else
        // sorted); Python kwargs do not depend on it.
        let mut kw = a.kwargs.clone();
        kw.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(crate::pyvalue::kwargs_repr(&kw), "{'d': {'k': 'v'}, 'l': [1, 2.5, True], 'n': 1, 's': 'x'}");
        let reasons: Vec<_> = rows[1..]
            .iter()
            .map(|r| match r {
                RowOutcome::Skipped { reason, .. } => reason.code(),
                RowOutcome::Loaded(_) => "loaded",
            })
            .collect();
        assert_eq!(reasons, vec!["invalid_cron", "disabled", "unknown_zone", "invalid"]);
    }

    #[test]
    fn policy_keys_per_schedule_and_in_defaults() {
        use crate::policy::{Catchup, Overlap};
        let text = r#"
            [defaults]
            catchup = "all"
            [[schedule]]
            id = "a"
            function = "m.f"
            cron = "* * * * *"
            overlap = "replace"
            jitter_secs = 20
            dst_overlap = "both"
            [[schedule]]
            id = "b"
            function = "m.f"
            cron = "* * * * *"
            dst_gap = "sometimes"
            [[schedule]]
            id = "c"
            function = "m.f"
            cron = "* * * * *"
            jitter_secs = "20"
        "#;
        let rows = parse_schedules(&ctx(), text).unwrap();
        let RowOutcome::Loaded(a) = &rows[0] else { panic!("{:?}", rows[0]) };
        assert_eq!(
            (a.policies.overlap, a.policies.catchup, a.policies.jitter_secs),
            (Overlap::Replace, Catchup::All, 20)
        );
        assert_eq!(a.policies.dst_overlap.as_str(), "both");
        for row in &rows[1..] {
            let RowOutcome::Skipped { reason, .. } = row else { panic!("{row:?}") };
            assert_eq!(reason.code(), "invalid_setting", "{reason}");
        }
    }

    #[test]
    fn whole_file_errors() {
        assert!(parse_schedules(&ctx(), "[[schedule]\n").is_err());
        assert!(parse_schedules(&ctx(), "schedules = []").is_err());
        assert!(parse_schedules(&ctx(), "").unwrap().is_empty());
    }
}
