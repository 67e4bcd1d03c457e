//! Schedules of one Frappe site, read from its MariaDB database (the BTU app's tables).
//!
//! A schedule runs when `enabled = 1` and its task exists with `docstatus = 1`. Every other row
//! is still read, so that the engine (and a notify caller) learns why it does not run.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};

use super::apps::{AppGate, installed_apps};
use super::btu_row::RowReader;
use super::check::{BuildContext, RowChecker, SourceRow};
use super::coalesce::Coalescer;
use super::error::SourceError;
use super::many::match_rows;
use super::pool::{CappedConn, ConnCap, SitePool};
use super::row::RowOutcome;
use super::sink::RowSink;
use super::skip::SkipReason;
use super::spec::KnownFingerprints;
use crate::config::{Config, DbConfig, SiteConfig};

/// Longest a whole load may take before the site counts as unreachable (a host that drops
/// packets would otherwise stall a rebuild for minutes).
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

const SCHEDULE_TABLE: &str = "tabBTU Task Schedule";

/// Identifiers only (fixed text); values always travel as parameters. The site's two zones
/// (`BTU Configuration.cron_time_zone` and `System Settings.time_zone` in `tabSingles`) come
/// along as uncorrelated subqueries, so a notify costs one round trip, not three. `{optional}` is the optional columns
/// ([`OPTIONAL_COLUMNS`]), each `s.<column>` or `NULL`.
const SELECT_ROWS: &str = "SELECT s.name, s.enabled, s.task, s.task_description, s.queue_name, \
     s.cron_string, s.argument_overrides, \
     t.name, t.docstatus, t.function_string, t.arguments, t.max_task_duration, t.desc_short, \
     (SELECT value FROM tabSingles WHERE doctype = ? AND field = ? LIMIT 1), \
     (SELECT value FROM tabSingles WHERE doctype = ? AND field = ? LIMIT 1), {optional} \
     FROM `tabBTU Task Schedule` s LEFT JOIN `tabBTU Task` t ON t.name = s.task";
/// The app's "Time Zone for Scheduling" (default `UTC`): the zone of `Cron Style` strings.
const SCHEDULING_ZONE_KEY: (&str, &str) = ("BTU Configuration", "cron_time_zone");
/// The site's own zone: the BTU app reads the Hourly..Yearly fields in it
/// (`get_system_timezone()` when it converts them to its UTC `cron_string`).
const SYSTEM_ZONE_KEY: (&str, &str) = ("System Settings", "time_zone");

/// Columns of `tabBTU Task Schedule` a site may lack, read when present, in this order after
/// the fixed ones: the per-row zone (a custom field some sites add), the frequency fields
/// (absent on schemas older than the app's Hourly..Yearly frequencies) and the policies
/// (custom fields `btu_hooks` ships; empty or NULL = the config's default).
const OPTIONAL_COLUMNS: [&str; 12] = [
    "cron_time_zone",
    "run_frequency",
    "minute",
    "hour",
    "day_of_week",
    "day_of_month",
    "month",
    "overlap_policy",
    "catchup_policy",
    "jitter_secs",
    "dst_gap",
    "dst_overlap",
];

/// Bit `1 << i` of a known answer: column `OPTIONAL_COLUMNS[i]` is present. Checked on every
/// full load; a notify reuses the answer instead of asking information_schema again, which
/// cost more than the schedule query itself.
const COLUMNS_UNKNOWN: u16 = 1 << 15;

/// Most ids one `IN (...)` query names (a prepared statement takes at most 65,535 parameters).
const MAX_IDS_PER_QUERY: usize = 10_000;

#[derive(Debug, Clone)]
pub struct MariaDbSource {
    ctx: BuildContext,
    target: String,
    /// The site's connections, under the cap every site shares.
    pool: SitePool,
    /// Which optional columns exist, or `COLUMNS_UNKNOWN`; shared by the clones the engine
    /// hands to tasks.
    optional_columns: Arc<AtomicU16>,
    /// A site discovered in a bench is read only while BTU is installed on it.
    apps: AppGate,
    /// The notifies' single-schedule reads, coalesced into [`MariaDbSource::load_many`].
    reads: Coalescer<RowOutcome, SourceError>,
}

