//! `btu_client._core`: the native half of the `btu_client` Python package.
//!
//! Only converts types, around `btu_protocol::Client` (the one socket client, shared with the
//! `btu` CLI): Python arguments → a `Request`; the call runs with the GIL released; the
//! `Response` → plain Python objects ([`convert`]), a `ClientError` → a `btu_client` exception
//! ([`errors`]). The public Python API is re-exported by `btu_client/__init__.py`; the types are
//! in `_core.pyi`.

mod args;
mod convert;
mod errors;

use std::path::PathBuf;

use args::{count, instant, schedule_id, schedule_ids, timeout};
use btu_protocol::{self as proto, Client, Request, Response};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

/// Sends `request` (GIL released during I/O) and returns the answer to it, or raises.
/// `schedule` names the schedule a ScheduleError is about when the daemon does not.
fn exchange(
    py: Python<'_>,
    path: Option<PathBuf>,
    timeout_s: f64,
    request: Request,
    schedule: Option<&str>,
) -> PyResult<Response> {
    let client = Client::new(proto::client::socket_path(path), timeout(timeout_s)?);
    py.detach(|| client.call(request)).map_err(|e| errors::client(py, e, schedule))
}

fn answer<'py>(
    py: Python<'py>,
    path: Option<PathBuf>,
    timeout_s: f64,
    request: Request,
    schedule: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let response = exchange(py, path, timeout_s, request, schedule)?;
    convert::response(py, &response)
}

/// Is btu-daemon alive? Returns its daemon and protocol versions.
#[pyfunction]
#[pyo3(signature = (*, socket_path=None, timeout=2.0))]
fn ping(py: Python<'_>, socket_path: Option<PathBuf>, timeout: f64) -> PyResult<Bound<'_, PyAny>> {
    answer(py, socket_path, timeout, Request::Ping, None)
}

/// Re-read one or many schedules and replan them now; returns one state per schedule.
#[pyfunction]
#[pyo3(signature = (schedule, *, site=None, socket_path=None, timeout=2.0))]
fn notify<'py>(
    py: Python<'py>,
    schedule: &Bound<'py, PyAny>,
    site: Option<String>,
    socket_path: Option<PathBuf>,
    timeout: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let schedules = schedule_ids(schedule)?;
    if schedules.is_empty() {
        // Nothing to replan (e.g. a task without schedules): no need to bother the daemon.
        return Ok(PyList::empty(py).into_any());
    }
    let single = if schedules.len() == 1 { schedules.first().cloned() } else { None };
    answer(py, socket_path, timeout, Request::Notify { schedules, site }, single.as_deref())
}

/// Drop a schedule's planned runs.
#[pyfunction]
#[pyo3(signature = (schedule, *, site=None, socket_path=None, timeout=2.0))]
fn cancel<'py>(
    py: Python<'py>,
    schedule: &Bound<'py, PyAny>,
    site: Option<String>,
    socket_path: Option<PathBuf>,
    timeout: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let schedule = schedule_id(schedule)?;
    answer(py, socket_path, timeout, Request::Cancel { schedule: schedule.clone(), site }, Some(&schedule))
}

/// Re-read every schedule (of one site, or all) from the source.
#[pyfunction]
#[pyo3(signature = (*, site=None, socket_path=None, timeout=2.0))]
fn rebuild(
    py: Python<'_>,
    site: Option<String>,
    socket_path: Option<PathBuf>,
    timeout: f64,
) -> PyResult<Bound<'_, PyAny>> {
    answer(py, socket_path, timeout, Request::Rebuild { site }, None)
}

/// Daemon health: versions, uptime, source, per-site state.
#[pyfunction]
#[pyo3(signature = (*, socket_path=None, timeout=2.0))]
fn status(py: Python<'_>, socket_path: Option<PathBuf>, timeout: f64) -> PyResult<Bound<'_, PyAny>> {
    answer(py, socket_path, timeout, Request::Status, None)
}

/// The next `count` planned runs, of one schedule or of all.
#[pyfunction]
#[pyo3(signature = (schedule=None, count=10, *, site=None, socket_path=None, timeout=2.0))]
fn upcoming<'py>(
    py: Python<'py>,
    schedule: Option<&Bound<'py, PyAny>>,
    count: i64,
    site: Option<String>,
    socket_path: Option<PathBuf>,
    timeout: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let schedule = schedule.filter(|s| !s.is_none()).map(schedule_id).transpose()?;
    let count = self::count("count", count)?;
    let request = Request::Upcoming { schedule: schedule.clone(), site, count };
    answer(py, socket_path, timeout, request, schedule.as_deref())
}

