//! The operators' state in Redis, next to the plan's keys of [`super::store`]:
//!
//! | key | type | content |
//! |-----|------|---------|
//! | `btu:<site>:pause:<schedule>` | STRING | JSON [`PauseRecord`]; with `until` it expires then (expiry = resumed) |
//! | `btu:<site>:skip:<schedule>` | ZSET | member and score = a skipped due instant (unix seconds) |
//! | `btu:<site>:audit` | STREAM | one entry per operator action (`XADD … MAXLEN ~ 10000`) |
//! | `btu:<site>:pauses`, `btu:<site>:skips` | SET | schedule ids that have a pause / skip key: the index `status` lists and the enqueue and release scripts trust ([`crate::rq::GateIndex`]); a member is dropped when read only if its key is gone, atomically |
//!
//! The step at the due instant (the atomic enqueue) reads the pause and skip keys and removes
//! the skip member it honours; this file writes them, so every daemon on the same Redis sees
//! the same state, and a restart or a rebuild changes nothing.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use redis::aio::ConnectionManager;
use redis::{FromRedisValue, Value};
use serde::{Deserialize, Serialize};

use super::store::{pause_key, pauses_key, skip_key, skips_key};

/// Entries kept in a site's audit stream (approximately: `MAXLEN ~`).
pub const AUDIT_MAXLEN: usize = 10_000;

pub fn audit_key(site: &str) -> String {
    format!("btu:{site}:audit")
}

/// Who asked: the peer credentials of the socket connection (SO_PEERCRED), when known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caller {
    pub uid: Option<u32>,
    pub pid: Option<i32>,
}

/// A pause as stored (`btu:<site>:pause:<schedule>`), the JSON the due-instant check reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseRecord {
    /// RFC 3339 UTC; `None` = until resumed.
    pub until: Option<String>,
    pub note: Option<String>,
    /// RFC 3339 UTC instant the pause was set.
    pub at: String,
    pub uid: Option<u32>,
    pub pid: Option<i32>,
}

impl PauseRecord {
    /// Whether a run due at `due` falls inside this pause.
    pub fn covers(&self, due: DateTime<Utc>) -> bool {
        match self.until.as_deref().map(DateTime::parse_from_rfc3339) {
            None => true,
            Some(Ok(until)) => due < until,
            // Unreadable: the key's expiry still ends it; until then it pauses.
            Some(Err(_)) => true,
        }
    }
}

/// One operator action to append to the audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// `pause`, `resume`, `skip`, `backfill`, `run_now`, `cancel`, `rebuild`, `legacy_create`,
    /// `legacy_cancel`.
    pub action: &'static str,
    pub schedule: Option<String>,
    /// The action's arguments (a JSON object).
    pub args: serde_json::Value,
    pub note: Option<String>,
    pub caller: Caller,
}

/// One entry read back from the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRead {
    pub id: String,
    pub time: String,
    pub action: String,
    pub schedule: Option<String>,
    pub args: String,
    pub note: Option<String>,
    pub uid: Option<u32>,
    pub pid: Option<i32>,
}

/// Adds `XADD btu:<site>:audit MAXLEN ~ 10000 * time … action … [schedule …] args … [note …]
/// [uid …] [pid …]` to `pipe` (absent values are absent fields).
pub fn xadd_audit(pipe: &mut redis::Pipeline, site: &str, record: &AuditRecord, now: DateTime<Utc>) {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(audit_key(site)).arg("MAXLEN").arg("~").arg(AUDIT_MAXLEN).arg("*");
    cmd.arg("time").arg(now.to_rfc3339_opts(SecondsFormat::Millis, true));
    cmd.arg("action").arg(record.action);
    if let Some(s) = &record.schedule {
        cmd.arg("schedule").arg(s);
    }
    cmd.arg("args").arg(record.args.to_string());
    if let Some(n) = &record.note {
        cmd.arg("note").arg(n);
    }
    if let Some(uid) = record.caller.uid {
        cmd.arg("uid").arg(uid);
    }
    if let Some(pid) = record.caller.pid {
        cmd.arg("pid").arg(pid);
    }
    pipe.add_command(cmd).ignore();
}

