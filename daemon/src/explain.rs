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
//!    spring-forward run is listed as an instant when no expression covers it.
//!
//! The result is exact: the UTC expressions evaluated in UTC over the window, together with
//! `instants`, give precisely the runs `LocalSchedule::runs_after` gives in that window.

use crate::cron::{CronError, CronExpr, LocalSchedule, MAX_YEAR, MIN_YEAR};
use chrono::{DateTime, FixedOffset, Offset, SecondsFormat, TimeZone, Utc};
use serde::{Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};

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

#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum ExplainError {
    #[error("explain range is empty: until ({until}) must be after from ({from})")]
    EmptyRange { from: DateTime<Utc>, until: DateTime<Utc> },
    #[error("explain range {from} .. {until} leaves 1970-01-01 .. 2100-01-01, the years a cron year field can name")]
    OutOfYears { from: DateTime<Utc>, until: DateTime<Utc> },
    #[error("generated UTC cron '{cron}' does not parse ({reason}); this is a bug in explain")]
    Generated { cron: String, reason: CronError },
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

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;

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
    let changes = offset_changes(tz, f - 2 * DAY, u);
    let mut cuts: Vec<i64> = changes.iter().map(|c| c.at).filter(|&at| at > f && at < u).collect();
    cuts.insert(0, f);
    cuts.push(u);
    let mut windows = Vec::with_capacity(cuts.len() - 1);
    for (i, pair) in cuts.windows(2).enumerate() {
        let (wf, wu) = (pair[0], pair[1]);
        let off = offset_at(tz, wf);
        let prev = changes.iter().rev().find(|c| c.at <= wf);
        let (crons, instants) = explain_window(schedule, wf, wu, off, prev)?;
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
    i64::from(tz.offset_from_utc_datetime(&at(t).naive_utc()).fix().local_minus_utc())
}

