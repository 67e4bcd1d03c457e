//! Sources of schedules: the schedule model every source produces, and the sources themselves
//! ([`mariadb`]: Frappe BTU tables, [`file`]: a TOML schedules file).
//!
//! A source never fails because of one bad row: each row becomes a [`RowOutcome`], either a
//! runnable [`ScheduleSpec`] or a [`RowOutcome::Skipped`] with the reason. A [`SourceError`] means
//! the source as a whole could not be read (database down, file unreadable); the engine then
//! keeps the schedules it loaded last.
//!
//! | file             | one job                                                               |
//! |------------------|-----------------------------------------------------------------------|
//! | `spec.rs`        | the schedule model: [`ScheduleSpec`], the `Interner` its texts share   |
//! | `frequency.rs`   | the local cron of an Hourly..Yearly row, from its fields (pure)         |
//! | `fingerprint.rs` | [`Fingerprint`]: what changes whenever a schedule's runs or jobs would  |
//! | `skip.rs`        | [`SkipReason`]: why a row does not run                                 |
//! | `row.rs`         | what a row became: [`RowOutcome`], [`RebuildRow`]                      |
//! | `error.rs`       | [`SourceError`]: a whole source could not be read                      |
//! | `check.rs`       | `RowChecker`: the one check every row of every source goes through      |
//! | `sink.rs`        | [`RowSink`]: a rebuild's rows, in batches, to the engine               |
//! | `coalesce.rs`    | [`Coalescer`]: notifies' reads that meet in flight, read as one batch   |
//! | `many.rs`        | one `IN (...)` read's rows matched back to the ids asked for (pure)     |
//! | `apps.rs`        | the apps a site has installed; the gate for sites found in a bench     |
//! | `pool.rs`        | [`ConnCap`]: every site's MariaDB connections under one cap             |
//! | `mariadb.rs`     | rows from a Frappe site's BTU tables                                   |
//! | `file.rs`        | rows from a TOML schedules file                                        |
//! | `set.rs`         | [`SourceSet`]: the sources by site index; a bench's re-read on rebuilds |
//!
//! The sources read rows and hand them to a `RowChecker`; they never build a spec themselves.

mod apps;
mod btu_row;
mod check;
mod coalesce;
mod error;
pub(crate) mod file;
mod fingerprint;
mod frequency;
mod many;
pub(crate) mod mariadb;
mod pool;
mod row;
mod set;
mod sink;
mod skip;
mod spec;

/// For other modules' tests that build a spec the way a source does.
#[cfg(test)]
pub(crate) use check::plain_row;
pub use coalesce::{BatchError, Coalescer};
pub use error::SourceError;
pub use fingerprint::Fingerprint;
pub use pool::{CONNECT_TIMEOUT, ConnCap, IDLE_TTL};
pub use row::{RebuildRow, RowOutcome, SkippedRow};
pub use set::SourceSet;
pub use sink::RowSink;
pub use skip::SkipReason;
pub use spec::{FastHash, KnownFingerprints, ScheduleSpec};

use crate::config::Config;

/// A configured source of schedules.
#[derive(Debug, Clone)]
pub enum Source {
    MariaDb(mariadb::MariaDbSource),
    File(file::FileSource),
    /// A bench site that was dropped (or lost its configuration): no rows, so a rebuild
    /// takes its schedules out of the plan. Named so the site keeps its index.
    Dropped(String),
}

impl Source {
    /// One source per `[[sites]]` entry plus the `[file]` source, as configured, the MariaDB
    /// ones under a cap of their own (`[mariadb] max_connections`).
    pub fn all_from_config(config: &Config) -> Vec<Source> {
        Source::all_with_cap(config, &ConnCap::new(config.mariadb.max_connections))
    }

    /// [`Source::all_from_config`], the MariaDB sources' connections counting against `cap`.
    pub fn all_with_cap(config: &Config, cap: &ConnCap) -> Vec<Source> {
        let mut out: Vec<Source> =
            config.sites.iter().map(|site| Source::MariaDb(mariadb::MariaDbSource::new(site, config, cap))).collect();
        if let Some(f) = &config.file {
            out.push(Source::File(file::FileSource::new(f, config)));
        }
        out
    }

