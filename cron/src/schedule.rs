//! [`LocalSchedule`]: a cron expression read in a time zone, resolved to UTC instants under
//! the Vixie cron / cronie daylight-saving rule (see the crate documentation).

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::{GapInfo, Tz};

use crate::calendar;
use crate::dst::{DstGap, DstOverlap};
use crate::error::CronError;
use crate::expr::CronExpr;
use crate::field::{MAX_YEAR, MIN_YEAR};

/// Look up an IANA zone name such as `America/Los_Angeles`.
pub fn parse_zone(name: &str) -> Result<Tz, CronError> {
    name.trim().parse::<Tz>().map_err(|_| CronError::UnknownZone { zone: name.to_string() })
}

/// How many years a search for year-less expressions may cover. Any satisfiable year-less
/// day pattern recurs within the 400-year Gregorian cycle.
const SEARCH_YEARS: i64 = 400;

/// A cron expression read in a time zone, with the daylight-saving policies it runs under
/// (by default the Vixie cron / cronie rule).
#[derive(Clone, Debug)]
pub struct LocalSchedule {
    expr: CronExpr,
    tz: Tz,
    gap: DstGap,
    overlap: DstOverlap,
}

/// How one naive wall time maps to real instants (UTC epoch seconds).
enum Resolved {
    Single(i64),
    /// Wall time occurs twice: `early` in the first pass, `late` in the second.
    Ambiguous {
        early: i64,
        late: i64,
    },
    /// Wall time does not exist; `end` is the first real instant after the gap.
    Gap {
        end: Option<i64>,
    },
}

/// A fall-back overlap: the instant `at` where the clock goes back, and the naive wall times
/// `[start, end)` that occur twice.
struct Overlap {
    at: i64,
    start: i64,
    end: i64,
    /// Offsets (seconds east of UTC) before and after `at`.
    before: i64,
    after: i64,
}

fn naive(secs: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp(secs, 0).map(|t| t.naive_utc())
}

impl LocalSchedule {
    pub fn new(expr: CronExpr, tz: Tz) -> LocalSchedule {
        LocalSchedule { expr, tz, gap: DstGap::default(), overlap: DstOverlap::default() }
    }

    /// The same schedule under other daylight-saving policies.
    pub fn with_dst(self, gap: DstGap, overlap: DstOverlap) -> LocalSchedule {
        LocalSchedule { gap, overlap, ..self }
    }

    pub fn dst_gap(&self) -> DstGap {
        self.gap
    }

    pub fn dst_overlap(&self) -> DstOverlap {
        self.overlap
    }

    /// Whether runs whose wall time repeats run in the first and in the second pass.
    pub(crate) fn passes(&self) -> (bool, bool) {
        self.overlap.passes(self.expr.is_wildcard())
    }

    /// Whether a wall time inside a spring-forward gap runs at the gap's end.
    fn gap_runs(&self) -> bool {
        !self.expr.is_wildcard() && self.gap == DstGap::Shift
    }

    /// Parse an expression and a zone name.
    pub fn parse(expr: &str, zone: &str) -> Result<LocalSchedule, CronError> {
        Ok(LocalSchedule::new(CronExpr::parse(expr)?, parse_zone(zone)?))
    }

    pub fn expr(&self) -> &CronExpr {
        &self.expr
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// First run instant strictly after `after`; `None` if it never runs again within the
    /// bounded search.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Runs fall on whole seconds, so "after 12:00:00.5" is "after 12:00:00".
        let a = after.timestamp();
        let m = a + self.offset_at(a)?;
        let last_year = self.last_search_year(m);
        let secs = match self.resolve(m)? {
            Resolved::Ambiguous { early, late } => {
                let ov = self.overlap(m, early, late)?;
                let (first, second) = self.passes();
                let next_in = |from: i64| self.expr.next_match(from, last_year).filter(|&n| n < ov.end);
                if a < ov.at {
                    // First pass: later first-pass runs, then the second pass from its start,
                    // then whatever follows the overlap.
                    if first && let Some(n) = next_in(m + 1) {
                        return from_secs(n - ov.before);
                    }
                    if second && let Some(n) = next_in(ov.start) {
                        return from_secs(n - ov.after);
                    }
                } else if second && let Some(n) = next_in(m + 1) {
                    // Second pass: the first-pass runs are all in the past.
                    return from_secs(n - ov.after);
                }
                self.forward_from(ov.end, last_year)?
            }
            _ => self.forward_from(m + 1, last_year)?,
        };
        from_secs(secs)
    }

    /// Strictly increasing run instants strictly after `after`.
    pub fn runs_after(&self, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        let mut last = Some(after);
        std::iter::from_fn(move || {
            let next = self.next_after(last?);
            last = next;
            next
        })
    }

