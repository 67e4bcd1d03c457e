//! The daemon's own state in Redis, namespaced by site (documented in `docs/daemon.md`):
//!
//! | key | type | content |
//! |-----|------|---------|
//! | `btu:<site>:upcoming` | ZSET | member = schedule id, score = next due instant (epoch seconds) |
//! | `btu:<site>:schedules` | HASH | schedule id → JSON [`StoredSchedule`] |
//! | `btu:<site>:history:<schedule>` | LIST | newest first, bounded: JSON [`HistoryEntry`] |
//! | `btu:<site>:claim:<portable job id>` | STRING | set once per run by the atomic enqueue; expires |
//! | `btu:<site>:pause:<schedule>` | STRING | exists while the schedule is paused (read at each due instant) |
//! | `btu:<site>:skip:<schedule>` | ZSET | due instants (unix seconds) not to enqueue; the instant's step removes its member |
//! | `btu:<site>:lastjob:<schedule>` | STRING | id of the schedule's last enqueued job (overlap policy; an `allow` schedule's staged run records it right after its release) |
//!
//! Redis holds the upcoming runs so every daemon instance, the CLI and operators see them,
//! and so a restarted daemon knows which run was next (the missed-run rule needs it).

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Cmd};
use serde::{Deserialize, Serialize};

use crate::outcome::RunOutcome;
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
pub fn pause_key(site: &str, schedule: &str) -> String {
    format!("btu:{site}:pause:{schedule}")
}
pub fn skip_key(site: &str, schedule: &str) -> String {
    format!("btu:{site}:skip:{schedule}")
}
/// The site's index of schedules with a pause key (see [`crate::rq::GateIndex`]).
pub fn pauses_key(site: &str) -> String {
    format!("btu:{site}:pauses")
}
/// The site's index of schedules with a skip key (see [`crate::rq::GateIndex`]).
pub fn skips_key(site: &str) -> String {
    format!("btu:{site}:skips")
}
/// The site's gate indexes, as the enqueue and release scripts take them.
pub fn gate_index(site: &str) -> crate::rq::GateIndex {
    crate::rq::GateIndex {
        pauses: pauses_key(site),
        pause_prefix: pause_key(site, ""),
        skips: skips_key(site),
        skip_prefix: skip_key(site, ""),
        lastjob_prefix: lastjob_key(site, ""),
    }
}
pub fn lastjob_key(site: &str, schedule: &str) -> String {
    format!("btu:{site}:lastjob:{schedule}")
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

/// [`StoredSchedule`]'s JSON of `spec` appended to `out`: byte for byte what `serde_json`
/// writes for [`StoredSchedule::from_spec`], written by hand because a rebuild writes 100k of
/// them (serde's field-by-field writes cost more than the rest of the Redis write).
fn write_stored_json(spec: &ScheduleSpec, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"task\":");
    match spec.task.as_deref() {
        Some(task) => json_str(task, out),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"function\":");
    json_str(&spec.function, out);
    out.extend_from_slice(b",\"cron\":");
    json_str(&spec.cron, out);
    out.extend_from_slice(b",\"zone\":");
    json_str(&spec.zone, out);
    out.extend_from_slice(b",\"queue\":");
    json_str(&spec.queue, out);
    out.extend_from_slice(b",\"fingerprint\":\"");
    // Fingerprint's Display: 16 lowercase hex digits.
    let fp = spec.fingerprint.0;
    out.extend((0..16).rev().map(|i| b"0123456789abcdef"[((fp >> (i * 4)) & 0xf) as usize]));
    out.extend_from_slice(b"\"}");
}

/// A JSON string: as it is when nothing in it needs escaping (the usual case), else as
/// `serde_json` escapes it (quote, backslash, control characters; nothing else).
fn json_str(text: &str, out: &mut Vec<u8>) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    }
}

/// Only the field a restart needs, so reading 100k stored entries allocates no other strings.
#[derive(Deserialize)]
struct StoredFingerprint {
    fingerprint: String,
}

/// What happened to one due instant of a schedule, in its history. Entries written before
/// outcomes existed read as `enqueued`, their lateness computed from `enqueued_at - due`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The run's job id (for a run not enqueued: the id it would have had).
    pub job_id: String,
    /// RFC 3339 UTC.
    pub due: String,
    /// RFC 3339 UTC, milliseconds; `None` when the run was not enqueued.
    pub enqueued_at: Option<String>,
    /// A [`RunOutcome`] spelling: enqueued, replaced, skipped_overlap, skipped_paused,
    /// skipped_by_request, skipped_missed.
    pub outcome: String,
    /// Enqueue write time minus the due instant, for enqueued and replaced runs.
    pub lateness_ms: Option<i64>,
}

/// [`HistoryEntry`] as stored, with the fields older daemons did not write left optional.
#[derive(Deserialize)]
struct StoredHistory {
    job_id: String,
    due: String,
    #[serde(default)]
    enqueued_at: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    lateness_ms: Option<i64>,
}

