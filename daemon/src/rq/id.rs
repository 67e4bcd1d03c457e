//! Job ids: the portable form every rq release accepts, and the Frappe form `<site>||…` that
//! Frappe's Desk (RQ Job) lists, usable only while every worker runs rq < 2.8 (`docs/rq.md`
//! W5, W9). Pure: no I/O.
//!
//! Both forms are deterministic in (site, schedule, due) and injective, and no id of one form
//! equals an id of the other (portable ids contain no `|`). Which form a run gets never decides
//! whether it is enqueued: the claim key is always derived from the portable id
//! (`engine::store::claim_key`), so two daemons using different forms, or a form switch while
//! a run is being written, still enqueue it once.

use chrono::{DateTime, Datelike, Timelike, Utc};
use std::fmt::Write as _;

/// Which id form a Frappe-mode run gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdForm {
    /// `btu-<site>-<schedule>-<due>`, escaped to `[A-Za-z0-9_-]`: every rq release.
    #[default]
    Portable,
    /// `<site>||btu-<schedule>-<due>` (Frappe develop's `<site>||<id>`): listed and cleared by
    /// Desk → RQ Job; only for rq < 2.8 and only for sites named in [`is_site_char`]s.
    SitePrefixed,
}

impl IdForm {
    /// How the form is named in logs and `btu check-config`.
    pub fn label(self) -> &'static str {
        match self {
            IdForm::Portable => "portable btu-<site>-<schedule>-<due>",
            IdForm::SitePrefixed => "<site>||btu-<schedule>-<due>",
        }
    }
}

/// The separator of the Frappe form: Frappe develop's; rq ≥ 2.0 cuts ids at `:`, so not v15's
/// `::`.
pub const SITE_SEPARATOR: &str = "||";

/// A character every rq release accepts in a job id (`[A-Za-z0-9_-]`, rq ≥ 2.8's whole set).
pub fn is_portable_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// A character a site name may have to lead a Frappe-form id: host-name characters. None is
/// `|` (so the first `||` ends the site) or `:` (rq 2.0–2.7 refuse it).
pub fn is_site_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-'
}

/// Whether `site` can lead a Frappe-form id verbatim. Other sites keep the portable form
/// (their id would not start with the site name anyway once escaped).
pub fn site_can_prefix(site: &str) -> bool {
    !site.is_empty() && site.chars().all(is_site_char)
}

/// The portable id of the run of `schedule` on `site` due at `due`.
///
/// Site and schedule have every byte outside `[A-Za-z0-9]` written as `_xx` (lowercase hex of
/// the UTF-8 byte, so `-`, `.` and `_` too), which leaves `-` free as the separator. The due
/// instant is `YYYYMMDDTHHMMSSZ` in UTC, with `_NNNNNNNNN` nanoseconds before the `Z` when not
/// whole seconds. Example: `btu-site1_2elocal-TASK_2dSCH_2d0001-20270314T100000Z`.
pub fn job_id(site: &str, schedule: &str, due: DateTime<Utc>) -> String {
    let mut id = String::with_capacity(8 + site.len() + schedule.len() + 20);
    id.push_str("btu-");
    escape_into(site, &mut id);
    id.push('-');
    push_schedule_due(&mut id, schedule, due);
    id
}

/// The id of the run in `form`: [`job_id`] for [`IdForm::Portable`] and for sites that cannot
/// lead an id ([`site_can_prefix`]); else `<site>||btu-<escaped schedule>-<due>`, e.g.
/// `site1.local||btu-SCH_2d0001-20270314T100000Z`.
pub fn job_id_in(form: IdForm, site: &str, schedule: &str, due: DateTime<Utc>) -> String {
    if form == IdForm::Portable || !site_can_prefix(site) {
        return job_id(site, schedule, due);
    }
    let mut id = String::with_capacity(site.len() + schedule.len() + 28);
    id.push_str(site);
    id.push_str(SITE_SEPARATOR);
    id.push_str("btu-");
    push_schedule_due(&mut id, schedule, due);
    id
}

/// Whether `id` is one of the two forms' shapes: portable characters only, or a site of
/// [`is_site_char`]s, `||`, then portable characters only.
pub fn is_valid_job_id(id: &str) -> bool {
    let portable = |s: &str| !s.is_empty() && s.chars().all(is_portable_char);
    match id.split_once(SITE_SEPARATOR) {
        None => portable(id),
        Some((site, rest)) => site_can_prefix(site) && portable(rest),
    }
}

/// Whether `id` is one this daemon writes (either form): listed by `btu list-jobs`.
pub fn is_daemon_job_id(id: &str) -> bool {
    is_valid_job_id(id)
        && match id.split_once(SITE_SEPARATOR) {
            None => id.starts_with("btu-"),
            Some((_, rest)) => rest.starts_with("btu-"),
        }
}

fn push_schedule_due(id: &mut String, schedule: &str, due: DateTime<Utc>) {
    escape_into(schedule, id);
    id.push('-');
    let year = due.year();
    if year < 0 {
        // Only reachable with synthetic dates; keeps the id in the charset.
        id.push('m');
    }
    let _ = write!(
        id,
        "{:04}{:02}{:02}T{:02}{:02}{:02}",
        year.unsigned_abs(),
        due.month(),
        due.day(),
        due.hour(),
        due.minute(),
        due.second()
    );
    if due.nanosecond() != 0 {
        let _ = write!(id, "_{:09}", due.nanosecond());
    }
    id.push('Z');
}