/// Appends `record` to the audit trail of each of `sites`, in one round trip.
pub async fn append_audit(
    conn: &mut ConnectionManager,
    sites: &[String],
    record: &AuditRecord,
) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    let now = Utc::now();
    for site in sites {
        xadd_audit(&mut pipe, site, record, now);
    }
    pipe.query_async::<()>(conn).await
}

/// Sets a pause (replacing any earlier one) and audits it, in one MULTI/EXEC.
pub async fn set_pause(
    conn: &mut ConnectionManager,
    site: &str,
    schedule: &str,
    pause: &PauseRecord,
    until: Option<DateTime<Utc>>,
    audit: &AuditRecord,
) -> redis::RedisResult<()> {
    let key = pause_key(site, schedule);
    let json = serde_json::to_string(pause).unwrap_or_default();
    let mut pipe = redis::pipe();
    pipe.atomic().set(&key, json).ignore();
    if let Some(until) = until {
        pipe.cmd("EXPIREAT").arg(&key).arg(until.timestamp()).ignore();
    }
    pipe.sadd(pauses_key(site), schedule).ignore();
    xadd_audit(&mut pipe, site, audit, Utc::now());
    pipe.query_async::<()>(conn).await
}

/// Ends a pause and audits it, in one MULTI/EXEC; whether there was one.
pub async fn clear_pause(
    conn: &mut ConnectionManager,
    site: &str,
    schedule: &str,
    audit: &AuditRecord,
) -> redis::RedisResult<bool> {
    let mut pipe = redis::pipe();
    pipe.atomic().del(pause_key(site, schedule)).srem(pauses_key(site), schedule).ignore();
    xadd_audit(&mut pipe, site, audit, Utc::now());
    let (deleted,): (i64,) = pipe.query_async(conn).await?;
    Ok(deleted > 0)
}

/// The pause of a schedule, if any (an unreadable value reads as a pause without details).
pub async fn read_pause(
    conn: &mut ConnectionManager,
    site: &str,
    schedule: &str,
) -> redis::RedisResult<Option<PauseRecord>> {
    let raw: Option<String> = redis::cmd("GET").arg(pause_key(site, schedule)).query_async(conn).await?;
    Ok(raw.map(|json| parse_pause(&json)))
}

fn parse_pause(json: &str) -> PauseRecord {
    serde_json::from_str(json).unwrap_or(PauseRecord {
        until: None,
        note: None,
        at: String::new(),
        uid: None,
        pid: None,
    })
}

/// The skipped instants of a schedule at or after `from` (unix seconds), ascending.
pub async fn read_skips(
    conn: &mut ConnectionManager,
    site: &str,
    schedule: &str,
    from: i64,
) -> redis::RedisResult<BTreeSet<i64>> {
    let members: Vec<i64> =
        redis::cmd("ZRANGEBYSCORE").arg(skip_key(site, schedule)).arg(from).arg("+inf").query_async(conn).await?;
    Ok(members.into_iter().collect())
}

/// Adds skipped instants, drops members older than `trim_before` (unix seconds) and audits,
/// in one MULTI/EXEC; answers every skipped instant at or after `now` afterwards.
pub async fn add_skips(
    conn: &mut ConnectionManager,
    site: &str,
    schedule: &str,
    add: &[DateTime<Utc>],
    trim_before: i64,
    now: i64,
    audit: &AuditRecord,
) -> redis::RedisResult<BTreeSet<i64>> {
    let key = skip_key(site, schedule);
    let mut pipe = redis::pipe();
    pipe.atomic();
    if !add.is_empty() {
        let members: Vec<(i64, i64)> = add.iter().map(|t| (t.timestamp(), t.timestamp())).collect();
        pipe.zadd_multiple(&key, &members).ignore();
    }
    pipe.cmd("ZREMRANGEBYSCORE").arg(&key).arg("-inf").arg(format!("({trim_before}")).ignore();
    pipe.sadd(skips_key(site), schedule).ignore();
    xadd_audit(&mut pipe, site, audit, Utc::now());
    pipe.cmd("ZRANGEBYSCORE").arg(&key).arg(now).arg("+inf");
    let (pending,): (Vec<i64>,) = pipe.query_async(conn).await?;
    Ok(pending.into_iter().collect())
}

