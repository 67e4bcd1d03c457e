//! One row of the schedule query ([`super::mariadb`]: a `tabBTU Task Schedule` row joined with
//! its `tabBTU Task` and the site's two zones) → a [`RawSchedule`], or why it does not run.
//! Pure: no I/O; a value of the wrong type is a row problem, never a panic.

use std::collections::HashMap;

use mysql_async::Row;

use super::check::{RawSchedule, SourceRow};
use super::frequency::{FrequencyFields, local_cron};
use super::skip::SkipReason;
use super::spec::FastHash;
use crate::policy::PolicyTexts;
use crate::pyvalue::{self, Kwargs};

/// Index of the first optional column in a result row (after the fixed ones of the query).
const FIRST_OPTIONAL: usize = 15;

/// Timeout used when a task says 0 seconds (BTU's own default).
const DEFAULT_TASK_TIMEOUT: i64 = 600;

/// Turns rows into [`RawSchedule`]s, parsing each task's `arguments` once per load (a task's
/// schedules all carry the same text; one SELECT reads one consistent snapshot).
pub(super) struct RowReader {
    /// The config file's zone, used when neither the row nor the site names one.
    default_zone: Option<String>,
    /// task name → its parsed `arguments`, or the parse error.
    task_arguments: HashMap<String, Result<Kwargs, String>, FastHash>,
}

impl RowReader {
    pub(super) fn new(default_zone: Option<String>) -> Self {
        RowReader { default_zone, task_arguments: HashMap::default() }
    }

    pub(super) fn read(&mut self, row: &mut Row) -> SourceRow {
        let id = match take::<String>(row, 0) {
            Ok(Some(id)) => id,
            // Frappe's primary key is never NULL; a non-text one would be a broken table.
            _ => "<unreadable name>".to_string(),
        };
        match self.fields(row) {
            Ok(Ok(mut raw)) => {
                raw.id = id;
                Ok(raw)
            }
            Ok(Err(reason)) => Err((id, reason)),
            Err(problem) => Err((id, SkipReason::Invalid { problem })),
        }
    }

