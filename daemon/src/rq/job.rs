//! One RQ job: its validation (the id's shape from [`super::id`]) and the job-hash fields a
//! stock worker reads (`docs/rq.md` W2, W3). Pure: no I/O.
//!
//! Every field is validated before anything reaches Redis because a single
//! malformed field makes rq workers quit, and on rq ≥ 1.15 the poisoned id
//! then crash-loops every worker started on that queue (`docs/rq.md` W8).

use super::data::job_data;
use super::error::RqError;
use super::id::is_valid_job_id;
use crate::pyvalue::{Kwargs, MAX_DEPTH, PyValue};
use chrono::{DateTime, Datelike, Timelike, Utc};
use std::fmt::Write as _;

/// Frappe's `result_ttl`: finished jobs stay readable for 10 minutes.
pub const DEFAULT_RESULT_TTL_SECS: i64 = 600;
/// Frappe's `failure_ttl`: failed jobs stay 7 days.
pub const DEFAULT_FAILURE_TTL_SECS: i64 = 604_800;

/// A job as the daemon wants it run.
#[derive(Debug, Clone, PartialEq)]
pub struct RqJob {
    /// One of the two id forms of [`super::id`] (checked by [`validate`]).
    pub id: String,
    /// Full queue name, including any Frappe bench prefix (`bench:default`).
    pub queue: String,
    /// Dotted path of a module-level function, e.g. `pkg.module.func`.
    pub func: String,
    pub args: Vec<PyValue>,
    pub kwargs: Kwargs,
    /// Seconds the worker lets the function run; `-1` = no limit.
    pub timeout_secs: i64,
    /// Seconds the job hash is kept after success; `-1` = forever.
    pub result_ttl_secs: i64,
    /// Seconds a failed job is kept.
    pub failure_ttl_secs: i64,
    /// Free text shown by dashboards, e.g. from [`describe`].
    pub description: String,
}

impl RqJob {
    /// A job with no arguments, Frappe's TTLs, a 300 s timeout and the
    /// RQ-style description.
    pub fn new(id: impl Into<String>, queue: impl Into<String>, func: impl Into<String>) -> RqJob {
        let func = func.into();
        RqJob {
            id: id.into(),
            queue: queue.into(),
            description: describe(&func, &[], &Vec::new()),
            func,
            args: Vec::new(),
            kwargs: Vec::new(),
            timeout_secs: 300,
            result_ttl_secs: DEFAULT_RESULT_TTL_SECS,
            failure_ttl_secs: DEFAULT_FAILURE_TTL_SECS,
        }
    }
}

/// The description RQ itself writes: `module.func(arg, key=value)`.
pub fn describe(func: &str, args: &[PyValue], kwargs: &Kwargs) -> String {
    let mut out = format!("{func}(");
    let mut first = true;
    for a in args {
        if !first {
            out.push_str(", ");
        }
        first = false;
        out.push_str(&a.to_python_repr());
    }
    for (k, v) in kwargs {
        if !first {
            out.push_str(", ");
        }
        first = false;
        let _ = write!(out, "{k}={}", v.to_python_repr());
    }
    out.push(')');
    out
}

fn invalid(field: &'static str, reason: impl Into<String>) -> RqError {
    RqError::Invalid { field, reason: reason.into() }
}