/// The most recent `count` runs enqueued for a schedule, newest first.
#[pyfunction]
#[pyo3(signature = (schedule, count=20, *, site=None, socket_path=None, timeout=2.0))]
fn history<'py>(
    py: Python<'py>,
    schedule: &Bound<'py, PyAny>,
    count: i64,
    site: Option<String>,
    socket_path: Option<PathBuf>,
    timeout: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let schedule = schedule_id(schedule)?;
    let count = self::count("count", count)?;
    answer(py, socket_path, timeout, Request::History { schedule: schedule.clone(), site, count }, Some(&schedule))
}

/// Enqueue the schedule's task now, outside its cron plan.
#[pyfunction]
#[pyo3(signature = (schedule, *, site=None, socket_path=None, timeout=2.0))]
fn run_now<'py>(
    py: Python<'py>,
    schedule: &Bound<'py, PyAny>,
    site: Option<String>,
    socket_path: Option<PathBuf>,
    timeout: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let schedule = schedule_id(schedule)?;
    answer(py, socket_path, timeout, Request::RunNow { schedule: schedule.clone(), site }, Some(&schedule))
}

/// Pause a schedule: none of its runs is enqueued until ``until`` (or until resumed).
#[pyfunction]
#[pyo3(signature = (schedule, until=None, note=None, *, site=None, socket_path=None, timeout=2.0))]
#[allow(clippy::too_many_arguments)]
fn pause<'py>(
    py: Python<'py>,
    schedule: &Bound<'py, PyAny>,
    until: Option<&Bound<'py, PyAny>>,
    note: Option<String>,
    site: Option<String>,
    socket_path: Option<PathBuf>,
    timeout: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let schedule = schedule_id(schedule)?;
    let until = until.filter(|u| !u.is_none()).map(|u| instant("until", u)).transpose()?;
    answer(py, socket_path, timeout, Request::Pause { schedule: schedule.clone(), site, until, note }, Some(&schedule))
}

/// End a schedule's pause (the runs due while paused are not replayed).
#[pyfunction]
#[pyo3(signature = (schedule, *, site=None, socket_path=None, timeout=2.0))]
fn resume<'py>(
    py: Python<'py>,
    schedule: &Bound<'py, PyAny>,
    site: Option<String>,
    socket_path: Option<PathBuf>,
    timeout: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let schedule = schedule_id(schedule)?;
    answer(py, socket_path, timeout, Request::Resume { schedule: schedule.clone(), site }, Some(&schedule))
}

/// Skip the schedule's next ``count`` planned runs (after those already skipped).
#[pyfunction]
#[pyo3(signature = (schedule, count=1, *, site=None, socket_path=None, timeout=2.0))]
fn skip_next<'py>(
    py: Python<'py>,
    schedule: &Bound<'py, PyAny>,
    count: i64,
    site: Option<String>,
    socket_path: Option<PathBuf>,
    timeout: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let schedule = schedule_id(schedule)?;
    let count = self::count("count", count)?;
    answer(py, socket_path, timeout, Request::SkipNext { schedule: schedule.clone(), site, count }, Some(&schedule))
}

/// Enqueue every planned run in ``[start, end)`` that has no job yet; returns every planned
/// run of the range with what happened to it.
#[pyfunction]
#[pyo3(signature = (schedule, start, end, max=1000, dry_run=false, *, site=None, socket_path=None, timeout=30.0))]
#[allow(clippy::too_many_arguments)]
fn backfill<'py>(
    py: Python<'py>,
    schedule: &Bound<'py, PyAny>,
    start: &Bound<'py, PyAny>,
    end: &Bound<'py, PyAny>,
    max: i64,
    dry_run: bool,
    site: Option<String>,
    socket_path: Option<PathBuf>,
    timeout: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let schedule = schedule_id(schedule)?;
    let (start, end) = (instant("start", start)?, instant("end", end)?);
    let max = self::count("max", max)?;
    let request = Request::Backfill { schedule: schedule.clone(), site, start, end, max, dry_run };
    answer(py, socket_path, timeout, request, Some(&schedule))
}