/// The pause and the skipped instants (at or after `from`) of each schedule, one round trip.
pub async fn marks(
    conn: &mut ConnectionManager,
    site: &str,
    schedules: &[String],
    from: i64,
) -> redis::RedisResult<HashMap<String, (Option<PauseRecord>, BTreeSet<i64>)>> {
    if schedules.is_empty() {
        return Ok(HashMap::new());
    }
    let mut pipe = redis::pipe();
    for s in schedules {
        pipe.get(pause_key(site, s));
        pipe.cmd("ZRANGEBYSCORE").arg(skip_key(site, s)).arg(from).arg("+inf");
    }
    let replies: Vec<(Option<String>, Vec<i64>)> = pipe.query_async(conn).await?;
    Ok(schedules
        .iter()
        .zip(replies)
        .map(|(s, (pause, skips))| (s.clone(), (pause.map(|j| parse_pause(&j)), skips.into_iter().collect())))
        .collect())
}

/// A site's paused schedules and skipped instants at or after `from`, by schedule id, through
/// the index sets (members whose key is gone are removed from them).
pub async fn site_marks(
    conn: &mut ConnectionManager,
    site: &str,
    from: i64,
) -> redis::RedisResult<(Vec<(String, PauseRecord)>, Vec<(String, i64)>)> {
    let (paused_ids, skip_ids): (Vec<String>, Vec<String>) =
        redis::pipe().smembers(pauses_key(site)).smembers(skips_key(site)).query_async(conn).await?;
    let mut ids: Vec<String> = paused_ids.iter().chain(&skip_ids).cloned().collect();
    ids.sort();
    ids.dedup();
    let found = marks(conn, site, &ids, from).await?;
    let (mut paused, mut skipped, mut gone_p, mut gone_s) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for id in &ids {
        let Some((pause, skips)) = found.get(id) else { continue };
        match pause {
            Some(p) => paused.push((id.clone(), p.clone())),
            None if paused_ids.contains(id) => gone_p.push(id.clone()),
            None => {}
        }
        if skips.is_empty() && skip_ids.contains(id) {
            gone_s.push(id.clone());
        }
        skipped.extend(skips.iter().map(|t| (id.clone(), *t)));
    }
    skipped.sort_by_key(|(id, t)| (*t, id.clone()));
    if !gone_p.is_empty() {
        unindex(conn, &pauses_key(site), &gone_p, |s| pause_key(site, s)).await?;
    }
    if !gone_s.is_empty() {
        unindex(conn, &skips_key(site), &gone_s, |s| skip_key(site, s)).await?;
    }
    Ok((paused, skipped))
}

/// Removes from `index` the schedules whose key (`key_of`) does not exist, in one atomic
/// step: a pause or skip written between the read above and this removal keeps its member,
/// which the enqueue and release scripts rely on ([`crate::rq::GateIndex`]).
async fn unindex(
    conn: &mut ConnectionManager,
    index: &str,
    schedules: &[String],
    key_of: impl Fn(&str) -> String,
) -> redis::RedisResult<()> {
    static UNINDEX: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
        redis::Script::new(
            r"for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then redis.call('SREM', KEYS[1], ARGV[i - 1]) end
end
return 0",
        )
    });
    let mut inv = UNINDEX.key(index);
    for s in schedules {
        inv.key(key_of(s)).arg(s);
    }
    inv.invoke_async::<i64>(conn).await.map(|_| ())
}