/// Checks every field against what all rq releases from 1.15 to 3.0 accept.
pub fn validate(job: &RqJob) -> Result<(), RqError> {
    if job.id.is_empty() {
        return Err(invalid("id", "is empty"));
    }
    if !is_valid_job_id(&job.id) {
        return Err(invalid(
            "id",
            format!("{:?} is neither [A-Za-z0-9_-]+ nor <site>||[A-Za-z0-9_-]+ (docs/rq.md W5)", job.id),
        ));
    }
    if job.queue.is_empty() {
        return Err(invalid("queue", "is empty"));
    }
    // Colons are fine (Frappe's `bench:default`); whitespace and control
    // characters are not something a worker's command line can name.
    if let Some(c) = job.queue.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("queue", format!("{:?} contains {c:?}", job.queue)));
    }
    validate_func(&job.func)?;
    if job.timeout_secs <= 0 && job.timeout_secs != -1 {
        return Err(invalid(
            "timeout",
            format!("{} is not a positive number of seconds or -1 (no limit)", job.timeout_secs),
        ));
    }
    if job.result_ttl_secs <= 0 && job.result_ttl_secs != -1 {
        return Err(invalid(
            "result_ttl",
            format!(
                "{} is not a positive number of seconds or -1 (0 would delete the job at success)",
                job.result_ttl_secs
            ),
        ));
    }
    if job.failure_ttl_secs <= 0 {
        return Err(invalid("failure_ttl", format!("{} is not a positive number of seconds", job.failure_ttl_secs)));
    }
    for (n, a) in job.args.iter().enumerate() {
        check_value(a, 0).map_err(|r| invalid("args", format!("argument {n}: {r}")))?;
    }
    for (n, (k, v)) in job.kwargs.iter().enumerate() {
        if job.kwargs[..n].iter().any(|(k2, _)| k2 == k) {
            return Err(invalid("kwargs", format!("key {k:?} appears twice")));
        }
        check_value(v, 0).map_err(|r| invalid("kwargs", format!("key {k:?}: {r}")))?;
    }
    Ok(())
}

fn validate_func(func: &str) -> Result<(), RqError> {
    let parts: Vec<&str> = func.split('.').collect();
    if parts.len() < 2 {
        return Err(invalid("func", format!("{func:?} is not a dotted path module.function")));
    }
    for part in parts {
        let ok = part.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(invalid("func", format!("{func:?}: {part:?} is not a Python identifier")));
        }
    }
    Ok(())
}

/// Values Python could not unpickle into a call: unhashable dict keys, or
/// nesting beyond what the pickle encoder accepts.
fn check_value(v: &PyValue, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    match v {
        PyValue::List(items) | PyValue::Tuple(items) => items.iter().try_for_each(|i| check_value(i, depth + 1)),
        PyValue::Dict(items) => items.iter().try_for_each(|(k, v)| {
            if !k.is_hashable() {
                return Err(format!("unhashable dict key of type {}", k.type_name()));
            }
            check_value(k, depth + 1)?;
            check_value(v, depth + 1)
        }),
        _ => Ok(()),
    }
}

/// `%Y-%m-%dT%H:%M:%S.ffffffZ` — the one timestamp form every rq parses
/// (nanoseconds, offsets or a missing `Z` kill the worker).
pub fn rq_timestamp(t: DateTime<Utc>) -> Result<String, RqError> {
    if !(1..=9999).contains(&t.year()) {
        return Err(invalid("created_at", format!("year {} is outside Python's 1-9999", t.year())));
    }
    // chrono keeps a leap second as nanos >= 1e9 (and `%S` prints it as 60,
    // which Python's datetime rejects); clamp to the last microsecond of :59.
    let micros = (t.nanosecond() / 1000).min(999_999);
    let s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    // Invariant of the format above for years 1-9999; checked, not assumed.
    if s.len() != 27 {
        return Err(invalid("created_at", format!("{s:?} is not in rq's format")));
    }
    Ok(s)
}