    /// Latest run instant at or before `at` (for missed-run catch-up); `None` if there is none
    /// within the bounded look-back.
    pub fn last_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let a = at.timestamp();
        let m = a + self.offset_at(a)?;
        let first_year = self.first_search_year(m);
        // `h`: the last wall time whose earliest instant is <= a. In the second pass of an
        // overlap that is the overlap's last wall time (the whole first pass is in the past).
        let mut h = match self.resolve(m)? {
            Resolved::Ambiguous { early, late } if a == late => self.overlap(m, early, late)?.end - 1,
            _ => m,
        };
        loop {
            let p = self.expr.prev_match(h, first_year)?;
            match self.resolve(p)? {
                Resolved::Single(u) => return from_secs(u),
                Resolved::Ambiguous { early, late } => {
                    let ov = self.overlap(p, early, late)?;
                    let (first, second) = self.passes();
                    if second && a >= ov.at {
                        // Second-pass runs come after every first-pass run.
                        let q = self.expr.prev_match((ov.end - 1).min(a + ov.after), first_year);
                        if let Some(q) = q.filter(|&q| q >= ov.start) {
                            return from_secs(q - ov.after);
                        }
                    }
                    if first {
                        return from_secs(early);
                    }
                    // Second pass only, and none of it at or before `a`: look before the overlap.
                    h = ov.start - 1;
                }
                Resolved::Gap { end } => {
                    if self.gap_runs() {
                        return from_secs(end?);
                    }
                    let begin = naive(p).and_then(|n| GapInfo::new(&n, &self.tz)).and_then(|g| g.begin);
                    h = match begin {
                        Some((start, _)) => start.and_utc().timestamp() - 1,
                        None => p - 1,
                    };
                }
            }
        }
    }

    /// Earliest run instant for naive matches from `start` on, outside any overlap that
    /// contains the search start (callers handle that one).
    fn forward_from(&self, mut start: i64, last_year: i64) -> Option<i64> {
        loop {
            let n = self.expr.next_match(start, last_year)?;
            match self.resolve(n)? {
                Resolved::Single(u) => return Some(u),
                // The earliest run of an overlap wall time: its first pass when that runs,
                // else its second (the first-pass instants of the overlap all come earlier).
                Resolved::Ambiguous { early, late } => return Some(if self.passes().0 { early } else { late }),
                Resolved::Gap { end } => {
                    let end = end?;
                    if self.gap_runs() {
                        return Some(end); // collapsed gap run
                    }
                    // Wildcard jobs (and `dst_gap = skip`) skip the gap: continue at the wall
                    // time right after it.
                    start = (end + self.offset_at(end)?).max(n + 1);
                }
            }
        }
    }

    /// Offset (seconds east of UTC) in force at UTC epoch second `t`.
    fn offset_at(&self, t: i64) -> Option<i64> {
        utc_offset(self.tz, t)
    }

    fn resolve(&self, local: i64) -> Option<Resolved> {
        let n = naive(local)?;
        Some(match self.tz.from_local_datetime(&n) {
            LocalResult::Single(t) => Resolved::Single(t.timestamp()),
            LocalResult::Ambiguous(a, b) => {
                let (a, b) = (a.timestamp(), b.timestamp());
                if a == b { Resolved::Single(a) } else { Resolved::Ambiguous { early: a.min(b), late: a.max(b) } }
            }
            LocalResult::None => {
                Resolved::Gap { end: GapInfo::new(&n, &self.tz).and_then(|g| g.end).map(|e| e.timestamp()) }
            }
        })
    }

    /// The overlap containing naive time `local`, whose two instants are `early` and `late`.
    fn overlap(&self, local: i64, early: i64, late: i64) -> Option<Overlap> {
        let before = local - early;
        let after = local - late;
        // The clock goes back somewhere in (early, late]: binary search the first instant
        // carrying the later offset.
        let (mut lo, mut hi) = (early, late);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.offset_at(mid)? == before {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(Overlap { at: hi, start: hi + after, end: hi + before, before, after })
    }

    fn last_search_year(&self, local: i64) -> i64 {
        let y = calendar::Civil::from_secs(local).y;
        if self.expr.years.is_some() { i64::from(MAX_YEAR).min(y + SEARCH_YEARS) } else { y + SEARCH_YEARS }
    }

    fn first_search_year(&self, local: i64) -> i64 {
        let y = calendar::Civil::from_secs(local).y;
        if self.expr.years.is_some() { i64::from(MIN_YEAR).max(y - SEARCH_YEARS) } else { y - SEARCH_YEARS }
    }
}

/// Offset (seconds east of UTC) of `tz` at UTC epoch second `t`.
pub(crate) fn utc_offset(tz: Tz, t: i64) -> Option<i64> {
    let utc = naive(t)?;
    Some(i64::from(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc()))
}

fn from_secs(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0)
}