impl MariaDbSource {
    /// The site's source; nothing connects until the first load, and its connections count
    /// against `cap` (shared by every site).
    pub fn new(site: &SiteConfig, config: &Config, cap: &ConnCap) -> Self {
        let ctx = BuildContext {
            site: site.name.as_str().into(),
            mode: site.mode,
            queue_prefix: config.frappe.queue_prefix.clone(),
            default_zone: config.daemon.time_zone.clone(),
            runner: config.frappe.runner.clone(),
            defaults: config.defaults,
        };
        let opts: Opts = match &site.db {
            DbConfig::Params { host, port, user, password, database, socket } => OptsBuilder::default()
                .ip_or_hostname(host.clone())
                .tcp_port(*port)
                .socket(socket.clone())
                .user(Some(user.clone()))
                .pass(Some(password.expose().to_string()))
                .db_name(Some(database.clone()))
                .into(),
            DbConfig::Url(url) => url.opts().clone(),
        };
        // The driver would otherwise open a second connection over the server's Unix socket
        // after every TCP connect to a local server, so each connect briefly counted twice
        // against the cap (and cost twice the handshakes). `db_socket` still picks a socket.
        let opts: Opts = OptsBuilder::from_opts(opts).prefer_socket(false).into();
        MariaDbSource {
            ctx,
            target: site.db.describe(),
            pool: cap.site(opts),
            optional_columns: Arc::new(AtomicU16::new(COLUMNS_UNKNOWN)),
            apps: AppGate::new(site.name.as_str().into(), site.discovered),
            reads: Coalescer::new(),
        }
    }

    pub fn site(&self) -> &str {
        &self.ctx.site
    }

    /// `mysql://user@host:port/db`, no password.
    /// Whether the site is served only while BTU is installed (found in a bench).
    pub fn requires_app(&self) -> bool {
        self.apps.required()
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    /// The connection cap this source's connections count against.
    pub fn cap(&self) -> &ConnCap {
        self.pool.cap()
    }

    /// A connection to the site (waits while every slot of the cap is busy).
    async fn conn(&self) -> Result<CappedConn, SourceError> {
        self.pool.get().await.map_err(|e| self.db_err(e))
    }

    fn db_err(&self, e: impl std::fmt::Display) -> SourceError {
        SourceError::Database { site: self.ctx.site.to_string(), target: self.target.clone(), message: e.to_string() }
    }

    async fn with_timeout<T>(&self, fut: impl Future<Output = Result<T, SourceError>>) -> Result<T, SourceError> {
        match tokio::time::timeout(LOAD_TIMEOUT, fut).await {
            Ok(r) => r,
            Err(_) => Err(SourceError::Timeout {
                site: self.ctx.site.to_string(),
                target: self.target.clone(),
                secs: LOAD_TIMEOUT.as_secs(),
            }),
        }
    }

    /// `SELECT 1`, for `btu check-config`.
    pub async fn ping(&self) -> Result<(), SourceError> {
        self.with_timeout(async {
            let mut conn = self.conn().await?;
            let one: Option<i64> = conn.query_first("SELECT 1").await.map_err(|e| self.db_err(e))?;
            conn.release();
            if one == Some(1) { Ok(()) } else { Err(self.db_err("SELECT 1 returned no row")) }
        })
        .await
    }

    /// The apps installed on the site, for `btu check-config`: the union of
    /// `tabInstalled Application.app_name` and the JSON list in `tabDefaultValue`
    /// (`defkey='installed_apps'`; Frappe's `db.get_global` row has `parent='__global'` and
    /// `parenttype='__default'`, so either parent is read), which is what real Frappe v15 keeps
    /// up to date (the table is refilled only by `bench migrate`). Sorted, without duplicates.
    pub async fn installed_apps(&self) -> Result<Vec<String>, SourceError> {
        self.with_timeout(async {
            let mut conn = self.conn().await?;
            let apps = installed_apps(&mut conn).await.map_err(|e| self.db_err(e))?;
            conn.release();
            Ok(apps)
        })
        .await
    }

    pub async fn load_all(&self) -> Result<Vec<RowOutcome>, SourceError> {
        let mut target = Outcomes { checker: RowChecker::new(&self.ctx), out: Vec::new() };
        self.with_timeout(self.read_rows(Rows::All, &mut target)).await?;
        Ok(target.out)
    }

    /// Every row for a rebuild, streamed into `sink` as it comes from the server; rows
    /// `known` lists with their fingerprint are not built.
    pub async fn load_rebuild(&self, known: &KnownFingerprints, sink: &mut RowSink) -> Result<(), SourceError> {
        let mut target = Rebuild { checker: RowChecker::new(&self.ctx), known, sink };
        self.with_timeout(async {
            self.read_rows(Rows::All, &mut target).await?;
            target.sink.flush().await;
            Ok(())
        })
        .await
    }

    pub async fn load_one(&self, schedule: &str) -> Result<RowOutcome, SourceError> {
        let mut target = Outcomes { checker: RowChecker::new(&self.ctx), out: Vec::new() };
        self.with_timeout(self.read_rows(Rows::One(schedule), &mut target)).await?;
        Ok(target.out.pop().unwrap_or_else(|| RowOutcome::Skipped {
            site: self.ctx.site.to_string(),
            schedule: schedule.to_string(),
            reason: SkipReason::NotFound,
        }))
    }

    /// The single-schedule reads of this site (shared by clones).
    pub(super) fn reads(&self) -> &Coalescer<RowOutcome, SourceError> {
        &self.reads
    }

    /// One answer per id, in order, each what [`MariaDbSource::load_one`] answers for it
    /// alone, read by one `IN (...)` query per [`MAX_IDS_PER_QUERY`] ids (duplicates allowed).
    /// An id the rows cannot answer for certain (`source::many`) is read alone afterwards.
    pub async fn load_many(&self, ids: &[String]) -> Result<Vec<RowOutcome>, SourceError> {
        if let [id] = ids {
            return Ok(vec![self.load_one(id).await?]);
        }
        let mut target = Outcomes { checker: RowChecker::new(&self.ctx), out: Vec::with_capacity(ids.len()) };
        self.with_timeout(async {
            for chunk in ids.chunks(MAX_IDS_PER_QUERY) {
                self.read_rows(Rows::These(&padded(chunk)), &mut target).await?;
            }
            Ok(())
        })
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, answer) in ids.iter().zip(match_rows(&self.ctx.site, ids, target.out)) {
            out.push(match answer {
                Some(row) => row,
                None => self.load_one(id).await?,
            });
        }
        Ok(out)
    }

