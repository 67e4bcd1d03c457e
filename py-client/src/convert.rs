//! Protocol payloads → plain Python objects (dicts, lists, timezone-aware datetimes).

use btu_protocol::{
    AuditEntry, BackfillRun, HistoryRun, NextRun, PauseInfo, Response, ScheduleState, Settings, SiteStatus, UpcomingRun,
};
use chrono::{DateTime, Datelike, Timelike};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyType};

static DATETIME: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TIMEZONE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TIMEDELTA: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static JSON_LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// An RFC 3339 timestamp from the daemon as an aware `datetime.datetime` keeping its offset
/// (`Z` → `timezone.utc`, `+02:00` → `timezone(timedelta(hours=2))`).
pub fn datetime<'py>(py: Python<'py>, field: &str, text: &str) -> PyResult<Bound<'py, PyAny>> {
    let parsed = DateTime::parse_from_rfc3339(text).map_err(|e| {
        crate::errors::protocol_error(
            py,
            format!("btu-daemon sent '{text}' as {field}, which is not an RFC 3339 timestamp: {e}"),
        )
    })?;
    let offset = parsed.offset().local_minus_utc();
    let timezone = TIMEZONE.import(py, "datetime", "timezone")?;
    let tzinfo = if offset == 0 {
        timezone.getattr("utc")?
    } else {
        let delta = TIMEDELTA.import(py, "datetime", "timedelta")?.call1((0, offset))?;
        timezone.call1((delta,))?
    };
    // chrono encodes a leap second as nanosecond ≥ 1e9; Python has no :60, so clamp to :59.999999.
    let (second, micro) = if parsed.nanosecond() >= 1_000_000_000 {
        (59, 999_999)
    } else {
        (parsed.second(), parsed.nanosecond() / 1_000)
    };
    DATETIME.import(py, "datetime", "datetime")?.call1((
        parsed.year(),
        parsed.month(),
        parsed.day(),
        parsed.hour(),
        parsed.minute(),
        second,
        micro,
        tzinfo,
    ))
}

fn optional_datetime<'py>(py: Python<'py>, field: &str, text: Option<&str>) -> PyResult<Bound<'py, PyAny>> {
    match text {
        Some(t) => datetime(py, field, t),
        None => Ok(py.None().into_bound(py)),
    }
}

fn next_run<'py>(py: Python<'py>, run: &NextRun) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("utc", datetime(py, "next_runs.utc", &run.utc)?)?;
    d.set_item("local", datetime(py, "next_runs.local", &run.local)?)?;
    Ok(d)
}

/// A schedule's effective policies (`None` from a daemon that does not send them).
fn settings<'py>(py: Python<'py>, s: Option<&Settings>) -> PyResult<Bound<'py, PyAny>> {
    let Some(s) = s else { return Ok(py.None().into_bound(py)) };
    let d = PyDict::new(py);
    d.set_item("overlap", &s.overlap)?;
    d.set_item("catchup", &s.catchup)?;
    d.set_item("jitter_secs", s.jitter_secs)?;
    d.set_item("dst_gap", &s.dst_gap)?;
    d.set_item("dst_overlap", &s.dst_overlap)?;
    Ok(d.into_any())
}

pub fn schedule_state<'py>(py: Python<'py>, s: &ScheduleState) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("site", &s.site)?;
    d.set_item("schedule", &s.schedule)?;
    d.set_item("runs", s.runs)?;
    d.set_item("reason", &s.reason)?;
    d.set_item("time_zone", &s.time_zone)?;
    let runs = s.next_runs.iter().map(|r| next_run(py, r)).collect::<PyResult<Vec<_>>>()?;
    d.set_item("next_runs", PyList::new(py, runs)?)?;
    d.set_item("settings", settings(py, s.settings.as_ref())?)?;
    Ok(d)
}

fn site_status<'py>(py: Python<'py>, s: &SiteStatus) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("site", &s.site)?;
    d.set_item("schedules", s.schedules)?;
    d.set_item("redis_ok", s.redis_ok)?;
    d.set_item("source_ok", s.source_ok)?;
    d.set_item("last_rebuild", optional_datetime(py, "last_rebuild", s.last_rebuild.as_deref())?)?;
    let paused = s.paused.iter().map(|p| pause(py, &p.schedule, &p.pause)).collect::<PyResult<Vec<_>>>()?;
    d.set_item("paused", PyList::new(py, paused)?)?;
    let skipped = s
        .skipped
        .iter()
        .map(|k| {
            let e = PyDict::new(py);
            e.set_item("schedule", &k.schedule)?;
            e.set_item("utc", datetime(py, "skipped.utc", &k.utc)?)?;
            Ok(e)
        })
        .collect::<PyResult<Vec<_>>>()?;
    d.set_item("skipped", PyList::new(py, skipped)?)?;
    Ok(d)
}

/// A pause, flat: `{schedule, until, note, at, uid, pid}`.
fn pause<'py>(py: Python<'py>, schedule: &str, p: &PauseInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("schedule", schedule)?;
    d.set_item("until", optional_datetime(py, "until", p.until.as_deref())?)?;
    d.set_item("note", &p.note)?;
    d.set_item("at", datetime(py, "at", &p.at)?)?;
    d.set_item("uid", p.uid)?;
    d.set_item("pid", p.pid)?;
    Ok(d)
}

fn backfill_run<'py>(py: Python<'py>, r: &BackfillRun) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("due", datetime(py, "due", &r.due)?)?;
    d.set_item("local", datetime(py, "local", &r.local)?)?;
    d.set_item("job_id", &r.job_id)?;
    d.set_item("status", r.status.as_str())?;
    Ok(d)
}

