//! Proleptic Gregorian calendar arithmetic on plain integers.
//!
//! The search works on *naive* wall-clock seconds ("local epoch seconds": the wall time read as if
//! it were UTC). Doing the date arithmetic here, with Howard Hinnant's day-number algorithms,
//! keeps the hot path free of chrono's validating constructors.

/// Seconds in one civil day.
pub(crate) const DAY: i64 = 86_400;
/// Seconds in one hour.
pub(crate) const HOUR: i64 = 3_600;

/// Days since 1970-01-01 of the civil date `y-m-d` (`m` 1..=12, `d` 1..=31).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day number (days since 1970-01-01).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31], fits u32
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

pub(crate) fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

pub(crate) fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Day of the week of a day number, 0 = Sunday (1970-01-01 was a Thursday).
pub(crate) fn weekday(days: i64) -> u32 {
    (days + 4).rem_euclid(7) as u32 // [0, 6]
}

/// A naive wall-clock time split into its calendar fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Civil {
    pub y: i64,
    pub mo: u32,
    pub d: u32,
    pub h: u32,
    pub mi: u32,
    pub s: u32,
}

impl Civil {
    pub(crate) fn from_secs(secs: i64) -> Civil {
        let days = secs.div_euclid(DAY);
        let tod = secs.rem_euclid(DAY) as u32; // [0, 86399]
        let (y, mo, d) = civil_from_days(days);
        Civil { y, mo, d, h: tod / 3600, mi: tod / 60 % 60, s: tod % 60 }
    }

    pub(crate) fn to_secs(self) -> i64 {
        days_from_civil(self.y, self.mo, self.d) * DAY + i64::from(self.h * 3600 + self.mi * 60 + self.s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_round_trip_across_four_centuries() {
        for z in -200_000..200_000 {
            let (y, m, d) = civil_from_days(z);
            assert!(d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(weekday(days_from_civil(2027, 3, 14)), 0); // a Sunday
        assert_eq!(weekday(days_from_civil(2024, 2, 29)), 4); // a Thursday
        assert_eq!(Civil::from_secs(-1), Civil { y: 1969, mo: 12, d: 31, h: 23, mi: 59, s: 59 });
    }
}