/// The newest ``count`` operator actions of the site's audit trail (of one schedule, or all).
#[pyfunction]
#[pyo3(signature = (schedule=None, count=50, *, site=None, socket_path=None, timeout=2.0))]
fn audit<'py>(
    py: Python<'py>,
    schedule: Option<&Bound<'py, PyAny>>,
    count: i64,
    site: Option<String>,
    socket_path: Option<PathBuf>,
    timeout: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let schedule = schedule.filter(|s| !s.is_none()).map(schedule_id).transpose()?;
    let count = self::count("count", count)?;
    answer(py, socket_path, timeout, Request::Audit { schedule: schedule.clone(), site, count }, schedule.as_deref())
}

// ---- private helpers for the tests (golden vectors, fake daemon) -------------------------

fn wire_error(py: Python<'_>, e: proto::ProtocolError) -> PyErr {
    errors::protocol_error(py, e.to_string())
}

/// Builds the request the public functions would send and returns its frame.
#[pyfunction]
#[pyo3(signature = (kind, id, *, schedules=None, schedule=None, site=None, count=None, until=None, note=None,
    start=None, end=None, max=None, dry_run=false))]
#[allow(clippy::too_many_arguments)]
fn _encode_request<'py>(
    py: Python<'py>,
    kind: &str,
    id: u64,
    schedules: Option<Vec<String>>,
    schedule: Option<String>,
    site: Option<String>,
    count: Option<u32>,
    until: Option<String>,
    note: Option<String>,
    start: Option<String>,
    end: Option<String>,
    max: Option<u32>,
    dry_run: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let need = |what: &str| PyValueError::new_err(format!("'{kind}' needs {what}="));
    let request = match kind {
        "ping" => Request::Ping,
        "notify" => Request::Notify { schedules: schedules.ok_or_else(|| need("schedules"))?, site },
        "cancel" => Request::Cancel { schedule: schedule.ok_or_else(|| need("schedule"))?, site },
        "rebuild" => Request::Rebuild { site },
        "status" => Request::Status,
        "upcoming" => Request::Upcoming { schedule, site, count: count.ok_or_else(|| need("count"))? },
        "history" => Request::History {
            schedule: schedule.ok_or_else(|| need("schedule"))?,
            site,
            count: count.ok_or_else(|| need("count"))?,
        },
        "run_now" => Request::RunNow { schedule: schedule.ok_or_else(|| need("schedule"))?, site },
        "pause" => Request::Pause { schedule: schedule.ok_or_else(|| need("schedule"))?, site, until, note },
        "resume" => Request::Resume { schedule: schedule.ok_or_else(|| need("schedule"))?, site },
        "skip_next" => Request::SkipNext {
            schedule: schedule.ok_or_else(|| need("schedule"))?,
            site,
            count: count.ok_or_else(|| need("count"))?,
        },
        "backfill" => Request::Backfill {
            schedule: schedule.ok_or_else(|| need("schedule"))?,
            site,
            start: start.ok_or_else(|| need("start"))?,
            end: end.ok_or_else(|| need("end"))?,
            max: max.ok_or_else(|| need("max"))?,
            dry_run,
        },
        "audit" => Request::Audit { schedule, site, count: count.ok_or_else(|| need("count"))? },
        other => return Err(PyValueError::new_err(format!("unknown request kind '{other}'"))),
    };
    let frame = proto::encode_request(&proto::RequestEnvelope::new(id, request)).map_err(|e| wire_error(py, e))?;
    Ok(PyBytes::new(py, &frame))
}