fn audit_entry<'py>(py: Python<'py>, e: &AuditEntry) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", &e.id)?;
    d.set_item("time", datetime(py, "time", &e.time)?)?;
    d.set_item("action", &e.action)?;
    d.set_item("schedule", &e.schedule)?;
    let args = JSON_LOADS.import(py, "json", "loads")?.call1((e.args.as_str(),)).map_err(|err| {
        crate::errors::protocol_error(py, format!("btu-daemon sent audit args that are not JSON ({err}): {}", e.args))
    })?;
    d.set_item("args", args)?;
    d.set_item("note", &e.note)?;
    d.set_item("uid", e.uid)?;
    d.set_item("pid", e.pid)?;
    Ok(d)
}

fn upcoming_run<'py>(py: Python<'py>, r: &UpcomingRun) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("site", &r.site)?;
    d.set_item("schedule", &r.schedule)?;
    d.set_item("task", &r.task)?;
    d.set_item("utc", datetime(py, "utc", &r.utc)?)?;
    d.set_item("local", datetime(py, "local", &r.local)?)?;
    d.set_item("paused", r.paused)?;
    d.set_item("skipped", r.skipped)?;
    d.set_item("settings", settings(py, r.settings.as_ref())?)?;
    Ok(d)
}

fn history_run<'py>(py: Python<'py>, r: &HistoryRun) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("job_id", &r.job_id)?;
    d.set_item("due", datetime(py, "due", &r.due)?)?;
    let enqueued_at = r.enqueued_at.as_deref().map(|t| datetime(py, "enqueued_at", t)).transpose()?;
    d.set_item("enqueued_at", enqueued_at)?;
    d.set_item("outcome", &r.outcome)?;
    d.set_item("lateness_ms", r.lateness_ms)?;
    Ok(d)
}

/// The Python value the public API returns for a (non-error) response.
pub fn response<'py>(py: Python<'py>, response: &Response) -> PyResult<Bound<'py, PyAny>> {
    let value = match response {
        Response::Pong(p) => {
            let d = PyDict::new(py);
            d.set_item("daemon_version", &p.daemon_version)?;
            d.set_item("protocol_version", p.protocol_version)?;
            d.into_any()
        }
        Response::Notified(n) => {
            let items = n.results.iter().map(|s| schedule_state(py, s)).collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Response::Cancelled(c) => {
            let d = PyDict::new(py);
            d.set_item("site", &c.site)?;
            d.set_item("schedule", &c.schedule)?;
            d.set_item("removed", c.removed)?;
            d.into_any()
        }
        Response::Rebuilt(r) => {
            let d = PyDict::new(py);
            d.set_item("sites", PyList::new(py, &r.sites)?)?;
            d.set_item("schedules", r.schedules)?;
            d.set_item("skipped", r.skipped)?;
            d.set_item("duration_ms", r.duration_ms)?;
            d.into_any()
        }
        Response::Status(s) => {
            let d = PyDict::new(py);
            d.set_item("daemon_version", &s.daemon_version)?;
            d.set_item("protocol_version", s.protocol_version)?;
            d.set_item("started_at", datetime(py, "started_at", &s.started_at)?)?;
            d.set_item("uptime_secs", s.uptime_secs)?;
            d.set_item("source", &s.source)?;
            let sites = s.sites.iter().map(|x| site_status(py, x)).collect::<PyResult<Vec<_>>>()?;
            d.set_item("sites", PyList::new(py, sites)?)?;
            d.set_item("defaults", settings(py, s.defaults.as_ref())?)?;
            d.into_any()
        }
        Response::Upcoming(u) => {
            let runs = u.runs.iter().map(|r| upcoming_run(py, r)).collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, runs)?.into_any()
        }
        Response::History(h) => {
            let runs = h.runs.iter().map(|r| history_run(py, r)).collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, runs)?.into_any()
        }
        Response::RanNow(r) => {
            let d = PyDict::new(py);
            d.set_item("site", &r.site)?;
            d.set_item("schedule", &r.schedule)?;
            d.set_item("job_id", &r.job_id)?;
            d.set_item("queue", &r.queue)?;
            d.into_any()
        }
        Response::Paused(p) => {
            let d = pause(py, &p.schedule, &p.pause)?;
            d.set_item("site", &p.site)?;
            d.into_any()
        }
        Response::Resumed(r) => {
            let d = PyDict::new(py);
            d.set_item("site", &r.site)?;
            d.set_item("schedule", &r.schedule)?;
            d.set_item("was_paused", r.was_paused)?;
            d.into_any()
        }
        Response::Skipped(k) => {
            let d = PyDict::new(py);
            d.set_item("site", &k.site)?;
            d.set_item("schedule", &k.schedule)?;
            let added = k.added.iter().map(|r| next_run(py, r)).collect::<PyResult<Vec<_>>>()?;
            d.set_item("added", PyList::new(py, added)?)?;
            let pending = k.pending.iter().map(|r| next_run(py, r)).collect::<PyResult<Vec<_>>>()?;
            d.set_item("pending", PyList::new(py, pending)?)?;
            d.into_any()
        }
        Response::Backfilled(b) => {
            let runs = b.runs.iter().map(|r| backfill_run(py, r)).collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, runs)?.into_any()
        }
        Response::Audited(a) => {
            let entries = a.entries.iter().map(|e| audit_entry(py, e)).collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, entries)?.into_any()
        }
        Response::Error(e) => return Err(crate::errors::daemon_error(py, e, None)),
    };
    Ok(value)
}