/// Entries read per XREVRANGE call while filtering by schedule.
const AUDIT_PAGE: usize = 500;

/// The newest `count` audit entries of a site (of one schedule, or all), newest first.
pub async fn read_audit(
    conn: &mut ConnectionManager,
    site: &str,
    schedule: Option<&str>,
    count: usize,
) -> redis::RedisResult<Vec<AuditRead>> {
    let key = audit_key(site);
    let mut out = Vec::new();
    let mut end = "+".to_string();
    while out.len() < count {
        let page = if schedule.is_some() { AUDIT_PAGE } else { count - out.len() };
        let raw: Value =
            redis::cmd("XREVRANGE").arg(&key).arg(&end).arg("-").arg("COUNT").arg(page).query_async(conn).await?;
        let entries = parse_entries(raw)?;
        let Some(last) = entries.last().map(|e| e.id.clone()) else { break };
        let full = entries.len() == page;
        out.extend(entries.into_iter().filter(|e| schedule.is_none_or(|s| e.schedule.as_deref() == Some(s))));
        if !full {
            break;
        }
        end = format!("({last}");
    }
    out.truncate(count);
    Ok(out)
}

/// XREVRANGE's reply: `[[id, [field, value, …]], …]`.
fn parse_entries(raw: Value) -> redis::RedisResult<Vec<AuditRead>> {
    let rows: Vec<(String, Vec<(String, String)>)> = FromRedisValue::from_redis_value(raw)?;
    Ok(rows
        .into_iter()
        .map(|(id, fields)| {
            let mut f: HashMap<String, String> = fields.into_iter().collect();
            AuditRead {
                id,
                time: f.remove("time").unwrap_or_default(),
                action: f.remove("action").unwrap_or_default(),
                schedule: f.remove("schedule"),
                args: f.remove("args").unwrap_or_else(|| "{}".into()),
                note: f.remove("note"),
                uid: f.remove("uid").and_then(|v| v.parse().ok()),
                pid: f.remove("pid").and_then(|v| v.parse().ok()),
            }
        })
        .collect())
}

/// For each (claim key, job key): whether the claim exists and whether the job hash exists
/// (one pipelined round trip).
pub async fn runs_exist(
    conn: &mut ConnectionManager,
    claims_and_jobs: &[(String, String)],
) -> redis::RedisResult<Vec<(bool, bool)>> {
    if claims_and_jobs.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for (claim, job) in claims_and_jobs {
        pipe.exists(claim).exists(job);
    }
    let found: Vec<bool> = pipe.query_async(conn).await?;
    Ok(found.chunks(2).map(|p| (p[0], p.get(1).copied().unwrap_or(false))).collect())
}

/// Deletes the claims of instants a gate skipped, so their backfill can take them again.
pub async fn release_claims(conn: &mut ConnectionManager, claims: &[String]) -> redis::RedisResult<()> {
    redis::cmd("DEL").arg(claims).query_async::<()>(conn).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_covers_runs_before_its_end_only() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).expect("instant");
        let mut p = PauseRecord { until: None, note: None, at: "2025-01-01T00:00:00Z".into(), uid: None, pid: None };
        assert!(p.covers(t("2030-01-01T00:00:00Z")));
        p.until = Some("2025-01-02T00:00:00Z".into());
        assert!(p.covers(t("2025-01-01T23:59:59Z")));
        assert!(!p.covers(t("2025-01-02T00:00:00Z")), "the run at `until` runs: the key expired then");
    }

    #[test]
    fn the_pause_json_has_the_agreed_fields() {
        let p = PauseRecord {
            until: None,
            note: Some("n".into()),
            at: "2025-01-01T00:00:00Z".into(),
            uid: Some(1),
            pid: None,
        };
        assert_eq!(
            serde_json::to_string(&p).expect("json"),
            r#"{"until":null,"note":"n","at":"2025-01-01T00:00:00Z","uid":1,"pid":null}"#
        );
    }
}