impl<'de> Deserialize<'de> for HistoryEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = StoredHistory::deserialize(d)?;
        let outcome = s.outcome.unwrap_or_else(|| RunOutcome::Enqueued.as_str().to_string());
        let lateness_ms = s.lateness_ms.or_else(|| {
            let enqueued = RunOutcome::parse(&outcome).is_some_and(RunOutcome::is_enqueue);
            let at = DateTime::parse_from_rfc3339(s.enqueued_at.as_deref()?).ok()?;
            let due = DateTime::parse_from_rfc3339(&s.due).ok()?;
            enqueued.then(|| (at - due).num_milliseconds())
        });
        Ok(HistoryEntry { job_id: s.job_id, due: s.due, enqueued_at: s.enqueued_at, outcome, lateness_ms })
    }
}

/// An instant as the daemon writes it in history entries and logs: RFC 3339 UTC, whole seconds.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Where a schedule's history entries go: its list, kept at `max` entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryTarget {
    pub key: String,
    pub max: usize,
}

impl HistoryTarget {
    pub fn new(max: usize, site: &str, schedule: &str) -> Self {
        HistoryTarget { key: history_key(site, schedule), max: max.max(1) }
    }

    /// The entry saying what happened to the run `job_id` due at `due`: `outcome`, and for
    /// a run written to its queue ([`RunOutcome::is_enqueue`]) the write time `at` and the
    /// lateness (`None` only if it cannot be written as JSON).
    pub fn entry(
        &self,
        job_id: &str,
        due: DateTime<Utc>,
        outcome: RunOutcome,
        at: DateTime<Utc>,
    ) -> Option<HistoryAppend> {
        self.entry_expected(job_id, due, due, outcome, at)
    }

    /// [`HistoryTarget::entry`] for a run meant to be enqueued at `expected` (its due instant
    /// plus the schedule's jitter): the lateness is measured from there.
    pub fn entry_expected(
        &self,
        job_id: &str,
        due: DateTime<Utc>,
        expected: DateTime<Utc>,
        outcome: RunOutcome,
        at: DateTime<Utc>,
    ) -> Option<HistoryAppend> {
        let enqueued = outcome.is_enqueue();
        let entry = HistoryEntry {
            job_id: job_id.to_string(),
            due: rfc3339(due),
            enqueued_at: enqueued.then(|| at.to_rfc3339_opts(SecondsFormat::Millis, true)),
            outcome: outcome.as_str().to_string(),
            lateness_ms: enqueued.then(|| (at - expected).num_milliseconds()),
        };
        let entry = serde_json::to_string(&entry).ok()?;
        Some(HistoryAppend { key: self.key.clone(), entry, max: self.max })
    }
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
        for cmd in plan_commands(&zkey, &hkey, chunk) {
            pipe.add_command(cmd).ignore();
        }
        pipe.query_async::<()>(conn).await?;
    }
    Ok(())
}