    /// The rows of the schedules named, read by one query per [`MAX_IDS_PER_QUERY`] ids (a
    /// parameterised `IN (...)`); an id without a row comes back as `Skipped { NotFound }`.
    pub async fn load_some(&self, ids: &[String]) -> Result<Vec<RowOutcome>, SourceError> {
        let mut target = Outcomes { checker: RowChecker::new(&self.ctx), out: Vec::with_capacity(ids.len()) };
        self.with_timeout(async {
            for chunk in ids.chunks(MAX_IDS_PER_QUERY) {
                self.read_rows(Rows::These(chunk), &mut target).await?;
            }
            Ok(())
        })
        .await?;
        let found: HashSet<String> = target.out.iter().map(|r| r.schedule().to_string()).collect();
        for id in ids.iter().filter(|id| !found.contains(id.as_str())) {
            target.out.push(RowOutcome::Skipped {
                site: self.ctx.site.to_string(),
                schedule: id.clone(),
                reason: SkipReason::NotFound,
            });
        }
        Ok(target.out)
    }

    /// Closes the site's idle connections (busy ones close when their work ends).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Reads the schedule rows (all, or the ones named) and hands each to `target`, as the
    /// fields to check or as the reason it does not run. Rows are streamed: only the row
    /// being read is in memory here. The connection serves the site's next load only when
    /// this one ended cleanly.
    async fn read_rows(&self, rows: Rows<'_>, target: &mut impl RowTarget) -> Result<(), SourceError> {
        let mut conn = self.conn().await?;
        if self.read_rows_on(&mut conn, rows, target).await? {
            conn.release();
        }
        Ok(())
    }

