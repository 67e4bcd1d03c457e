//! The daemon's own state in Redis, namespaced by site (documented in `docs/daemon.md`):
//!
//! | key | type | content |
//! |-----|------|---------|
//! | `btu:<site>:upcoming` | ZSET | member = schedule id, score = next due instant (epoch seconds) |
//! | `btu:<site>:schedules` | HASH | schedule id → JSON [`StoredSchedule`] |
//! | `btu:<site>:history:<schedule>` | LIST | newest first, bounded: JSON [`HistoryEntry`] |
//! | `btu:<site>:claim:<portable job id>` | STRING | set once per run by the atomic enqueue; expires |
//!
//! Redis holds the upcoming runs so every daemon instance, the CLI and operators see them,
//! and so a restarted daemon knows which run was next (the missed-run rule needs it).

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

use crate::rq::HistoryAppend;
use crate::source::{Fingerprint, ScheduleSpec};

/// Writes are sent in pipelines of this many commands so a rebuild of 100k schedules neither
/// builds one giant request nor pays a round trip per schedule.
const CHUNK: usize = 1000;

pub fn upcoming_key(site: &str) -> String {
    format!("btu:{site}:upcoming")
}
pub fn schedules_key(site: &str) -> String {
    format!("btu:{site}:schedules")
}
pub fn history_key(site: &str, schedule: &str) -> String {
    format!("btu:{site}:history:{schedule}")
}
/// The claim of the run of `schedule` due at `due`: named after the run's PORTABLE id whatever
/// id form the job gets, so two daemons using different forms (or a form switch mid-flight)
/// claim the same key and the run is enqueued once (`docs/rq.md`, "Job ids").
pub fn claim_key(site: &str, schedule: &str, due: DateTime<Utc>) -> String {
    format!("btu:{site}:claim:{}", crate::rq::job_id(site, schedule, due))
}

/// What the CLI and a restarted daemon read about a planned schedule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredSchedule {
    pub task: Option<String>,
    pub function: String,
    pub cron: String,
    pub zone: String,
    pub queue: String,
    pub fingerprint: String,
}

impl StoredSchedule {
    pub fn from_spec(spec: &ScheduleSpec) -> Self {
        StoredSchedule {
            task: spec.task.as_deref().map(str::to_string),
            function: spec.function.clone(),
            cron: spec.cron.to_string(),
            zone: spec.zone.to_string(),
            queue: spec.queue.clone(),
            fingerprint: spec.fingerprint.to_string(),
        }
    }
}

/// [`StoredSchedule`]'s JSON written straight from a spec (a rebuild writes 100k of them; no
/// copies of the strings are made).
#[derive(Serialize)]
struct StoredRef<'a> {
    task: Option<&'a str>,
    function: &'a str,
    cron: &'a str,
    zone: &'a str,
    queue: &'a str,
    fingerprint: String,
}

impl<'a> StoredRef<'a> {
    fn of(spec: &'a ScheduleSpec) -> Self {
        StoredRef {
            task: spec.task.as_deref(),
            function: &spec.function,
            cron: &spec.cron,
            zone: &spec.zone,
            queue: &spec.queue,
            fingerprint: spec.fingerprint.to_string(),
        }
    }
}

/// Only the field a restart needs, so reading 100k stored entries allocates no other strings.
#[derive(Deserialize)]
struct StoredFingerprint {
    fingerprint: String,
}

/// One enqueued run in a schedule's history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HistoryEntry {
    pub job_id: String,
    /// RFC 3339 UTC.
    pub due: String,
    /// RFC 3339 UTC.
    pub enqueued_at: String,
}

/// An instant as the daemon writes it in history entries and logs: RFC 3339 UTC, whole seconds.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The history entry of a run of `schedule` due at `due` and enqueued at `now`, for a list
/// kept at `max` entries (`None` only if it cannot be written as JSON).
pub fn history_append(
    max: usize,
    site: &str,
    schedule: &str,
    job_id: &str,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<HistoryAppend> {
    let entry = HistoryEntry {
        job_id: job_id.to_string(),
        due: rfc3339(due),
        enqueued_at: now.to_rfc3339_opts(SecondsFormat::Millis, true),
    };
    let entry = serde_json::to_string(&entry).ok()?;
    Some(HistoryAppend { key: history_key(site, schedule), entry, max: max.max(1) })
}

/// What a previous daemon recorded about one schedule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoredPlan {
    /// Recorded next due instant.
    pub next: Option<DateTime<Utc>>,
    /// `None` when the HASH entry is missing or unreadable: the schedule is then planned
    /// afresh, which is safe.
    pub fingerprint: Option<Fingerprint>,
}