/// `text` as ids carry a site or schedule (see [`job_id`]).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(text, &mut out);
    out
}

fn escape_into(text: &str, out: &mut String) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            let _ = write!(out, "_{b:02x}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    /// What each tested rq release accepts in an id, as measured with stock rq (`docs/rq.md`
    /// W5, W9): 1.15 anything; 2.0–2.7 anything but `:`; 2.8+ only `[A-Za-z0-9_-]+`.
    fn accepted_by(release: (u32, u32), id: &str) -> bool {
        match release {
            (1, _) => !id.is_empty(),
            (2, minor) if minor < 8 => !id.is_empty() && !id.contains(':'),
            _ => !id.is_empty() && id.chars().all(is_portable_char),
        }
    }

    fn due() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 3, 14, 10, 0, 0).single().expect("valid date")
    }

    #[test]
    fn portable_id_is_readable_and_safe() {
        assert_eq!(job_id("site1.local", "SCH-0001", due()), "btu-site1_2elocal-SCH_2d0001-20270314T100000Z");
        assert_eq!(job_id("é", "a_b", due()), "btu-_c3_a9-a_5fb-20270314T100000Z");
        let sub = due() + chrono::Duration::nanoseconds(1_500);
        assert_eq!(job_id("s", "t", sub), "btu-s-t-20270314T100000_000001500Z");
        assert!(is_valid_job_id(&job_id("a:b|c d", "x/y", due())));
    }

    #[test]
    fn site_prefixed_id_starts_with_the_site() {
        let id = job_id_in(IdForm::SitePrefixed, "site1.local", "SCH-0001", due());
        assert_eq!(id, "site1.local||btu-SCH_2d0001-20270314T100000Z");
        assert!(is_valid_job_id(&id));
        assert!(accepted_by((1, 15), &id) && accepted_by((2, 6), &id) && !accepted_by((3, 0), &id));
        // A site that cannot lead an id keeps the portable form.
        for site in ["a|b", "a:b", "é.local", "a b", ""] {
            assert_eq!(job_id_in(IdForm::SitePrefixed, site, "S", due()), job_id(site, "S", due()), "{site:?}");
        }
        assert_eq!(job_id_in(IdForm::Portable, "site1.local", "S", due()), job_id("site1.local", "S", due()));
    }

    #[test]
    fn validation_accepts_only_the_two_shapes() {
        for bad in ["", "a:b", "a b", "||x", "a||", "a|b||x", "a||b||c", "a||b.c", "é||x", "a|||x"] {
            assert!(!is_valid_job_id(bad), "{bad:?}");
        }
        for good in ["x", "btu-a-b-1Z", "a.b_c-d||btu-x-1Z"] {
            assert!(is_valid_job_id(good), "{good:?}");
        }
        assert!(is_daemon_job_id(&job_id("a.b", "S", due())));
        assert!(is_daemon_job_id(&job_id_in(IdForm::SitePrefixed, "a.b", "S", due())));
        for other in ["x", "a.b||9f1c", "0b6e-uuid", "btu", "a||btu"] {
            assert!(!is_daemon_job_id(other), "{other:?}");
        }
    }

    fn run() -> impl Strategy<Value = (String, String, i64)> {
        // Sites and schedules from a mix of host-name characters and anything at all.
        let text = prop_oneof!["[a-z0-9._-]{0,6}", ".{0,6}", "[a|:._-]{0,4}"];
        (text.clone(), text, 0i64..4_000_000_000)
    }

    fn form() -> impl Strategy<Value = IdForm> {
        prop_oneof![Just(IdForm::Portable), Just(IdForm::SitePrefixed)]
    }

    proptest! {
        /// Injective across both forms at once: two runs share an id only if they are the same
        /// run, whichever form each got (so ids stay unique while daemons disagree on forms).
        #[test]
        fn ids_are_injective_and_valid(a in run(), b in run(), fa in form(), fb in form()) {
            let t = |s: i64| DateTime::<Utc>::from_timestamp(s, 0).expect("in range");
            let ia = job_id_in(fa, &a.0, &a.1, t(a.2));
            let ib = job_id_in(fb, &b.0, &b.1, t(b.2));
            prop_assert!(is_valid_job_id(&ia));
            if ia == ib {
                prop_assert_eq!(&a, &b);
            }
            if a == b && fa == fb {
                prop_assert_eq!(&ia, &ib);
            }
        }

        /// Portable ids run on every release; site-prefixed ones on every release before 2.8.
        #[test]
        fn ids_fit_each_release(a in run(), f in form()) {
            let t = DateTime::<Utc>::from_timestamp(a.2, 0).expect("in range");
            let id = job_id_in(f, &a.0, &a.1, t);
            prop_assert!(accepted_by((1, 15), &id));
            prop_assert!(accepted_by((2, 6), &id));
            prop_assert!(accepted_by((2, 7), &id));
            let portable = job_id(&a.0, &a.1, t);
            prop_assert!(accepted_by((2, 8), &portable) && accepted_by((3, 0), &portable));
            prop_assert_eq!(id.contains(SITE_SEPARATOR), f == IdForm::SitePrefixed && site_can_prefix(&a.0));
        }
    }
}