/// The job hash, field by field, exactly the recommended set: `data`
/// `status` `origin` `created_at` `enqueued_at` `timeout` `result_ttl`
/// `failure_ttl` `description`. Validates first.
pub fn job_fields(job: &RqJob, now: DateTime<Utc>) -> Result<Vec<(&'static str, Vec<u8>)>, RqError> {
    validate(job)?;
    let ts = rq_timestamp(now)?;
    let data = job_data(&job.func, &job.args, &job.kwargs)?;
    Ok(vec![
        ("data", data),
        ("status", b"queued".to_vec()),
        ("origin", job.queue.as_bytes().to_vec()),
        ("created_at", ts.as_bytes().to_vec()),
        ("enqueued_at", ts.into_bytes()),
        ("timeout", job.timeout_secs.to_string().into_bytes()),
        ("result_ttl", job.result_ttl_secs.to_string().into_bytes()),
        ("failure_ttl", job.failure_ttl_secs.to_string().into_bytes()),
        ("description", job.description.as_bytes().to_vec()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rq::id::job_id;
    use chrono::TimeZone;

    fn due() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 3, 14, 10, 0, 0).single().expect("valid date")
    }

    fn job() -> RqJob {
        let mut j = RqJob::new(job_id("site1.local", "SCH-0001", due()), "bench-x:default", "pkg.mod.func");
        j.kwargs = vec![("a".into(), PyValue::Int(1))];
        j.description = describe(&j.func, &j.args, &j.kwargs);
        j
    }

    #[test]
    fn fields_are_the_recommended_set() {
        let now = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).single().expect("date")
            + chrono::Duration::nanoseconds(123_456_789);
        let f = job_fields(&job(), now).expect("fields");
        let names: Vec<&str> = f.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "data",
                "status",
                "origin",
                "created_at",
                "enqueued_at",
                "timeout",
                "result_ttl",
                "failure_ttl",
                "description"
            ]
        );
        let get = |n: &str| f.iter().find(|(k, _)| *k == n).map(|(_, v)| String::from_utf8_lossy(v).into_owned());
        assert_eq!(get("created_at").as_deref(), Some("2024-01-02T03:04:05.123456Z"));
        assert_eq!(get("status").as_deref(), Some("queued"));
        assert_eq!(get("origin").as_deref(), Some("bench-x:default"));
        assert_eq!(get("timeout").as_deref(), Some("300"));
        assert_eq!(get("result_ttl").as_deref(), Some("600"));
        assert_eq!(get("failure_ttl").as_deref(), Some("604800"));
        assert_eq!(get("description").as_deref(), Some("pkg.mod.func(a=1)"));
    }

    #[test]
    fn leap_second_still_has_six_digits() {
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_nano_opt(23, 59, 59, 1_999_999_999))
            .expect("leap second")
            .and_utc();
        assert_eq!(rq_timestamp(leap).expect("ts"), "2016-12-31T23:59:59.999999Z");
    }

    #[test]
    fn validation_names_the_field() {
        type Mutation = Box<dyn Fn(&mut RqJob)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("id", Box::new(|j| j.id = "site1.local||x.y".into())),
            ("id", Box::new(|j| j.id = "a|b||x".into())),
            ("id", Box::new(|j| j.id = "a:b".into())),
            ("id", Box::new(|j| j.id = String::new())),
            ("queue", Box::new(|j| j.queue = String::new())),
            ("queue", Box::new(|j| j.queue = "a b".into())),
            ("func", Box::new(|j| j.func = "func".into())),
            ("func", Box::new(|j| j.func = "a..b".into())),
            ("func", Box::new(|j| j.func = "a.1b".into())),
            ("func", Box::new(|j| j.func = "a.b(c)".into())),
            ("timeout", Box::new(|j| j.timeout_secs = 0)),
            ("timeout", Box::new(|j| j.timeout_secs = -5)),
            ("result_ttl", Box::new(|j| j.result_ttl_secs = 0)),
            ("failure_ttl", Box::new(|j| j.failure_ttl_secs = -1)),
            ("kwargs", Box::new(|j| j.kwargs.push(("a".into(), PyValue::None)))),
            (
                "kwargs",
                Box::new(|j| j.kwargs.push(("d".into(), PyValue::Dict(vec![(PyValue::List(vec![]), PyValue::None)])))),
            ),
        ];
        for (want, mutate) in cases {
            let mut j = job();
            mutate(&mut j);
            match validate(&j) {
                Err(RqError::Invalid { field, reason }) => assert_eq!(field, want, "{reason}"),
                other => panic!("expected {want} to be invalid, got {other:?}"),
            }
        }
        let mut j = job();
        j.timeout_secs = -1;
        j.result_ttl_secs = -1;
        assert!(validate(&j).is_ok());
        let far = Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).single().expect("date");
        assert!(matches!(job_fields(&job(), far), Err(RqError::Invalid { field: "created_at", .. })));
    }
}