    pub fn site(&self) -> &str {
        match self {
            Source::MariaDb(s) => s.site(),
            Source::File(s) => s.site(),
            Source::Dropped(site) => site,
        }
    }

    /// Every schedule row of this source, each validated on its own.
    pub async fn load_all(&self) -> Result<Vec<RowOutcome>, SourceError> {
        match self {
            Source::MariaDb(s) => s.load_all().await,
            Source::File(s) => s.load_all().await,
            Source::Dropped(_) => Ok(Vec::new()),
        }
    }

    /// Every schedule row, for a rebuild, streamed into `sink` (flushed at the end): rows
    /// whose fingerprint `known` lists for their id are sent as [`RebuildRow::Unchanged`]
    /// without being built. On `Err` the rows already sent are genuine but not all rows were.
    pub async fn load_rebuild(&self, known: &KnownFingerprints, sink: &mut RowSink) -> Result<(), SourceError> {
        match self {
            Source::MariaDb(s) => s.load_rebuild(known, sink).await,
            Source::File(s) => s.load_rebuild(known, sink).await,
            Source::Dropped(_) => Ok(()),
        }
    }

    /// One schedule (for live notifications); `Skipped { NotFound }` when it does not exist.
    /// Reads asked for while one of the same site is in flight are coalesced into one read
    /// ([`Coalescer`]); each still gets exactly its own answer.
    pub async fn load_one(&self, schedule: &str) -> Result<RowOutcome, SourceError> {
        let answer = match self {
            Source::MariaDb(s) => {
                coalesced(s.reads(), s.clone(), schedule, |s, ids| async move { s.load_many(&ids).await }).await
            }
            Source::File(s) => {
                coalesced(s.reads(), s.clone(), schedule, |s, ids| async move { s.load_many(&ids).await }).await
            }
            Source::Dropped(site) => Ok(RowOutcome::Skipped {
                site: site.clone(),
                schedule: schedule.to_string(),
                reason: SkipReason::NotFound,
            }),
        };
        answer.map_err(|e| match e {
            BatchError::Read(e) => e,
            other => SourceError::Interrupted { site: self.site().to_string(), reason: other.to_string() },
        })
    }

    /// Whether the source's rows can be followed after a legacy request (a database, whose
    /// rows change when the BTU app's transaction commits; a schedules file is not followed).
    pub fn follows_rows(&self) -> bool {
        matches!(self, Source::MariaDb(_))
    }

    /// The rows of the schedules named, in one query (a database), each `Skipped { NotFound }`
    /// when missing; a schedules file answers with no rows (its schedules are not followed).
    pub async fn load_some(&self, ids: &[String]) -> Result<Vec<RowOutcome>, SourceError> {
        match self {
            Source::MariaDb(s) => s.load_some(ids).await,
            Source::File(_) | Source::Dropped(_) => Ok(Vec::new()),
        }
    }

    /// The connection cap of a MariaDB source.
    pub fn conn_cap(&self) -> Option<&ConnCap> {
        match self {
            Source::MariaDb(s) => Some(s.cap()),
            _ => None,
        }
    }

    /// Closes idle connections (MariaDB); call once at shutdown or when the source is replaced.
    pub async fn close(&self) {
        if let Source::MariaDb(s) = self {
            s.close().await;
        }
    }
}

/// A read of `schedule` through a source's coalescer: batched with the reads of the same site
/// that meet it in flight, each batch read with `load` on a clone of `source`.
async fn coalesced<S, F, Fut>(
    reads: &Coalescer<RowOutcome, SourceError>,
    source: S,
    schedule: &str,
    load: F,
) -> Result<RowOutcome, BatchError<SourceError>>
where
    S: Clone + Send + 'static,
    F: Fn(S, Vec<String>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Vec<RowOutcome>, SourceError>> + Send + 'static,
{
    reads.get(schedule, move |ids| load(source.clone(), ids)).await
}
