//! The BTU app's `run_frequency` other than `Cron Style`: the **local** cron built from the
//! row's `minute`, `hour`, `day_of_week`, `day_of_month` and `month` fields. Pure.
//!
//! For those frequencies the app also stores a `cron_string`, but converted to UTC with the
//! offset of the day of the save (wrong after every DST change, hours off when read as local
//! time), so it is ignored: the fields keep the user's intent.
//!
//! | run_frequency | local cron |
//! |---|---|
//! | Hourly | `{minute} * * * *` |
//! | Daily | `{minute} {hour} * * *` |
//! | Weekly | `{minute} {hour} * * {day_of_week}` |
//! | Monthly | `{minute} {hour} {day_of_month} * *` |
//! | Yearly | `{minute} {hour} {day_of_month} {month} *` |

use std::fmt;

/// The frequency fields of one schedule row, as read (columns an old schema lacks are `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrequencyFields {
    pub run_frequency: Option<String>,
    /// An Int column.
    pub minute: Option<i64>,
    /// A Data column: text, `'0'`..`'23'`.
    pub hour: Option<String>,
    /// `Monday`..`Sunday`.
    pub day_of_week: Option<String>,
    /// An Int column; 0 (its default) means not set.
    pub day_of_month: Option<i64>,
    /// `JAN`..`DEC`.
    pub month: Option<String>,
}

/// A field that is missing or invalid for the row's frequency: the schedule is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub frequency: String,
    pub field: &'static str,
    /// The value as read; `None` when the field is empty.
    pub value: Option<String>,
    /// What the field must hold.
    pub expected: &'static str,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => {
                write!(f, "{} schedule: field {} is {v:?}, expected {}", self.frequency, self.field, self.expected)
            }
            None => write!(f, "{} schedule: field {} is empty, expected {}", self.frequency, self.field, self.expected),
        }
    }
}

const DAYS: [(&str, &str); 7] = [
    ("monday", "MON"),
    ("tuesday", "TUE"),
    ("wednesday", "WED"),
    ("thursday", "THU"),
    ("friday", "FRI"),
    ("saturday", "SAT"),
    ("sunday", "SUN"),
];

/// Month names as the app stores them, with the most days each can have.
const MONTHS: [(&str, i64); 12] = [
    ("JAN", 31),
    ("FEB", 29),
    ("MAR", 31),
    ("APR", 30),
    ("MAY", 31),
    ("JUN", 30),
    ("JUL", 31),
    ("AUG", 31),
    ("SEP", 30),
    ("OCT", 31),
    ("NOV", 30),
    ("DEC", 31),
];

