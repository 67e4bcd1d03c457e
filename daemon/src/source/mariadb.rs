//! Schedules of one Frappe site, read from its MariaDB database (the BTU app's tables).
//!
//! A schedule runs when `enabled = 1` and its task exists with `docstatus = 1`. Every other row
//! is still read, so that the engine (and a notify caller) learns why it does not run.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, Row};

use super::{BuildContext, RawSchedule, RowOutcome, SkipReason, SourceError, finish};
use crate::config::{Config, DbConfig, SiteConfig};
use crate::pyliteral;

/// Longest a whole load may take before the site counts as unreachable (a host that drops
/// packets would otherwise stall a rebuild for minutes).
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

const SCHEDULE_TABLE: &str = "tabBTU Task Schedule";
const ZONE_COLUMN: &str = "cron_time_zone";

/// Identifiers only (fixed text); values always travel as parameters.
const SELECT_ROWS: &str = "SELECT s.name, s.enabled, s.task, s.task_description, s.queue_name, \
     s.cron_string, s.argument_overrides, {zone}, \
     t.name, t.docstatus, t.function_string, t.arguments, t.max_task_duration, t.desc_short \
     FROM `tabBTU Task Schedule` s LEFT JOIN `tabBTU Task` t ON t.name = s.task";

/// Timeout used when a task says 0 seconds (BTU's own default).
const DEFAULT_TASK_TIMEOUT: i64 = 600;

#[derive(Debug, Clone)]
pub struct MariaDbSource {
    ctx: BuildContext,
    target: String,
    pool: Pool,
}

impl MariaDbSource {
    /// Creates the (lazy) connection pool; nothing connects until the first load.
    pub fn new(site: &SiteConfig, config: &Config) -> Self {
        let ctx = BuildContext {
            site: site.name.clone(),
            mode: site.mode,
            queue_prefix: config.frappe.queue_prefix.clone(),
            default_zone: config.daemon.time_zone.clone(),
            runner: config.frappe.runner.clone(),
        };
        // A small pool: rebuilds use one connection, notifications a few more.
        let pool_opts = PoolOpts::default()
            .with_constraints(PoolConstraints::new(0, 8).unwrap_or_default())
            .with_inactive_connection_ttl(Duration::from_secs(60));
        let opts: Opts = match &site.db {
            DbConfig::Params { host, port, user, password, database } => OptsBuilder::default()
                .ip_or_hostname(host.clone())
                .tcp_port(*port)
                .user(Some(user.clone()))
                .pass(Some(password.expose().to_string()))
                .db_name(Some(database.clone()))
                .pool_opts(pool_opts)
                .into(),
            DbConfig::Url(url) => match Opts::from_url(url.expose()) {
                Ok(o) => OptsBuilder::from_opts(o).pool_opts(pool_opts).into(),
                // Config validation only checked the scheme; a malformed URL surfaces on load.
                Err(_) => OptsBuilder::default().ip_or_hostname("invalid-url.invalid").into(),
            },
        };
        MariaDbSource { ctx, target: site.db.describe(), pool: Pool::new(opts) }
    }

    pub fn site(&self) -> &str {
        &self.ctx.site
    }

    /// `mysql://user@host:port/db`, no password.
    pub fn target(&self) -> &str {
        &self.target
    }

    fn db_err(&self, e: impl std::fmt::Display) -> SourceError {
        SourceError::Database { site: self.ctx.site.clone(), target: self.target.clone(), message: e.to_string() }
    }

    async fn with_timeout<T>(
        &self,
        fut: impl Future<Output = Result<T, SourceError>>,
    ) -> Result<T, SourceError> {
        match tokio::time::timeout(LOAD_TIMEOUT, fut).await {
            Ok(r) => r,
            Err(_) => Err(SourceError::Timeout {
                site: self.ctx.site.clone(),
                target: self.target.clone(),
                secs: LOAD_TIMEOUT.as_secs(),
            }),
        }
    }

    /// `SELECT 1`, for `btu check-config`.
    pub async fn ping(&self) -> Result<(), SourceError> {
        self.with_timeout(async {
            let mut conn = self.pool.get_conn().await.map_err(|e| self.db_err(e))?;
            let one: Option<i64> = conn.query_first("SELECT 1").await.map_err(|e| self.db_err(e))?;
            if one == Some(1) { Ok(()) } else { Err(self.db_err("SELECT 1 returned no row")) }
        })
        .await
    }

    pub async fn load_all(&self) -> Result<Vec<RowOutcome>, SourceError> {
        self.with_timeout(self.load(None)).await
    }

    pub async fn load_one(&self, schedule: &str) -> Result<RowOutcome, SourceError> {
        let mut rows = self.with_timeout(self.load(Some(schedule))).await?;
        Ok(rows.pop().unwrap_or_else(|| RowOutcome::Skipped {
            site: self.ctx.site.clone(),
            schedule: schedule.to_string(),
            reason: SkipReason::NotFound,
        }))
    }

    pub async fn close(&self) {
        // Errors here only mean connections were already gone.
        let _ = self.pool.clone().disconnect().await;
    }

