//! Parsing a cron expression into per-field bitsets, and searching *naive* wall-clock times
//! (no time zone) that match it. Searches jump field by field (year, month, day, hour, minute,
//! second) instead of stepping minute by minute, so a next match costs a few bit operations.

use crate::calendar::{Civil, days_from_civil, days_in_month, weekday};
use crate::error::CronError;
use crate::field::{Field, MAX_YEAR, MIN_YEAR};

/// A parsed cron expression: one bitset per field plus the flags the day rule and the
/// daylight-saving rule need.
#[derive(Clone, Debug, PartialEq)]
pub struct CronExpr {
    source: String,
    pub(crate) seconds: u64,
    pub(crate) minutes: u64,
    pub(crate) hours: u64,
    /// bits 1..=31
    pub(crate) doms: u64,
    /// bits 1..=12
    pub(crate) months: u64,
    /// bits 0..=6, Sunday = 0
    pub(crate) dows: u64,
    /// `None` when there is no year field or it allows every year.
    pub(crate) years: Option<YearSet>,
    /// Day-of-month field text starts with `*` (crontab(5) day rule).
    pub(crate) dom_star: bool,
    /// Day-of-week field text starts with `*`.
    pub(crate) dow_star: bool,
    wildcard: bool,
    /// For a month whose 1st falls on weekday `w`: bits of its days whose weekday matches.
    dow_days: [u64; 7],
}

const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