    /// [`MariaDbSource::read_rows`] on `conn`: `Ok(false)` when the engine stopped reading
    /// (the rest of the result is discarded with the connection).
    async fn read_rows_on(
        &self,
        conn: &mut Conn,
        rows: Rows<'_>,
        target: &mut impl RowTarget,
    ) -> Result<bool, SourceError> {
        let partial = match rows {
            Rows::All => None,
            Rows::One(id) => Some(id),
            Rows::These(_) => Some(""),
        };
        if !self.apps.open(partial, conn).await.map_err(|e| self.db_err(e))? {
            return Ok(true);
        }
        let present = match (&rows, self.optional_columns.load(Ordering::Relaxed)) {
            (Rows::One(_) | Rows::These(_), known) if known != COLUMNS_UNKNOWN => known,
            _ => {
                let marks = vec!["?"; OPTIONAL_COLUMNS.len()].join(", ");
                let mut params: Vec<&str> = vec![SCHEDULE_TABLE];
                params.extend(OPTIONAL_COLUMNS);
                let names: Vec<String> = conn
                    .exec(
                        format!(
                            "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
                             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME IN ({marks})"
                        ),
                        params,
                    )
                    .await
                    .map_err(|e| self.db_err(e))?;
                let present = (0..OPTIONAL_COLUMNS.len())
                    .filter(|&i| names.iter().any(|n| n.eq_ignore_ascii_case(OPTIONAL_COLUMNS[i])))
                    .fold(0u16, |bits, i| bits | 1 << i);
                self.optional_columns.store(present, Ordering::Relaxed);
                present
            }
        };
        let optional: Vec<String> = OPTIONAL_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| if present & (1 << i) != 0 { format!("s.`{c}`") } else { "NULL".to_string() })
            .collect();
        let sql = SELECT_ROWS.replace("{optional}", &optional.join(", "));
        let (doctype, field) = SCHEDULING_ZONE_KEY;
        let (sys_doctype, sys_field) = SYSTEM_ZONE_KEY;
        // Both as prepared statements (binary protocol), so both results have one type.
        let started = match rows {
            Rows::All => conn.exec_iter(sql, (doctype, field, sys_doctype, sys_field)).await,
            Rows::One(id) => {
                conn.exec_iter(format!("{sql} WHERE s.name = ?"), (doctype, field, sys_doctype, sys_field, id)).await
            }
            Rows::These(ids) => {
                let marks = vec!["?"; ids.len()].join(", ");
                let mut params: Vec<mysql_async::Value> =
                    vec![doctype.into(), field.into(), sys_doctype.into(), sys_field.into()];
                params.extend(ids.iter().map(|id| mysql_async::Value::from(id.as_str())));
                conn.exec_iter(format!("{sql} WHERE s.name IN ({marks})"), params).await
            }
        };
        let mut result = match started {
            Ok(r) => r,
            Err(e) => {
                // An optional column may have been dropped since it was last checked: ask
                // information_schema again next time rather than failing every notify.
                self.optional_columns.store(COLUMNS_UNKNOWN, Ordering::Relaxed);
                return Err(self.db_err(e));
            }
        };
        let mut reader = RowReader::new(self.ctx.default_zone.clone());
        while let Some(mut row) = result.next().await.map_err(|e| self.db_err(e))? {
            if !target.take(reader.read(&mut row)).await {
                // The engine stopped: read no further.
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// `ids` padded to a power of two with its last id (the `IN` list is a set), so that batches
/// of varying sizes share a few prepared statements in the connection's statement cache.
fn padded(ids: &[String]) -> Vec<String> {
    let mut out = ids.to_vec();
    if let Some(last) = ids.last() {
        out.resize(ids.len().next_power_of_two().min(MAX_IDS_PER_QUERY), last.clone());
    }
    out
}

/// Which rows [`MariaDbSource::read_rows`] reads.
enum Rows<'a> {
    All,
    One(&'a str),
    /// At most [`MAX_IDS_PER_QUERY`].
    These(&'a [String]),
}

/// What becomes of the rows [`MariaDbSource::read_rows`] reads.
trait RowTarget {
    /// Takes one row; `false` stops reading.
    async fn take(&mut self, row: SourceRow) -> bool;
}

/// Every row as a [`RowOutcome`] (`load_all`, `load_one`).
struct Outcomes<'a> {
    checker: RowChecker<'a>,
    out: Vec<RowOutcome>,
}

impl RowTarget for Outcomes<'_> {
    async fn take(&mut self, row: SourceRow) -> bool {
        self.out.push(self.checker.check(row));
        true
    }
}

/// Rows for a rebuild, batched into a [`RowSink`].
struct Rebuild<'a> {
    checker: RowChecker<'a>,
    known: &'a KnownFingerprints,
    sink: &'a mut RowSink,
}

impl RowTarget for Rebuild<'_> {
    async fn take(&mut self, row: SourceRow) -> bool {
        let row = self.checker.check_rebuild(row, self.known);
        self.sink.push(row).await
    }
}
