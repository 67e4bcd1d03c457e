//! The fields of a cron expression: their names (for messages), ranges and value names.

use std::fmt;

/// First and last year the year field accepts.
pub const MIN_YEAR: u32 = 1970;
pub const MAX_YEAR: u32 = 2099;

/// A field of a cron expression, named in error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
    Year,
}

impl Field {
    /// Allowed values; day-of-week accepts 7 as a second spelling of Sunday.
    pub fn range(self) -> (u32, u32) {
        match self {
            Field::Second | Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (0, 7),
            Field::Year => (MIN_YEAR, MAX_YEAR),
        }
    }

    pub(crate) fn names(self) -> &'static [&'static str] {
        const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
        const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
        match self {
            Field::Month => &MONTHS,
            Field::DayOfWeek => &DAYS,
            _ => &[],
        }
    }

    /// Value of a name's first entry (JAN = 1, SUN = 0).
    pub(crate) fn name_base(self) -> u32 {
        if self == Field::Month { 1 } else { 0 }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Second => "second",
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
            Field::Year => "year",
        })
    }
}
