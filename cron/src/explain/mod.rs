//! `explain`: a local schedule as UTC cron expressions, window by window between DST transitions.
//!
//! Between two changes of the zone's UTC offset every local wall time maps to UTC by the same
//! shift, so the local schedule equals a fixed set of UTC cron expressions there. For each
//! window this module
//!
//! 1. splits the local time-of-day sets into groups that shift uniformly (carrying into the
//!    previous or next UTC day, and for 30/45-minute offsets into the next hour),
//! 2. writes, per day shift, UTC day fields whose dates are exactly the local dates moved by
//!    that shift — the shifted fields when they are exact, else the exact months keep them and
//!    the others get explicit day lists (`dom month * year`),
//! 3. handles the daylight-saving rule at the window's start: a fixed-time job does not run in
//!    the second pass of a fall-back (those dates get date-specific expressions without the
//!    affected hours, plus the runs of those hours as explicit instants), and its collapsed
//!    spring-forward run is listed as an instant when no expression covers it. Under other
//!    `dst_overlap` policies the pass the job skips (first or second, any job) is treated the
//!    same way.
//!
//! The result is exact: the UTC expressions evaluated in UTC over the window, together with
//! `instants`, give precisely the runs `LocalSchedule::runs_after` gives in that window.

use crate::calendar::{DAY, HOUR, civil_from_days};
use crate::error::CronError;
pub use crate::error::ExplainError;
use crate::expr::CronExpr;
use crate::field::{MAX_YEAR, MIN_YEAR};
use crate::schedule::{LocalSchedule, utc_offset};
use chrono::{DateTime, FixedOffset, Offset, SecondsFormat, TimeZone, Utc};
use serde::{Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};

mod days;
mod render;

use days::{DayFields, date_matches, day_cover, year_for};
use render::{bits, render};

/// One interval of constant UTC offset and the UTC expressions equivalent to the schedule there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    /// Inclusive start.
    #[serde(serialize_with = "instant")]
    pub from: DateTime<Utc>,
    /// Exclusive end.
    #[serde(serialize_with = "instant")]
    pub until: DateTime<Utc>,
    /// The zone's offset from UTC throughout the window, e.g. `-08:00`.
    #[serde(serialize_with = "offset")]
    pub utc_offset: FixedOffset,
    /// UTC cron expressions (5 fields; 6 with seconds; 7 with a year) whose union, evaluated in
    /// UTC over the window, gives the schedule's runs there, apart from `instants`.
    pub utc_crons: Vec<String>,
    /// Runs in the window that no expression covers (at daylight-saving changes).
    #[serde(serialize_with = "instant_list")]
    pub instants: Vec<DateTime<Utc>>,
}

fn instant<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

fn offset<S: Serializer>(o: &FixedOffset, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&o.to_string())
}

fn instant_list<S: Serializer>(ts: &[DateTime<Utc>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(ts.iter().map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true)))
}

/// Explain `schedule` over `[from, until)`, one [`Window`] per interval of constant offset.
pub fn explain(
    schedule: &LocalSchedule,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<Window>, ExplainError> {
    if until <= from {
        return Err(ExplainError::EmptyRange { from, until });
    }
    let lo = Utc.with_ymd_and_hms(MIN_YEAR as i32, 1, 1, 0, 0, 0).single(); // small constants
    let hi = Utc.with_ymd_and_hms(MAX_YEAR as i32 + 1, 1, 1, 0, 0, 0).single();
    if lo.is_none_or(|lo| from < lo) || hi.is_none_or(|hi| until > hi) {
        return Err(ExplainError::OutOfYears { from, until });
    }
    // Runs fall on whole seconds: r >= from <=> r >= ceil(from), r < until <=> r < ceil(until).
    let f = ceil_secs(from);
    let u = ceil_secs(until);
    let tz = schedule.tz();
    // Past `u` too: a fall-back just after the range still has its first pass inside it.
    let changes = offset_changes(tz, f - 2 * DAY, u + 2 * DAY);
    let mut cuts: Vec<i64> = changes.iter().map(|c| c.at).filter(|&at| at > f && at < u).collect();
    cuts.insert(0, f);
    cuts.push(u);
    let mut windows = Vec::with_capacity(cuts.len() - 1);
    for (i, pair) in cuts.windows(2).enumerate() {
        let (wf, wu) = (pair[0], pair[1]);
        let off = offset_at(tz, wf);
        let prev = changes.iter().rev().find(|c| c.at <= wf);
        let next = changes.iter().find(|c| c.at >= wu);
        let (crons, instants) = explain_window(schedule, wf, wu, off, prev, next)?;
        windows.push(Window {
            from: if i == 0 { from } else { at(wf) },
            until: if i + 2 == cuts.len() { until } else { at(wu) },
            // |off| < 1 day for every zone in the tz database, so east_opt succeeds.
            utc_offset: i32::try_from(off).ok().and_then(FixedOffset::east_opt).unwrap_or_else(|| Utc.fix()),
            utc_crons: crons,
            instants: instants.into_iter().map(at).collect(),
        });
    }
    Ok(windows)
}

fn ceil_secs(t: DateTime<Utc>) -> i64 {
    t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0)
}