/// The local cron of a row: `Ok(None)` for `Cron Style` (an empty or absent `run_frequency`
/// too: the row's `cron_string` is the cron), `Ok(Some(cron))` built from the fields for the
/// other frequencies, or the first missing or invalid field.
pub fn local_cron(fields: &FrequencyFields) -> Result<Option<String>, FieldError> {
    let frequency = fields.run_frequency.as_deref().map(str::trim).unwrap_or("");
    let err = |field, value: Option<String>, expected| FieldError {
        frequency: frequency.to_string(),
        field,
        value,
        expected,
    };
    let minute = || match fields.minute {
        Some(m) if (0..60).contains(&m) => Ok(m),
        other => Err(err("minute", other.map(|m| m.to_string()), "a minute 0-59")),
    };
    let hour = || {
        let text = fields.hour.as_deref().map(str::trim).filter(|h| !h.is_empty());
        match text.map(|h| (h, h.parse::<u8>())) {
            Some((_, Ok(h))) if h < 24 => Ok(h),
            _ => Err(err("hour", text.map(str::to_string), "an hour 0-23")),
        }
    };
    let day_of_month = |most: i64| match fields.day_of_month {
        Some(d) if (1..=most).contains(&d) => Ok(d),
        Some(0) | None => Err(err("day_of_month", None, "a day of the month 1-31")),
        Some(d) => Err(err("day_of_month", Some(d.to_string()), "a day of the month 1-31 that the month has")),
    };
    let text = |v: &Option<String>| v.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_string);
    let day_of_week = || {
        let day = text(&fields.day_of_week);
        match day.as_deref().and_then(|d| DAYS.iter().find(|(name, _)| name.eq_ignore_ascii_case(d))) {
            Some((_, cron)) => Ok(*cron),
            None => Err(err("day_of_week", day, "Monday..Sunday")),
        }
    };
    let month = || {
        let m = text(&fields.month);
        match m.as_deref().and_then(|m| MONTHS.iter().find(|(name, _)| name.eq_ignore_ascii_case(m))) {
            Some(found) => Ok(*found),
            None => Err(err("month", m, "JAN..DEC")),
        }
    };
    let cron = match frequency {
        "" | "Cron Style" => return Ok(None),
        "Hourly" => format!("{} * * * *", minute()?),
        "Daily" => format!("{} {} * * *", minute()?, hour()?),
        "Weekly" => format!("{} {} * * {}", minute()?, hour()?, day_of_week()?),
        "Monthly" => format!("{} {} {} * *", minute()?, hour()?, day_of_month(31)?),
        "Yearly" => {
            let (m, h, (name, most)) = (minute()?, hour()?, month()?);
            format!("{m} {h} {} {name} *", day_of_month(most)?)
        }
        other => {
            return Err(FieldError {
                frequency: other.to_string(),
                field: "run_frequency",
                value: Some(other.to_string()),
                expected: "Cron Style, Hourly, Daily, Weekly, Monthly or Yearly",
            });
        }
    };
    Ok(Some(cron))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cron::CronExpr;
    use proptest::prelude::*;

    fn fields(freq: &str, minute: i64, hour: &str, dow: &str, dom: i64, month: &str) -> FrequencyFields {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        FrequencyFields {
            run_frequency: opt(freq),
            minute: Some(minute),
            hour: opt(hour),
            day_of_week: opt(dow),
            day_of_month: Some(dom),
            month: opt(month),
        }
    }

    #[test]
    fn each_frequency_builds_its_local_cron() {
        let cron = |f| local_cron(&f).expect("valid");
        assert_eq!(cron(fields("Hourly", 15, "", "", 0, "")), Some("15 * * * *".into()));
        assert_eq!(cron(fields("Daily", 30, "9", "", 0, "")), Some("30 9 * * *".into()));
        assert_eq!(cron(fields("Weekly", 0, "20", "Monday", 0, "")), Some("0 20 * * MON".into()));
        assert_eq!(cron(fields("Monthly", 5, "0", "", 31, "")), Some("5 0 31 * *".into()));
        assert_eq!(cron(fields("Yearly", 0, "6", "", 29, "FEB")), Some("0 6 29 FEB *".into()));
        // Fields a frequency does not use are ignored, whatever they hold.
        assert_eq!(cron(fields("Hourly", 15, "99", "Someday", 40, "XYZ")), Some("15 * * * *".into()));
        assert_eq!(cron(fields("Daily", 30, " 9 ", "Someday", 0, "")), Some("30 9 * * *".into()));
        // Cron Style (or no frequency at all, an old schema): the cron_string is the cron.
        assert_eq!(cron(fields("Cron Style", 0, "", "", 0, "")), None);
        assert_eq!(cron(FrequencyFields::default()), None);
    }

    #[test]
    fn a_missing_or_invalid_field_is_named_with_its_value() {
        let e = |f| local_cron(&f).expect_err("invalid");
        let err = e(fields("Daily", 30, "", "", 0, ""));
        assert_eq!((err.field, err.value.as_deref()), ("hour", None));
        assert_eq!(err.to_string(), "Daily schedule: field hour is empty, expected an hour 0-23");
        let err = e(fields("Daily", 30, "24", "", 0, ""));
        assert_eq!(err.to_string(), "Daily schedule: field hour is \"24\", expected an hour 0-23");
        assert_eq!(e(fields("Daily", 30, "9am", "", 0, "")).value.as_deref(), Some("9am"));
        assert_eq!(e(fields("Hourly", 60, "", "", 0, "")).field, "minute");
        let mut no_minute = fields("Hourly", 0, "", "", 0, "");
        no_minute.minute = None;
        assert_eq!(e(no_minute).field, "minute");
        assert_eq!(e(fields("Weekly", 0, "1", "Funday", 0, "")).value.as_deref(), Some("Funday"));
        assert_eq!(e(fields("Weekly", 0, "1", "", 0, "")).field, "day_of_week");
        assert_eq!(e(fields("Monthly", 0, "1", "", 0, "")).field, "day_of_month");
        assert_eq!(e(fields("Monthly", 0, "1", "", 32, "")).value.as_deref(), Some("32"));
        let err = e(fields("Yearly", 0, "1", "", 30, "FEB"));
        assert_eq!((err.field, err.value.as_deref()), ("day_of_month", Some("30")));
        assert_eq!(e(fields("Yearly", 0, "1", "", 3, "")).field, "month");
        let err = e(fields("Fortnightly", 0, "1", "", 3, ""));
        assert_eq!((err.field, err.value.as_deref()), ("run_frequency", Some("Fortnightly")));
    }

    fn frequency() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["Hourly", "Daily", "Weekly", "Monthly", "Yearly"])
    }

    proptest! {
        /// Every valid combination gives a cron the cron parser accepts, whose fields are the
        /// row's (minute first, hour second where used).
        #[test]
        fn valid_fields_always_parse(freq in frequency(), minute in 0i64..60, hour in 0u8..24,
                                     day in 0usize..7, month in 0usize..12, dom in 1i64..=28) {
            let f = fields(freq, minute, &hour.to_string(), DAYS[day].0, dom, MONTHS[month].0);
            let cron = local_cron(&f).expect("valid").expect("not cron style");
            prop_assert!(CronExpr::parse(&cron).is_ok(), "{cron}");
            let parts: Vec<&str> = cron.split(' ').collect();
            prop_assert_eq!(parts.len(), 5);
            prop_assert_eq!(parts[0], minute.to_string());
            if freq != "Hourly" {
                prop_assert_eq!(parts[1], hour.to_string());
            }
        }

        /// An hour outside 0-23, whatever its text, is named with that text.
        #[test]
        fn bad_hours_are_named(freq in prop::sample::select(vec!["Daily", "Weekly", "Monthly", "Yearly"]),
                               hour in "[0-9a-z ]{1,4}") {
            prop_assume!(!matches!(hour.trim().parse::<u8>(), Ok(h) if h < 24));
            let f = fields(freq, 0, &hour, "Friday", 1, "MAR");
            let err = local_cron(&f).expect_err("invalid hour");
            prop_assert_eq!(err.field, "hour");
        }
    }
}