/// A change of the zone's UTC offset at instant `at`.
struct Change {
    at: i64,
    before: i64,
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
            out.push(Change { at: hi, before: off });
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

fn bits(mask: u64) -> impl Iterator<Item = u32> {
    (0..64u32).filter(move |b| mask & (1 << b) != 0)
}

/// Day fields of a UTC cron expression, as text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct DayFields {
    dom: String,
    month: String,
    dow: String,
    year: Option<String>,
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

/// The UTC expressions and explicit instants of one window `[wf, wu)` with offset `off`.
fn explain_window(
    schedule: &LocalSchedule,
    wf: i64,
    wu: i64,
    off: i64,
    prev: Option<&Change>,
) -> Result<(Vec<String>, Vec<i64>), ExplainError> {
    let expr = schedule.expr();
    let fixed = !expr.is_wildcard();
    let groups = time_groups(expr, -off);
    let first_day = wf.div_euclid(DAY);
    let last_day = (wu - 1).div_euclid(DAY);
    let mut instants = Vec::new();

    // Fall-back second pass inside this window: fixed-time jobs do not run there, but the
    // shifted expressions would. Those UTC dates get date-specific expressions instead.
    let mut special: BTreeSet<i64> = BTreeSet::new();
    let mut dirty: Option<(i64, i64)> = None; // hours [a, b) (absolute hour numbers) to leave out
    if let Some(ch) = prev.filter(|c| fixed && c.before > off) {
        let (qs, qe) = (wf.max(ch.at), (ch.at + ch.before - off).min(wu));
        let last_year = i64::from(MAX_YEAR) + 1;
        if qs < qe && expr.next_match(qs + off, last_year).is_some_and(|n| n < qe + off) {
            special.extend(qs.div_euclid(DAY)..=(qe - 1).div_euclid(DAY));
            dirty = Some((qs.div_euclid(HOUR), (qe - 1).div_euclid(HOUR) + 1));
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
            let (y, m, dd) = civil(d);
            let mut drop = 0u64;
            if let Some((a, b)) = dirty {
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
    if let Some((a, b)) = dirty {
        let (s, e) = ((a * HOUR).max(wf), (b * HOUR).min(wu));
        instants.extend(schedule.runs_after(at(s - 1)).map(|r| r.timestamp()).take_while(|&r| r < e));
    }
    // Spring forward at the window's start: the collapsed run of a fixed-time job sits at the
    // first instant after the gap; the expressions cover it only if its wall time matches too.
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

/// Year text for date-specific expressions: none when the month number occurs only once among
/// the window's UTC days (the window bounds the expression anyway), else the year.
fn year_for(first: i64, last: i64, y: i64, m: u32) -> Option<String> {
    let mut seen: BTreeSet<i64> = BTreeSet::new();
    let mut d = first;
    while d <= last {
        let (yy, mm, dd) = civil(d);
        if mm == m {
            seen.insert(yy);
        }
        d += i64::from(28.min(32 - dd).max(1)); // sample each month at least once
    }
    if seen.len() <= 1 { None } else { Some(y.to_string()) }
}

fn civil(day: i64) -> (i64, u32, u32) {
    let t = at(day * DAY);
    use chrono::Datelike;
    (i64::from(t.year()), t.month(), t.day())
}

fn date_matches(expr: &CronExpr, day: i64) -> bool {
    let (y, m, d) = civil(day);
    expr.date_matches(y, m, d)
}

/// UTC day fields whose dates, among the UTC days `first..=last` minus `special`, are exactly
/// those whose date `shift` days earlier matches the local expression.
fn day_cover(
    expr: &CronExpr,
    shift: i64,
    first: i64,
    last: i64,
    special: &BTreeSet<i64>,
) -> Result<Vec<DayFields>, ExplainError> {
    let truth = |d: i64| !special.contains(&d) && date_matches(expr, d - shift);
    let candidate = shifted_day_fields(expr, shift);
    let cand_expr = match &candidate {
        Some(fields) => {
            let text = format!(
                "0 0 0 {} {} {} {}",
                fields.dom,
                fields.month,
                fields.dow,
                fields.year.as_deref().unwrap_or("*")
            );
            match CronExpr::parse(&text) {
                Ok(c) => Some(c),
                Err(CronError::NeverMatches { .. }) => None,
                Err(reason) => return Err(ExplainError::Generated { cron: text, reason }),
            }
        }
        None => None,
    };
    // Per (year, month): does the candidate agree with the truth on every day of the window?
    let mut good: BTreeMap<(i64, u32), bool> = BTreeMap::new();
    let mut wanted: BTreeMap<(i64, u32), Vec<u32>> = BTreeMap::new();
    for d in first..=last {
        let (y, m, dd) = civil(d);
        let want = truth(d);
        let got = cand_expr.as_ref().is_some_and(|c| c.date_matches(y, m, dd));
        let ok = good.entry((y, m)).or_insert(true);
        *ok &= want == got;
        if want {
            wanted.entry((y, m)).or_default().push(dd);
        }
    }
    let mut out = Vec::new();
    if let Some(fields) = candidate.filter(|_| cand_expr.is_some()) {
        if good.values().all(|ok| *ok) {
            out.push(fields);
        } else {
            // Keep the candidate for the months where it is exact. A month number restricts
            // all years at once, so use it alone when it is consistently good or bad.
            let mut by_month: BTreeMap<u32, BTreeSet<bool>> = BTreeMap::new();
            for (&(_, m), &ok) in &good {
                by_month.entry(m).or_default().insert(ok);
            }
            // Only months of the candidate's own month field can be kept.
            let cand_months = cand_expr.as_ref().map_or(0, |c| c.months);
            if by_month.values().all(|v| v.len() == 1) {
                let months = by_month.iter().filter(|(_, v)| v.contains(&true)).fold(0u64, |acc, (m, _)| acc | 1 << m)
                    & cand_months;
                if months != 0 {
                    out.push(DayFields { month: render(months, 1, 12, true), ..fields.clone() });
                }
            } else {
                let years: BTreeSet<i64> = good.keys().map(|(y, _)| *y).collect();
                for y in years {
                    let in_set = cand_expr.as_ref().is_some_and(|c| c.year_ok(y));
                    let months = good
                        .iter()
                        .filter(|((yy, _), ok)| *yy == y && **ok)
                        .fold(0u64, |acc, ((_, m), _)| acc | 1 << m)
                        & cand_months;
                    if in_set && months != 0 {
                        out.push(DayFields {
                            month: render(months, 1, 12, true),
                            year: Some(y.to_string()),
                            ..fields.clone()
                        });
                    }
                }
            }
        }
    }
    // Months the candidate cannot express: list their days.
    for (&(y, m), &ok) in &good {
        let exact = ok && cand_expr.is_some();
        if exact {
            continue;
        }
        if let Some(days) = wanted.get(&(y, m)) {
            let dom = days.iter().fold(0u64, |acc, d| acc | 1 << d);
            out.push(DayFields {
                dom: render(dom, 1, 31, true),
                month: m.to_string(),
                dow: "*".into(),
                year: year_for(first, last, y, m),
            });
        }
    }
    Ok(out)
}

/// The local day fields moved by `shift` days (dates of local runs + shift), when the crontab
/// day rule lets that be written; `None` when it cannot (then months are listed explicitly).
fn shifted_day_fields(expr: &CronExpr, shift: i64) -> Option<DayFields> {
    let all_dom = ((1u64 << 32) - 1) & !1;
    let mut dom = 0u64;
    if expr.doms == all_dom {
        dom = all_dom; // every day moved by a day is again every day
    }
    for d in bits(expr.doms) {
        let d2 = i64::from(d) + shift;
        if (1..=31).contains(&d2) {
            dom |= 1 << d2;
        }
    }
    let mut dow = 0u64;
    for w in bits(expr.dows) {
        dow |= 1 << (i64::from(w) + shift).rem_euclid(7);
    }
    let all_dow = 0x7f;
    let month = render(expr.months, 1, 12, true);
    let year = expr.years.as_ref().map(|_| render_years(expr));
    let or_rule = !expr.dom_star && !expr.dow_star;
    let (dom_text, dow_text) = if or_rule {
        // Either day field may match: both must be written without a leading `*`.
        if dom == 0 {
            ("*".to_string(), render(dow, 0, 6, false)) // only the weekday part is left
        } else {
            (render(dom, 1, 31, false), render(dow, 0, 6, false))
        }
    } else if dow == all_dow {
        if dom == 0 {
            return None;
        }
        // A `*` weekday field keeps the AND rule, so the day-of-month may use `*` forms too.
        (render(dom, 1, 31, true), "*".to_string())
    } else if dom == all_dom {
        ("*".to_string(), render(dow, 0, 6, true))
    } else if let Some(text) = render_starred(dom, 1, 31) {
        (text, render(dow, 0, 6, false))
    } else {
        (render(dom, 1, 31, false), render_starred(dow, 0, 7)?)
    };
    Some(DayFields { dom: dom_text, month, dow: dow_text, year })
}

fn render_years(expr: &CronExpr) -> String {
    let mut parts = Vec::new();
    let mut y = MIN_YEAR;
    while y <= MAX_YEAR {
        if expr.year_ok(i64::from(y)) {
            let start = y;
            while y < MAX_YEAR && expr.year_ok(i64::from(y + 1)) {
                y += 1;
            }
            parts.push(if start == y { start.to_string() } else { format!("{start}-{y}") });
        }
        y += 1;
    }
    parts.join(",")
}

/// Render a value set (`bits` between `min` and `max`, no day-of-week 7) as cron field text:
/// `*` when full and `allow_star`, `*/n` or `a-b/n` for progressions, else ranges and values.
fn render(set: u64, min: u32, max: u32, allow_star: bool) -> String {
    let vals: Vec<u32> = bits(set).filter(|v| (min..=max).contains(v)).collect();
    let full = vals.len() as u32 == max - min + 1;
    if full {
        return if allow_star { "*".into() } else { format!("{min}-{max}") };
    }
    if allow_star && let Some(text) = star_step(set, min, max) {
        return text;
    }
    if vals.len() >= 3 {
        let step = vals[1] - vals[0];
        if step >= 2 && vals.windows(2).all(|w| w[1] - w[0] == step) {
            return format!("{}-{}/{step}", vals[0], vals[vals.len() - 1]);
        }
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while i < vals.len() {
        let mut j = i;
        while j + 1 < vals.len() && vals[j + 1] == vals[j] + 1 {
            j += 1;
        }
        if j >= i + 2 {
            parts.push(format!("{}-{}", vals[i], vals[j]));
            i = j + 1;
        } else {
            parts.push(vals[i].to_string());
            i += 1;
        }
    }
    parts.join(",")
}

/// `*/n` whose values (the parser's, over `min..=max`) are exactly `set`.
fn star_step(set: u64, min: u32, max: u32) -> Option<String> {
    if set.count_ones() < 2 {
        return None; // a single value reads better as itself
    }
    // Day-of-week is rendered 0-6 but the parser's `*/n` runs over 0-7 with 7 = Sunday.
    let parse_max = if min == 0 && max == 6 { 7 } else { max };
    (2..=parse_max - min + 1).find_map(|n| {
        let mut got = 0u64;
        let mut v = min;
        while v <= parse_max {
            got |= 1 << if parse_max == 7 && v == 7 { 0 } else { v };
            v += n;
        }
        (got == set).then(|| format!("*/{n}"))
    })
}

/// Field text beginning with `*` (which keeps crontab's AND day rule) for `set`, if any:
/// `*`, `*/n`, or `*/<span>` (the minimum alone) followed by the other values.
fn render_starred(set: u64, min: u32, parse_max: u32) -> Option<String> {
    let max = if parse_max == 7 { 6 } else { parse_max };
    if set & (1 << min) == 0 {
        return None;
    }
    let full = bits(set).filter(|v| (min..=max).contains(v)).count() as u32 == max - min + 1;
    if full {
        return Some("*".into());
    }
    if let Some(text) = star_step(set, min, max) {
        return Some(text);
    }
    let rest = set & !(1 << min);
    let only_min = format!("*/{}", parse_max - min + 1);
    Some(if rest == 0 { only_min } else { format!("{only_min},{}", render(rest, min, max, false)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fields_the_parser_reads_back() {
        assert_eq!(render(0b1111, 0, 59, true), "0-3");
        assert_eq!(render(1 | 1 << 15 | 1 << 30 | 1 << 45, 0, 59, true), "*/15");
        assert_eq!(render(1 << 5 | 1 << 20 | 1 << 35 | 1 << 50, 0, 59, true), "5-50/15");
        assert_eq!(render(1 << 1 | 1 << 2 | 1 << 7, 0, 23, true), "1,2,7");
        assert_eq!(render(0x7f, 0, 6, false), "0-6");
        assert_eq!(render_starred(1 | 1 << 3 | 1 << 6, 0, 7).as_deref(), Some("*/3"));
        assert_eq!(render_starred(1 | 1 << 2, 0, 7).as_deref(), Some("*/8,2"));
        assert_eq!(render_starred(1 << 2, 1, 31), None);
        let c = CronExpr::parse("0 0 */31,5,9 * *").unwrap();
        assert_eq!(c.doms, 1 << 1 | 1 << 5 | 1 << 9);
    }
}