/// A site's state as a previous daemon left it: schedule id → what it recorded.
pub type SiteState = HashMap<String, StoredPlan>;

/// Entries fetched per ZSCAN/HSCAN call: the reply of one call stays small (a full HGETALL of
/// 100k JSON descriptions is a ~20 MB reply parsed into 200k values at once).
const SCAN_COUNT: usize = 1000;

/// Reads a site's stored plan with ZSCAN and HSCAN, a bounded batch at a time, keeping only
/// the recorded next run and fingerprint per schedule. A scan may return an entry twice;
/// that only overwrites it with the same value.
pub async fn load_site_state(conn: &mut ConnectionManager, site: &str) -> redis::RedisResult<SiteState> {
    let mut state = SiteState::new();
    let zkey = upcoming_key(site);
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<(String, f64)>) =
            redis::cmd("ZSCAN").arg(&zkey).arg(cursor).arg("COUNT").arg(SCAN_COUNT).query_async(conn).await?;
        for (id, score) in batch {
            state.entry(id).or_default().next = DateTime::from_timestamp(score as i64, 0);
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let hkey = schedules_key(site);
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<(String, String)>) =
            redis::cmd("HSCAN").arg(&hkey).arg(cursor).arg("COUNT").arg(SCAN_COUNT).query_async(conn).await?;
        for (id, json) in batch {
            let fingerprint = serde_json::from_str::<StoredFingerprint>(&json)
                .ok()
                .and_then(|s| Fingerprint::parse_hex(&s.fingerprint));
            state.entry(id).or_default().fingerprint = fingerprint;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    Ok(state)
}

/// One schedule's plan to record.
pub struct PlanWrite<'a> {
    pub spec: &'a ScheduleSpec,
    pub next: Option<DateTime<Utc>>,
    /// Also (re)write the HASH entry (skip when only the next run moved).
    pub describe: bool,
}

/// Records plans: ZADD (or ZREM when there is no next run) and HSET, pipelined.
pub async fn write_plans(conn: &mut ConnectionManager, site: &str, plans: &[PlanWrite<'_>]) -> redis::RedisResult<()> {
    let (zkey, hkey) = (upcoming_key(site), schedules_key(site));
    for chunk in plans.chunks(CHUNK) {
        let mut pipe = redis::pipe();
        for p in chunk {
            match p.next {
                Some(next) => pipe.zadd(&zkey, &*p.spec.id, next.timestamp()).ignore(),
                None => pipe.zrem(&zkey, &*p.spec.id).ignore(),
            };
            if p.describe {
                // Serialising plain strings cannot fail; an empty value would only hide the
                // schedule from the CLI, never break planning.
                let json = serde_json::to_string(&StoredRef::of(p.spec)).unwrap_or_default();
                pipe.hset(&hkey, &*p.spec.id, json).ignore();
            }
        }
        pipe.query_async::<()>(conn).await?;
    }
    Ok(())
}

/// Forgets schedules: ZREM + HDEL (their history stays, bounded, for the CLI).
pub async fn remove(conn: &mut ConnectionManager, site: &str, ids: &[String]) -> redis::RedisResult<()> {
    let (zkey, hkey) = (upcoming_key(site), schedules_key(site));
    for chunk in ids.chunks(CHUNK) {
        let mut pipe = redis::pipe();
        pipe.zrem(&zkey, chunk).ignore().hdel(&hkey, chunk).ignore();
        pipe.query_async::<()>(conn).await?;
    }
    Ok(())
}

/// The `count` newest history entries of a schedule (unreadable entries are left out).
pub async fn history(
    conn: &mut ConnectionManager,
    site: &str,
    schedule: &str,
    count: usize,
) -> redis::RedisResult<Vec<HistoryEntry>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let stop = isize::try_from(count).unwrap_or(isize::MAX) - 1;
    let raw: Vec<String> = conn.lrange(history_key(site, schedule), 0, stop).await?;
    Ok(raw.iter().filter_map(|s| serde_json::from_str(s).ok()).collect())
}

pub async fn ping(conn: &mut ConnectionManager) -> redis::RedisResult<()> {
    redis::cmd("PING").query_async::<String>(conn).await.map(|_| ())
}