impl CronExpr {
    /// Parse a 5-, 6- or 7-field expression or a macro (see `docs/cron.md`).
    pub fn parse(expr: &str) -> Result<CronExpr, CronError> {
        let source = expr.trim();
        if source.is_empty() {
            return Err(CronError::Empty);
        }
        let expanded = if source.starts_with('@') {
            let found = MACROS.iter().find(|(name, _)| name.eq_ignore_ascii_case(source));
            match found {
                Some((_, body)) => *body,
                None => return Err(CronError::UnknownMacro { name: source.to_string() }),
            }
        } else {
            source
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        let (sec, rest) = match parts.len() {
            5 => ("0", &parts[..]),
            6 | 7 => (parts[0], &parts[1..]),
            found => return Err(CronError::FieldCount { found }),
        };
        // 5 fields: only minute and hour decide the DST class; 6/7 fields: second too.
        let wildcard =
            rest[0].starts_with('*') || rest[1].starts_with('*') || (parts.len() > 5 && sec.starts_with('*'));
        let seconds = small_set(sec, Field::Second)?;
        let minutes = small_set(rest[0], Field::Minute)?;
        let hours = small_set(rest[1], Field::Hour)?;
        let doms = small_set(rest[2], Field::DayOfMonth)?;
        let months = small_set(rest[3], Field::Month)?;
        let dow_raw = small_set(rest[4], Field::DayOfWeek)?;
        let dows = (dow_raw | (dow_raw >> 7)) & 0x7f; // 7 is Sunday too
        let years = match rest.get(5) {
            Some(text) => {
                let mut set = YearSet::default();
                for_each_value(text, Field::Year, |y| set.insert(y))?;
                if set.is_full() { None } else { Some(set) }
            }
            None => None,
        };
        let mut dow_days = [0u64; 7];
        for (first, mask) in dow_days.iter_mut().enumerate() {
            for d in 1..=31u32 {
                if dows & (1 << ((first as u32 + d - 1) % 7)) != 0 {
                    *mask |= 1 << d;
                }
            }
        }
        let cron = CronExpr {
            source: source.to_string(),
            seconds,
            minutes,
            hours,
            doms,
            months,
            dows,
            years,
            dom_star: rest[2].starts_with('*'),
            dow_star: rest[4].starts_with('*'),
            wildcard,
            dow_days,
        };
        if !cron.matches_some_date() {
            return Err(CronError::NeverMatches { expr: source.to_string() });
        }
        Ok(cron)
    }

    /// True for a *wildcard* job in the daylight-saving sense: its second (6/7 fields), minute
    /// or hour field begins with `*`. Every other job is a *fixed-time* job.
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// The expression as given, trimmed.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the day rule alone can ever be satisfied. Without a year field the weekday of
    /// any (month, day) pair cycles through all seven days over 400 years, so checking the
    /// pairs against a leap year is exact; with a year field the (few) years are enumerated.
    fn matches_some_date(&self) -> bool {
        match self.years {
            None => (1..=12u32).any(|m| {
                self.months & (1 << m) != 0 && {
                    let valid = mask_upto(days_in_month(2000, m));
                    if self.or_day_rule() {
                        true // at least four days per month match the weekday part
                    } else {
                        self.doms & valid != 0
                    }
                }
            }),
            Some(_) => (MIN_YEAR..=MAX_YEAR).any(|y| {
                self.year_ok(i64::from(y))
                    && (1..=12u32).any(|m| self.months & (1 << m) != 0 && self.day_mask(i64::from(y), m) != 0)
            }),
        }
    }

    /// Both day fields restricted: a day matches if either matches (crontab(5)).
    fn or_day_rule(&self) -> bool {
        !self.dom_star && !self.dow_star
    }

    pub(crate) fn year_ok(&self, y: i64) -> bool {
        self.years.as_ref().is_none_or(|set| set.contains(y))
    }

    /// Days (bits 1..=31) of month `m` of year `y` that satisfy the day rule.
    pub(crate) fn day_mask(&self, y: i64, m: u32) -> u64 {
        let valid = mask_upto(days_in_month(y, m));
        let first = weekday(days_from_civil(y, m, 1)) as usize; // [0, 6]
        let by_dow = self.dow_days[first];
        let days = if self.or_day_rule() { self.doms | by_dow } else { self.doms & by_dow };
        days & valid
    }

    /// Whether the civil date matches the year, month and day fields.
    pub(crate) fn date_matches(&self, y: i64, m: u32, d: u32) -> bool {
        self.year_ok(y) && self.months & (1 << m) != 0 && self.day_mask(y, m) & (1 << d) != 0
    }

    /// Whether a naive wall-clock time (local epoch seconds) matches every field.
    pub(crate) fn matches(&self, secs: i64) -> bool {
        let c = Civil::from_secs(secs);
        self.hours & (1 << c.h) != 0
            && self.minutes & (1 << c.mi) != 0
            && self.seconds & (1 << c.s) != 0
            && self.date_matches(c.y, c.mo, c.d)
    }

    /// Next year >= `y` allowed by the year field.
    fn next_year(&self, y: i64) -> Option<i64> {
        match &self.years {
            None => Some(y),
            Some(set) => (y.max(i64::from(MIN_YEAR))..=i64::from(MAX_YEAR)).find(|&c| set.contains(c)),
        }
    }

    /// Previous year <= `y` allowed by the year field.
    fn prev_year(&self, y: i64) -> Option<i64> {
        match &self.years {
            None => Some(y),
            Some(set) => (i64::from(MIN_YEAR)..=y.min(i64::from(MAX_YEAR))).rev().find(|&c| set.contains(c)),
        }
    }

    /// First matching date >= `(y, mo, d)` (d may exceed the month's length), searching no
    /// further than the end of year `last_year`.
    fn next_date(&self, mut y: i64, mut mo: u32, mut d: u32, last_year: i64) -> Option<(i64, u32, u32)> {
        loop {
            if y > last_year {
                return None;
            }
            let y2 = self.next_year(y)?;
            if y2 != y {
                (y, mo, d) = (y2, 1, 1);
                continue;
            }
            match next_bit(self.months, mo) {
                None => (y, mo, d) = (y + 1, 1, 1),
                Some(m2) => {
                    if m2 != mo {
                        (mo, d) = (m2, 1);
                    }
                    match next_bit(self.day_mask(y, mo), d) {
                        Some(d2) => return Some((y, mo, d2)),
                        None if mo == 12 => (y, mo, d) = (y + 1, 1, 1),
                        None => (mo, d) = (mo + 1, 1),
                    }
                }
            }
        }
    }

    /// Last matching date <= `(y, mo, d)` (d may be 0), no earlier than year `first_year`.
    fn prev_date(&self, mut y: i64, mut mo: u32, mut d: u32, first_year: i64) -> Option<(i64, u32, u32)> {
        loop {
            if y < first_year {
                return None;
            }
            let y2 = self.prev_year(y)?;
            if y2 != y {
                (y, mo, d) = (y2, 12, 31);
                continue;
            }
            match prev_bit(self.months, mo) {
                None | Some(0) => (y, mo, d) = (y - 1, 12, 31),
                Some(m2) => {
                    if m2 != mo {
                        (mo, d) = (m2, 31);
                    }
                    match prev_bit(self.day_mask(y, mo), d) {
                        Some(d2) if d2 >= 1 => return Some((y, mo, d2)),
                        _ if mo == 1 => (y, mo, d) = (y - 1, 12, 31),
                        _ => (mo, d) = (mo - 1, 31),
                    }
                }
            }
        }
    }

    fn first_time(&self) -> (u32, u32, u32) {
        // Every field has at least one value (parse guarantees it), so trailing_zeros < 64.
        (self.hours.trailing_zeros(), self.minutes.trailing_zeros(), self.seconds.trailing_zeros())
    }

    fn last_time(&self) -> (u32, u32, u32) {
        (63 - self.hours.leading_zeros(), 63 - self.minutes.leading_zeros(), 63 - self.seconds.leading_zeros())
    }

    /// First matching time of day >= h:mi:s.
    fn next_time(&self, h: u32, mi: u32, s: u32) -> Option<(u32, u32, u32)> {
        let (_, m0, s0) = self.first_time();
        if self.hours & (1 << h) != 0 {
            if self.minutes & (1 << mi) != 0
                && let Some(s2) = next_bit(self.seconds, s)
            {
                return Some((h, mi, s2));
            }
            if let Some(m2) = next_bit(self.minutes, mi + 1) {
                return Some((h, m2, s0));
            }
        }
        next_bit(self.hours, h + 1).map(|h2| (h2, m0, s0))
    }

    /// Last matching time of day <= h:mi:s.
    fn prev_time(&self, h: u32, mi: u32, s: u32) -> Option<(u32, u32, u32)> {
        let (_, m9, s9) = self.last_time();
        if self.hours & (1 << h) != 0 {
            if self.minutes & (1 << mi) != 0
                && let Some(s2) = prev_bit(self.seconds, s)
            {
                return Some((h, mi, s2));
            }
            if mi > 0
                && let Some(m2) = prev_bit(self.minutes, mi - 1)
            {
                return Some((h, m2, s9));
            }
        }
        if h == 0 {
            return None;
        }
        prev_bit(self.hours, h - 1).map(|h2| (h2, m9, s9))
    }

    /// First matching naive time >= `start` (local epoch seconds), searching no further than
    /// the end of year `last_year`.
    pub(crate) fn next_match(&self, start: i64, last_year: i64) -> Option<i64> {
        let c = Civil::from_secs(start);
        if self.date_matches(c.y, c.mo, c.d)
            && let Some((h, mi, s)) = self.next_time(c.h, c.mi, c.s)
        {
            return Some(Civil { h, mi, s, ..c }.to_secs());
        }
        let (y, mo, d) = self.next_date(c.y, c.mo, c.d + 1, last_year)?;
        let (h, mi, s) = self.first_time();
        Some(Civil { y, mo, d, h, mi, s }.to_secs())
    }

    /// Last matching naive time <= `start`, searching no earlier than year `first_year`.
    pub(crate) fn prev_match(&self, start: i64, first_year: i64) -> Option<i64> {
        let c = Civil::from_secs(start);
        if self.date_matches(c.y, c.mo, c.d)
            && let Some((h, mi, s)) = self.prev_time(c.h, c.mi, c.s)
        {
            return Some(Civil { h, mi, s, ..c }.to_secs());
        }
        let (y, mo, d) = self.prev_date(c.y, c.mo, c.d - 1, first_year)?;
        let (h, mi, s) = self.last_time();
        Some(Civil { y, mo, d, h, mi, s }.to_secs())
    }
}

/// Bits 1..=n set.
fn mask_upto(n: u32) -> u64 {
    ((1u64 << (n + 1)) - 1) & !1
}

/// Lowest set bit >= `from`.
pub(crate) fn next_bit(mask: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = mask & (!0u64 << from);
    if rest == 0 { None } else { Some(rest.trailing_zeros()) }
}

/// Highest set bit <= `upto`.
pub(crate) fn prev_bit(mask: u64, upto: u32) -> Option<u32> {
    let low = if upto >= 63 { mask } else { mask & ((1u64 << (upto + 1)) - 1) };
    if low == 0 { None } else { Some(63 - low.leading_zeros()) }
}

/// The years a year field allows, one bit per year from `MIN_YEAR` to `MAX_YEAR`.
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct YearSet([u64; 3]);

impl YearSet {
    fn insert(&mut self, y: u32) {
        let i = (y - MIN_YEAR) as usize; // callers pass validated years
        self.0[i / 64] |= 1 << (i % 64);
    }