    async fn load(&self, one: Option<&str>) -> Result<Vec<RowOutcome>, SourceError> {
        let mut conn = self.pool.get_conn().await.map_err(|e| self.db_err(e))?;
        let site_zone = site_zone(&mut conn).await.map_err(|e| self.db_err(e))?;
        let has_zone_column: Option<i64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?",
                (SCHEDULE_TABLE, ZONE_COLUMN),
            )
            .await
            .map_err(|e| self.db_err(e))?;
        let zone_expr = if has_zone_column.unwrap_or(0) > 0 { "s.cron_time_zone" } else { "NULL" };
        let sql = SELECT_ROWS.replace("{zone}", zone_expr);
        let fallback_zone = site_zone
            .filter(|z| !z.trim().is_empty())
            .or_else(|| self.ctx.default_zone.clone())
            .unwrap_or_else(|| "UTC".to_string());

        let mut out = Vec::new();
        let mut on_row = |row: Row| out.push(self.row_outcome(row, &fallback_zone));
        match one {
            None => {
                let mut result = conn.query_iter(sql).await.map_err(|e| self.db_err(e))?;
                result.for_each(&mut on_row).await.map_err(|e| self.db_err(e))?;
            }
            Some(id) => {
                let sql = format!("{sql} WHERE s.name = ?");
                let mut result = conn.exec_iter(sql, (id,)).await.map_err(|e| self.db_err(e))?;
                result.for_each(&mut on_row).await.map_err(|e| self.db_err(e))?;
            }
        }
        Ok(out)
    }

    fn row_outcome(&self, mut row: Row, fallback_zone: &str) -> RowOutcome {
        let id = match take::<String>(&mut row, 0) {
            Ok(Some(id)) => id,
            // Frappe's primary key is never NULL; a non-text one would be a broken table.
            _ => "<unreadable name>".to_string(),
        };
        match self.read_row(&mut row, id.clone(), fallback_zone) {
            Ok(outcome) => outcome,
            Err(problem) => RowOutcome::Skipped {
                site: self.ctx.site.clone(),
                schedule: id,
                reason: SkipReason::Invalid { problem },
            },
        }
    }

    fn read_row(&self, row: &mut Row, id: String, fallback_zone: &str) -> Result<RowOutcome, String> {
        let skip = |reason| RowOutcome::Skipped { site: self.ctx.site.clone(), schedule: id.clone(), reason };
        let enabled = take::<i64>(row, 1)?.unwrap_or(0);
        let task = take::<String>(row, 2)?.filter(|t| !t.trim().is_empty());
        let task_description = take::<String>(row, 3)?;
        let queue = take::<String>(row, 4)?;
        let cron = take::<String>(row, 5)?;
        let overrides = take::<String>(row, 6)?;
        let row_zone = take::<String>(row, 7)?.filter(|z| !z.trim().is_empty());
        let task_name = take::<String>(row, 8)?;
        let docstatus = take::<i64>(row, 9)?;
        let function = take::<String>(row, 10)?;
        let arguments = take::<String>(row, 11)?;
        let max_duration = take::<i64>(row, 12)?;
        let desc_short = take::<String>(row, 13)?;

        if enabled == 0 {
            return Ok(skip(SkipReason::Disabled));
        }
        let Some(task) = task else { return Ok(skip(SkipReason::NoTask)) };
        if task_name.is_none() {
            return Ok(skip(SkipReason::TaskMissing { task }));
        }
        match docstatus.unwrap_or(0) {
            1 => {}
            0 => return Ok(skip(SkipReason::TaskDraft { task })),
            2 => return Ok(skip(SkipReason::TaskCancelled { task })),
            other => return Ok(skip(SkipReason::TaskNotSubmitted { task, docstatus: other })),
        }
        let base = match pyliteral::parse_kwargs(arguments.as_deref()) {
            Ok(k) => k,
            Err(e) => {
                return Ok(skip(SkipReason::BadArguments {
                    field: format!("task {task} arguments"),
                    error: e.to_string(),
                }));
            }
        };
        let over = match pyliteral::parse_kwargs(overrides.as_deref()) {
            Ok(k) => k,
            Err(e) => {
                return Ok(skip(SkipReason::BadArguments { field: "argument_overrides".into(), error: e.to_string() }));
            }
        };
        let timeout_secs = match max_duration.unwrap_or(0) {
            0 => DEFAULT_TASK_TIMEOUT,
            n => n,
        };
        Ok(finish(
            &self.ctx,
            RawSchedule {
                id: id.clone(),
                task: Some(task),
                task_description: task_description.filter(|d| !d.is_empty()).or(desc_short),
                function,
                cron,
                zone: row_zone.unwrap_or_else(|| fallback_zone.to_string()),
                queue,
                kwargs: pyliteral::merge_kwargs(&base, &over),
                timeout_secs,
            },
        ))
    }
}

/// `BTU Configuration.cron_time_zone` from `tabSingles`, if set.
async fn site_zone(conn: &mut Conn) -> Result<Option<String>, mysql_async::Error> {
    let v: Option<Option<String>> = conn
        .exec_first(
            "SELECT value FROM tabSingles WHERE doctype = ? AND field = ? LIMIT 1",
            ("BTU Configuration", "cron_time_zone"),
        )
        .await?;
    Ok(v.flatten().map(|z| z.trim().to_string()).filter(|z| !z.is_empty()))
}

/// Column `i` as `T` (NULL → None); a value of the wrong type is a row problem, not a panic.
fn take<T: mysql_async::prelude::FromValue>(row: &mut Row, i: usize) -> Result<Option<T>, String> {
    let name = row.columns_ref().get(i).map(|c| c.name_str().into_owned()).unwrap_or_else(|| format!("#{i}"));
    match row.take_opt::<Option<T>, usize>(i) {
        None => Err(format!("column {name} missing from the result")),
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(format!("column {name}: unreadable value {:?}", e.0)),
    }
}