fn body_of<'a>(py: Python<'_>, frame: &'a [u8]) -> PyResult<&'a [u8]> {
    let header = frame
        .first_chunk::<{ proto::FRAME_HEADER_LEN }>()
        .ok_or_else(|| errors::protocol_error(py, "frame shorter than its 4-byte header".to_owned()))?;
    let len = proto::decode_frame_len(*header, proto::MAX_FRAME_LEN).map_err(|e| wire_error(py, e))?;
    frame
        .get(proto::FRAME_HEADER_LEN..proto::FRAME_HEADER_LEN + len)
        .filter(|_| frame.len() == proto::FRAME_HEADER_LEN + len)
        .ok_or_else(|| {
            errors::protocol_error(py, format!("frame length prefix says {len}, frame has {} bytes", frame.len() - 4))
        })
}

/// Decodes a response frame to `(id, value)`, `value` being what the public API returns for
/// it; a daemon error answer raises the exception the public API would raise.
#[pyfunction]
fn _decode_response<'py>(py: Python<'py>, frame: &[u8]) -> PyResult<(u64, Bound<'py, PyAny>)> {
    let envelope = proto::decode_response(body_of(py, frame)?).map_err(|e| wire_error(py, e))?;
    Ok((envelope.id, convert::response(py, &envelope.response)?))
}

/// The request id inside a request frame (None if unreadable) — lets a fake daemon echo it.
#[pyfunction]
fn _peek_request_id(py: Python<'_>, frame: &[u8]) -> PyResult<Option<u64>> {
    Ok(proto::peek_request_id(body_of(py, frame)?))
}

/// Decodes a request frame and returns its kind (`"notify"` …); raises ProtocolError if invalid.
#[pyfunction]
fn _request_kind(py: Python<'_>, frame: &[u8]) -> PyResult<&'static str> {
    let envelope = proto::decode_request(body_of(py, frame)?).map_err(|e| wire_error(py, e))?;
    Ok(envelope.request.kind())
}

/// A response frame re-encoded with another request id (fake daemons answer golden frames).
#[pyfunction]
fn _with_response_id<'py>(py: Python<'py>, frame: &[u8], id: u64) -> PyResult<Bound<'py, PyBytes>> {
    let mut envelope = proto::decode_response(body_of(py, frame)?).map_err(|e| wire_error(py, e))?;
    envelope.id = id;
    let framed = proto::encode_response(&envelope).map_err(|e| wire_error(py, e))?;
    Ok(PyBytes::new(py, &framed))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Fail the import cleanly (ImportError) if the exception classes are missing, rather than
    // at the first error to raise.
    m.py().import("btu_client._errors")?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("PROTOCOL_VERSION", proto::PROTOCOL_VERSION)?;
    m.add("DEFAULT_SOCKET_PATH", proto::DEFAULT_SOCKET_PATH)?;
    m.add("SOCKET_PATH_ENV", proto::SOCKET_PATH_ENV)?;
    m.add("MAX_FRAME_LEN", proto::MAX_FRAME_LEN)?;
    m.add_function(wrap_pyfunction!(ping, m)?)?;
    m.add_function(wrap_pyfunction!(notify, m)?)?;
    m.add_function(wrap_pyfunction!(cancel, m)?)?;
    m.add_function(wrap_pyfunction!(rebuild, m)?)?;
    m.add_function(wrap_pyfunction!(status, m)?)?;
    m.add_function(wrap_pyfunction!(upcoming, m)?)?;
    m.add_function(wrap_pyfunction!(history, m)?)?;
    m.add_function(wrap_pyfunction!(run_now, m)?)?;
    m.add_function(wrap_pyfunction!(pause, m)?)?;
    m.add_function(wrap_pyfunction!(resume, m)?)?;
    m.add_function(wrap_pyfunction!(skip_next, m)?)?;
    m.add_function(wrap_pyfunction!(backfill, m)?)?;
    m.add_function(wrap_pyfunction!(audit, m)?)?;
    m.add_function(wrap_pyfunction!(_encode_request, m)?)?;
    m.add_function(wrap_pyfunction!(_decode_response, m)?)?;
    m.add_function(wrap_pyfunction!(_peek_request_id, m)?)?;
    m.add_function(wrap_pyfunction!(_request_kind, m)?)?;
    m.add_function(wrap_pyfunction!(_with_response_id, m)?)?;
    Ok(())
}