fn at(secs: i64) -> DateTime<Utc> {
    // Callers pass seconds inside 1970..2100 (checked in `explain`).
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

fn offset_at(tz: chrono_tz::Tz, t: i64) -> i64 {
    // Callers pass seconds inside 1970..2100, where every offset is known.
    utc_offset(tz, t).unwrap_or_default()
}

/// A change of the zone's UTC offset at instant `at`.
struct Change {
    at: i64,
    before: i64,
    after: i64,
}

/// Offset changes in `[from, until)`. Probed hourly (no zone changes its offset twice within
/// an hour) and pinned to the second by bisection.
fn offset_changes(tz: chrono_tz::Tz, from: i64, until: i64) -> Vec<Change> {
    let mut out = Vec::new();
    let mut t = from;
    let mut off = offset_at(tz, t);
    while t < until {
        let next = (t + HOUR).min(until);
        let next_off = offset_at(tz, next);
        if next_off != off {
            let (mut lo, mut hi) = (t, next);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset_at(tz, mid) == off { lo = mid } else { hi = mid }
            }
            out.push(Change { at: hi, before: off, after: next_off });
        }
        (t, off) = (next, next_off);
    }
    out
}

/// Time-of-day sets that shift uniformly into UTC: every local `h:m:s` in the product maps to
/// the UTC time of day in the product below, `day_shift` days from the local date.
#[derive(Clone, Debug)]
struct Group {
    day_shift: i64,
    seconds: u64,
    minutes: u64,
    hours: u64,
}

fn time_groups(expr: &CronExpr, delta: i64) -> Vec<Group> {
    let ds = delta.rem_euclid(60) as u32; // [0, 59]
    let dm = delta.div_euclid(60).rem_euclid(60) as u32; // [0, 59]
    let dh = delta.div_euclid(HOUR);
    let mut out = Vec::new();
    for cs in 0..2u32 {
        let (mut sec, mut sec_src) = (0u64, false);
        for s in bits(expr.seconds) {
            if u32::from(s + ds >= 60) == cs {
                sec |= 1 << ((s + ds) % 60);
                sec_src = true;
            }
        }
        if !sec_src {
            continue;
        }
        for cm in 0..2u32 {
            let mut min = 0u64;
            for m in bits(expr.minutes) {
                if u32::from(m + dm + cs >= 60) == cm {
                    min |= 1 << ((m + dm + cs) % 60);
                }
            }
            if min == 0 {
                continue;
            }
            let mut by_shift: BTreeMap<i64, u64> = BTreeMap::new();
            for h in bits(expr.hours) {
                let h2 = i64::from(h) + dh + i64::from(cm);
                *by_shift.entry(h2.div_euclid(24)).or_default() |= 1 << h2.rem_euclid(24);
            }
            for (day_shift, hours) in by_shift {
                out.push(Group { day_shift, seconds: sec, minutes: min, hours });
            }
        }
    }
    out
}

/// A UTC cron expression under construction.
#[derive(Clone, Debug)]
struct Cron {
    seconds: u64,
    minutes: u64,
    hours: u64,
    day: DayFields,
}

impl Cron {
    fn text(&self) -> String {
        let m = render(self.minutes, 0, 59, true);
        let h = render(self.hours, 0, 23, true);
        let d = &self.day;
        match &d.year {
            Some(y) => format!("{} {m} {h} {} {} {} {y}", render(self.seconds, 0, 59, true), d.dom, d.month, d.dow),
            None if self.seconds == 1 => format!("{m} {h} {} {} {}", d.dom, d.month, d.dow),
            None => format!("{} {m} {h} {} {} {}", render(self.seconds, 0, 59, true), d.dom, d.month, d.dow),
        }
    }
}

