//! The day fields of generated UTC expressions: which UTC dates a local schedule's dates
//! become when moved by a day shift, written as cron day fields (or explicit day lists).

use std::collections::{BTreeMap, BTreeSet};

use super::render::{bits, render, render_starred};
use crate::calendar::civil_from_days;
use crate::error::{CronError, ExplainError};
use crate::expr::CronExpr;
use crate::field::{MAX_YEAR, MIN_YEAR};

/// Day fields of a UTC cron expression, as text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct DayFields {
    pub(super) dom: String,
    pub(super) month: String,
    pub(super) dow: String,
    pub(super) year: Option<String>,
}

/// Year text for date-specific expressions: none when the month number occurs only once among
/// the window's UTC days (the window bounds the expression anyway), else the year.
pub(super) fn year_for(first: i64, last: i64, y: i64, m: u32) -> Option<String> {
    let mut seen: BTreeSet<i64> = BTreeSet::new();
    let mut d = first;
    while d <= last {
        let (yy, mm, dd) = civil_from_days(d);
        if mm == m {
            seen.insert(yy);
        }
        d += i64::from(28.min(32 - dd).max(1)); // sample each month at least once
    }
    if seen.len() <= 1 { None } else { Some(y.to_string()) }
}

pub(super) fn date_matches(expr: &CronExpr, day: i64) -> bool {
    let (y, m, d) = civil_from_days(day);
    expr.date_matches(y, m, d)
}

/// UTC day fields whose dates, among the UTC days `first..=last` minus `special`, are exactly
/// those whose date `shift` days earlier matches the local expression.
pub(super) fn day_cover(
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
        let (y, m, dd) = civil_from_days(d);
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