    /// The row's fields (`id` left empty), or why it does not run; `Err` for an unreadable
    /// column.
    fn fields(&mut self, row: &mut Row) -> Result<Result<RawSchedule, SkipReason>, String> {
        let enabled = take::<i64>(row, 1)?.unwrap_or(0);
        let task = take::<String>(row, 2)?.filter(|t| !t.trim().is_empty());
        let task_description = take::<String>(row, 3)?;
        let queue = take::<String>(row, 4)?;
        let cron = take::<String>(row, 5)?;
        let overrides = take::<String>(row, 6)?;
        let task_name = take::<String>(row, 7)?;
        let docstatus = take::<i64>(row, 8)?;
        let function = take::<String>(row, 9)?;
        // A task's `arguments` are parsed once per load (below): the text is only converted
        // for a task not met yet. Every row of a task carries the same text (one SELECT, one
        // snapshot), which converted fine for its first row.
        let arguments = match &task {
            Some(t) if self.task_arguments.contains_key(t.as_str()) => None,
            _ => take::<String>(row, 10)?,
        };
        let max_duration = take::<i64>(row, 11)?;
        let desc_short = take::<String>(row, 12)?;
        let named = |z: String| Some(z.trim().to_string()).filter(|z| !z.is_empty());
        let scheduling_zone = take::<String>(row, 13)?.and_then(named);
        let system_zone = take::<String>(row, 14)?.and_then(named);
        let row_zone = take::<String>(row, FIRST_OPTIONAL)?.filter(|z| !z.trim().is_empty());
        let frequency = FrequencyFields {
            run_frequency: take::<String>(row, FIRST_OPTIONAL + 1)?,
            minute: take::<i64>(row, FIRST_OPTIONAL + 2)?,
            hour: take::<String>(row, FIRST_OPTIONAL + 3)?,
            day_of_week: take::<String>(row, FIRST_OPTIONAL + 4)?,
            day_of_month: take::<i64>(row, FIRST_OPTIONAL + 5)?,
            month: take::<String>(row, FIRST_OPTIONAL + 6)?,
        };
        let policies = PolicyTexts {
            overlap: take::<String>(row, FIRST_OPTIONAL + 7)?,
            catchup: take::<String>(row, FIRST_OPTIONAL + 8)?,
            jitter_secs: take::<i64>(row, FIRST_OPTIONAL + 9)?,
            dst_gap: take::<String>(row, FIRST_OPTIONAL + 10)?,
            dst_overlap: take::<String>(row, FIRST_OPTIONAL + 11)?,
        };

        if enabled == 0 {
            return Ok(Err(SkipReason::Disabled));
        }
        let Some(task) = task else { return Ok(Err(SkipReason::NoTask)) };
        if task_name.is_none() {
            return Ok(Err(SkipReason::TaskMissing { task }));
        }
        match docstatus.unwrap_or(0) {
            1 => {}
            0 => return Ok(Err(SkipReason::TaskDraft { task })),
            2 => return Ok(Err(SkipReason::TaskCancelled { task })),
            other => return Ok(Err(SkipReason::TaskNotSubmitted { task, docstatus: other })),
        }
        let base = match self.task_arguments.get(task.as_str()) {
            Some(parsed) => parsed,
            None => {
                let parsed = pyvalue::parse_kwargs(arguments.as_deref()).map_err(|e| e.to_string());
                self.task_arguments.entry(task.clone()).or_insert(parsed)
            }
        };
        let base = match base {
            Ok(k) => k,
            Err(error) => {
                return Ok(Err(SkipReason::BadArguments {
                    field: format!("task {task} arguments"),
                    error: error.clone(),
                }));
            }
        };
        let kwargs = match pyvalue::parse_kwargs(overrides.as_deref()) {
            Ok(over) if over.is_empty() => base.clone(),
            Ok(over) => pyvalue::merge_kwargs(base, &over),
            Err(e) => {
                return Ok(Err(SkipReason::BadArguments { field: "argument_overrides".into(), error: e.to_string() }));
            }
        };
        // Hourly..Yearly: the local cron from the fields (the stored cron_string is a UTC copy),
        // read in the zone the app itself reads the fields in: the site's System Settings zone.
        // Cron Style: the app's "Time Zone for Scheduling" (BTU Configuration).
        let (cron, site_zone) = match local_cron(&frequency) {
            Ok(None) => (cron, scheduling_zone.or(system_zone)),
            Ok(Some(local)) => (Some(local), system_zone.or(scheduling_zone)),
            Err(e) => return Ok(Err(SkipReason::InvalidFrequency(Box::new(e)))),
        };
        let timeout_secs = match max_duration.unwrap_or(0) {
            0 => DEFAULT_TASK_TIMEOUT,
            n => n,
        };
        Ok(Ok(RawSchedule {
            id: String::new(),
            task: Some(task),
            task_description: task_description.filter(|d| !d.is_empty()).or(desc_short),
            function,
            cron,
            // Row column (custom field) > the site's zone (above) > config file > UTC.
            zone: row_zone.or(site_zone).or_else(|| self.default_zone.clone()).unwrap_or_else(|| "UTC".to_string()),
            queue,
            kwargs,
            timeout_secs,
            policies,
        }))
    }
}

/// Column `i` as `T` (NULL → None); a value of the wrong type is a row problem, not a panic.
fn take<T: mysql_async::prelude::FromValue>(row: &mut Row, i: usize) -> Result<Option<T>, String> {
    // The column name is only looked up for the message: this runs for every column of every
    // row of a rebuild.
    let name =
        |row: &Row| row.columns_ref().get(i).map(|c| c.name_str().into_owned()).unwrap_or_else(|| format!("#{i}"));
    match row.take_opt::<Option<T>, usize>(i) {
        None => Err(format!("column {} missing from the result", name(row))),
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(format!("column {}: unreadable value {:?}", name(row), e.0)),
    }
}