/// The UTC expressions and explicit instants of one window `[wf, wu)` with offset `off`;
/// `prev` is the offset change that began it, `next` the one that ends it.
fn explain_window(
    schedule: &LocalSchedule,
    wf: i64,
    wu: i64,
    off: i64,
    prev: Option<&Change>,
    next: Option<&Change>,
) -> Result<(Vec<String>, Vec<i64>), ExplainError> {
    let expr = schedule.expr();
    let fixed = !expr.is_wildcard();
    let (first_pass, second_pass) = schedule.passes();
    let groups = time_groups(expr, -off);
    let first_day = wf.div_euclid(DAY);
    let last_day = (wu - 1).div_euclid(DAY);
    let mut instants = Vec::new();

    // A fall-back pass inside this window in which the job does not run (by default the second
    // pass of a fixed-time job; `dst_overlap` may leave out either): the shifted expressions
    // would run there, so those UTC dates get date-specific expressions instead.
    let mut passes_out: Vec<(i64, i64)> = Vec::new();
    if let Some(ch) = prev.filter(|c| !second_pass && c.before > off) {
        passes_out.push((wf.max(ch.at), (ch.at + ch.before - off).min(wu)));
    }
    if let Some(ch) = next.filter(|c| !first_pass && c.after < off) {
        passes_out.push(((ch.at - (off - ch.after)).max(wf), ch.at.min(wu)));
    }
    let mut special: BTreeSet<i64> = BTreeSet::new();
    let mut dirty: Vec<(i64, i64)> = Vec::new(); // hours [a, b) (absolute hour numbers) to leave out
    for (qs, qe) in passes_out {
        let last_year = i64::from(MAX_YEAR) + 1;
        if qs < qe && expr.next_match(qs + off, last_year).is_some_and(|n| n < qe + off) {
            special.extend(qs.div_euclid(DAY)..=(qe - 1).div_euclid(DAY));
            dirty.push((qs.div_euclid(HOUR), (qe - 1).div_euclid(HOUR) + 1));
        }
    }

    let mut crons = Vec::new();
    let shifts: BTreeSet<i64> = groups.iter().map(|g| g.day_shift).collect();
    for shift in shifts {
        let patterns = day_cover(expr, shift, first_day, last_day, &special)?;
        for g in groups.iter().filter(|g| g.day_shift == shift) {
            for day in &patterns {
                crons.push(Cron { seconds: g.seconds, minutes: g.minutes, hours: g.hours, day: day.clone() });
            }
        }
        // Special dates: the same times minus the hours the second pass touches.
        for &d in &special {
            if !date_matches(expr, d - shift) {
                continue;
            }
            let (y, m, dd) = civil_from_days(d);
            let mut drop = 0u64;
            for &(a, b) in &dirty {
                for hour in a..b {
                    if hour.div_euclid(24) == d {
                        drop |= 1 << hour.rem_euclid(24);
                    }
                }
            }
            for g in groups.iter().filter(|g| g.day_shift == shift) {
                let hours = g.hours & !drop;
                if hours != 0 {
                    let year = year_for(first_day, last_day, y, m);
                    let day = DayFields { dom: dd.to_string(), month: m.to_string(), dow: "*".into(), year };
                    crons.push(Cron { seconds: g.seconds, minutes: g.minutes, hours, day });
                }
            }
        }
    }
    // The runs of the left-out hours, exactly as the engine gives them.
    for &(a, b) in &dirty {
        let (s, e) = ((a * HOUR).max(wf), (b * HOUR).min(wu));
        instants.extend(schedule.runs_after(at(s - 1)).map(|r| r.timestamp()).take_while(|&r| r < e));
    }
    // Spring forward at the window's start: the collapsed run of a fixed-time job sits at the
    // first instant after the gap (`dst_gap = shift`; with `skip` the engine has no run there);
    // the expressions cover it only if its wall time matches too.
    if let Some(ch) = prev.filter(|c| fixed && c.before < off && c.at >= wf && c.at < wu) {
        let runs_there = schedule.next_after(at(ch.at - 1)).is_some_and(|r| r.timestamp() == ch.at);
        if runs_there && !expr.matches(ch.at + off) {
            instants.push(ch.at);
        }
    }

    let merged = merge(crons);
    let mut texts = Vec::with_capacity(merged.len());
    for c in merged {
        let text = c.text();
        // Every expression is re-read by the parser that will evaluate it; keep only the ones
        // with runs inside the window (date-specific ones may fall outside).
        match CronExpr::parse(&text) {
            Ok(parsed) => {
                let utc = LocalSchedule::new(parsed, chrono_tz::UTC);
                if utc.next_after(at(wf - 1)).is_some_and(|r| r.timestamp() < wu) {
                    texts.push(text);
                }
            }
            Err(CronError::NeverMatches { .. }) => {}
            Err(reason) => return Err(ExplainError::Generated { cron: text, reason }),
        }
    }
    instants.sort_unstable();
    instants.dedup();
    Ok((texts, instants))
}

/// Merge expressions that differ in one time field only (their union is again a product).
fn merge(mut crons: Vec<Cron>) -> Vec<Cron> {
    loop {
        let mut merged_any = false;
        'outer: for i in 0..crons.len() {
            for j in i + 1..crons.len() {
                let (a, b) = (&crons[i], &crons[j]);
                if a.day != b.day {
                    continue;
                }
                let same = [a.seconds == b.seconds, a.minutes == b.minutes, a.hours == b.hours];
                if same.iter().filter(|s| **s).count() >= 2 {
                    let b = crons.remove(j);
                    let a = &mut crons[i];
                    a.seconds |= b.seconds;
                    a.minutes |= b.minutes;
                    a.hours |= b.hours;
                    merged_any = true;
                    break 'outer;
                }
            }
        }
        if !merged_any {
            return crons;
        }
    }
}