    pub(crate) fn contains(&self, y: i64) -> bool {
        if y < i64::from(MIN_YEAR) || y > i64::from(MAX_YEAR) {
            return false;
        }
        let i = (y - i64::from(MIN_YEAR)) as usize; // in [0, 129]
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    fn is_full(&self) -> bool {
        (MIN_YEAR..=MAX_YEAR).all(|y| self.contains(i64::from(y)))
    }
}

/// A field with values below 64, as a bitset indexed by value.
fn small_set(text: &str, field: Field) -> Result<u64, CronError> {
    let mut bits = 0u64;
    for_each_value(text, field, |v| bits |= 1 << v)?;
    Ok(bits)
}

/// Validate one field and call `set` with every value it allows.
fn for_each_value(text: &str, field: Field, mut set: impl FnMut(u32)) -> Result<(), CronError> {
    let (min, max) = field.range();
    // Validate the whole field before reporting values, so errors come in reading order.
    let mut spans = Vec::new();
    for element in text.split(',') {
        if element.is_empty() {
            return Err(CronError::EmptyElement { field });
        }
        let (range, step) = match element.split_once('/') {
            Some((range, step)) => (range, Some(parse_step(step, field)?)),
            None => (element, None),
        };
        let (start, end) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let a = parse_value(a, field)?;
            let mut b = parse_value(b, field)?;
            if field == Field::DayOfWeek && b == 0 && a > 0 {
                b = 7; // `FRI-SUN`: a range may end on Sunday spelled 0
            }
            if a > b {
                return Err(CronError::ReversedRange { field, start: a, end: b });
            }
            (a, b)
        } else {
            let a = parse_value(range, field)?;
            // `a/n` runs from a to the field's maximum; a plain value is just itself.
            (a, if step.is_some() { max } else { a })
        };
        spans.push((start, end, step.unwrap_or(1)));
    }
    for (start, end, step) in spans {
        let mut v = start;
        while v <= end {
            set(v);
            v += step;
        }
    }
    Ok(())
}

fn parse_step(text: &str, field: Field) -> Result<u32, CronError> {
    let (min, max) = field.range();
    let span = max - min + 1;
    match text.parse::<u32>() {
        Ok(n) if text.bytes().all(|b| b.is_ascii_digit()) && (1..=span).contains(&n) => Ok(n),
        _ => Err(CronError::InvalidStep { field, step: text.to_string(), max: span }),
    }
}

fn parse_value(text: &str, field: Field) -> Result<u32, CronError> {
    let (min, max) = field.range();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u64>() {
            Ok(v) if v >= u64::from(min) && v <= u64::from(max) => Ok(v as u32), // <= max, fits
            Ok(v) => Err(CronError::OutOfRange { field, value: v, min, max }),
            Err(_) => Err(CronError::InvalidValue { field, value: text.to_string() }),
        };
    }
    let names = field.names();
    match names.iter().position(|name| name.eq_ignore_ascii_case(text)) {
        Some(i) => Ok(field.name_base() + i as u32), // i < 12
        None => Err(CronError::InvalidValue { field, value: text.to_string() }),
    }
}