/// The commands that record `plans`: one variadic ZADD or ZREM per run of consecutive plans
/// with (or without) a next run, so each id's writes keep their order, and one HSET of every
/// description. Redis then parses, dispatches and answers a handful of commands per chunk
/// instead of two per schedule (about half of Redis' time in a cold start of 100k).
fn plan_commands(zkey: &str, hkey: &str, plans: &[PlanWrite<'_>]) -> Vec<Cmd> {
    let mut cmds = Vec::new();
    for run in plans.chunk_by(|a, b| a.next.is_some() == b.next.is_some()) {
        let adding = run[0].next.is_some();
        let mut cmd = Cmd::with_capacity(1 + run.len() * 2, zkey.len() + run.len() * 32);
        cmd.arg(if adding { "ZADD" } else { "ZREM" }).arg(zkey);
        for p in run {
            if let Some(next) = p.next {
                cmd.arg(next.timestamp());
            }
            cmd.arg(&*p.spec.id);
        }
        cmds.push(cmd);
    }
    let described = plans.iter().filter(|p| p.describe).count();
    if described > 0 {
        let mut cmd = Cmd::with_capacity(2 + described * 2, hkey.len() + described * 256);
        cmd.arg("HSET").arg(hkey);
        let mut json = Vec::with_capacity(256);
        for p in plans.iter().filter(|p| p.describe) {
            json.clear();
            write_stored_json(p.spec, &mut json);
            cmd.arg(&*p.spec.id).arg(&json[..]);
        }
        cmds.push(cmd);
    }
    cmds
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).unwrap()
    }

    #[test]
    fn entries_say_outcome_and_lateness() {
        let t = HistoryTarget::new(0, "s1", "TS-1");
        assert_eq!((t.key.as_str(), t.max), ("btu:s1:history:TS-1", 1));
        let due = at("2030-01-01T00:00:00Z");
        let e = t.entry("j1", due, RunOutcome::Enqueued, at("2030-01-01T00:00:00.042Z")).unwrap();
        let read: HistoryEntry = serde_json::from_str(&e.entry).unwrap();
        assert_eq!(read.outcome, "enqueued");
        assert_eq!(read.lateness_ms, Some(42));
        assert_eq!(read.enqueued_at.as_deref(), Some("2030-01-01T00:00:00.042Z"));
        let e = t.entry("j2", due, RunOutcome::SkippedPaused, at("2030-01-01T00:00:01Z")).unwrap();
        assert_eq!(
            e.entry,
            r#"{"job_id":"j2","due":"2030-01-01T00:00:00Z","enqueued_at":null,"outcome":"skipped_paused","lateness_ms":null}"#
        );
        let read: HistoryEntry = serde_json::from_str(&e.entry).unwrap();
        assert_eq!((read.outcome.as_str(), read.lateness_ms, read.enqueued_at), ("skipped_paused", None, None));
        // Jitter: lateness from due + d, the due instant as it is.
        let expected = due + chrono::TimeDelta::seconds(7);
        let at = expected + chrono::TimeDelta::milliseconds(5);
        let e = t.entry_expected("j3", due, expected, RunOutcome::Replaced, at).unwrap();
        let read: HistoryEntry = serde_json::from_str(&e.entry).unwrap();
        assert_eq!(
            (read.due.as_str(), read.outcome.as_str(), read.lateness_ms),
            ("2030-01-01T00:00:00Z", "replaced", Some(5))
        );
    }

    fn spec(id: &str) -> ScheduleSpec {
        match crate::source::plain_row("s1", id, "*/5 * * * *") {
            crate::source::RowOutcome::Loaded(s) => s,
            other => panic!("{other:?}"),
        }
    }

    fn args(cmd: &Cmd) -> Vec<String> {
        cmd.args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
                _ => "<not simple>".into(),
            })
            .collect()
    }

    /// Consecutive plans of one kind share a variadic ZADD or ZREM (order kept per id, a
    /// repeated id's last write wins as it did one command each), and one HSET carries every
    /// description, byte for byte the JSON of [`StoredSchedule`].
    #[test]
    fn plans_are_written_as_few_variadic_commands() {
        let specs: Vec<ScheduleSpec> = ["a", "b", "c", "d", "a"].into_iter().map(spec).collect();
        let t = |s: &str| Some(at(s));
        let nexts = [t("2030-01-01T00:00:00Z"), t("2030-01-01T00:00:05Z"), None, t("2030-01-01T00:01:00Z"), None];
        let describe = [true, false, true, false, false];
        let plans: Vec<PlanWrite> =
            (0..5).map(|i| PlanWrite { spec: &specs[i], next: nexts[i], describe: describe[i] }).collect();
        let cmds: Vec<Vec<String>> = plan_commands("z", "h", &plans).iter().map(args).collect();
        let json = |i: usize| serde_json::to_string(&StoredSchedule::from_spec(&specs[i])).unwrap();
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            cmds,
            vec![
                words(&["ZADD", "z", "1893456000", "a", "1893456005", "b"]),
                words(&["ZREM", "z", "c"]),
                words(&["ZADD", "z", "1893456060", "d"]),
                words(&["ZREM", "z", "a"]),
                words(&["HSET", "h", "a", &json(0), "c", &json(2)]),
            ]
        );
        assert!(json(0).contains(&format!("\"fingerprint\":\"{}\"", specs[0].fingerprint)), "{}", json(0));
        let only_next: Vec<PlanWrite> =
            plans.iter().map(|p| PlanWrite { spec: p.spec, next: p.next, describe: false }).collect();
        assert_eq!(plan_commands("z", "h", &only_next).len(), 4, "no HSET without descriptions");
        assert!(plan_commands("z", "h", &[]).is_empty());
    }

    proptest::proptest! {
        /// The hand-written description is exactly serde_json's, whatever the texts hold
        /// (quotes, backslashes, control characters, non-ASCII).
        #[test]
        fn stored_json_is_serde_jsons(
            task in proptest::option::of("\\PC{0,12}|[\"\\\\\u{0}-\u{1f}\u{7f}a-z]{0,8}"),
            function in "\\PC{0,12}|[\"\\\\\u{0}-\u{1f}a-z.]{0,8}",
            cron in "[ -~]{0,16}",
            zone in "\\PC{0,12}",
            queue in "\\PC{0,12}|[\"\\\\\n\t]{0,4}",
            fingerprint in proptest::prelude::any::<u64>(),
        ) {
            let mut s = spec("a");
            s.task = task.as_deref().map(Arc::from);
            s.function = function;
            s.cron = Arc::from(cron.as_str());
            s.zone = Arc::from(zone.as_str());
            s.queue = queue;
            s.fingerprint = Fingerprint(fingerprint);
            let mut out = Vec::new();
            write_stored_json(&s, &mut out);
            let expected = serde_json::to_string(&StoredSchedule::from_spec(&s)).unwrap();
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    #[test]
    fn entries_of_older_daemons_read_as_enqueued_with_their_lateness() {
        let old = r#"{"job_id":"j","due":"2030-01-01T00:00:00Z","enqueued_at":"2030-01-01T00:00:01.500Z"}"#;
        let read: HistoryEntry = serde_json::from_str(old).unwrap();
        assert_eq!(read.outcome, "enqueued");
        assert_eq!(read.lateness_ms, Some(1500));
    }
}
