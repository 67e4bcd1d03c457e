//! Python arguments → request fields: timeouts, counts, schedule ids (a str or a document with
//! `.name`) and instants (an aware `datetime` or an RFC 3339 string), each checked with an
//! error that names the argument.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

pub fn timeout(seconds: f64) -> PyResult<Duration> {
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(PyValueError::new_err(format!("timeout must be a positive number of seconds, got {seconds}")));
    }
    Duration::try_from_secs_f64(seconds)
        .map_err(|e| PyValueError::new_err(format!("timeout of {seconds} s is not usable: {e}")))
}

pub fn count(name: &str, value: i64) -> PyResult<u32> {
    u32::try_from(value)
        .ok()
        .filter(|c| *c >= 1)
        .ok_or_else(|| PyValueError::new_err(format!("{name} must be between 1 and {}, got {value}", u32::MAX)))
}

/// A schedule id from a `str` or from anything with a `.name` (a Frappe document).
pub fn schedule_id(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    let id: String = if let Ok(s) = obj.extract::<String>() {
        s
    } else if let Some(name) = obj.getattr_opt("name")? {
        name.extract::<String>().map_err(|_| {
            PyTypeError::new_err(format!(
                "the schedule document's .name must be a str (is the document saved?), got {}",
                name.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
            ))
        })?
    } else {
        return Err(PyTypeError::new_err(format!(
            "a schedule must be a schedule id (str) or a document with .name, got {}",
            obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
        )));
    };
    if id.trim().is_empty() {
        return Err(PyValueError::new_err("a schedule id must not be empty"));
    }
    Ok(id)
}

/// One schedule, or a list/tuple of them, as ids.
pub fn schedule_ids(obj: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(list) = obj.cast::<PyList>() {
        list.iter().map(|item| schedule_id(&item)).collect()
    } else if let Ok(tuple) = obj.cast::<PyTuple>() {
        tuple.iter().map(|item| schedule_id(&item)).collect()
    } else {
        Ok(vec![schedule_id(obj)?])
    }
}

/// An instant argument as the RFC 3339 UTC text the daemon reads: an aware `datetime`
/// (a naive one is refused: its zone would be a guess) or an RFC 3339 string with an offset.
pub fn instant(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<String> {
    let text: String = if let Ok(s) = obj.extract::<String>() {
        s
    } else if obj.hasattr("tzinfo")? && obj.hasattr("isoformat")? {
        if obj.call_method0("utcoffset")?.is_none() {
            return Err(PyValueError::new_err(format!(
                "{name} is a naive datetime: give it a tzinfo (e.g. datetime.now(timezone.utc)) so the instant is exact"
            )));
        }
        obj.call_method0("isoformat")?.extract()?
    } else {
        return Err(PyTypeError::new_err(format!(
            "{name} must be an aware datetime or an RFC 3339 string, got {}",
            obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
        )));
    };
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc).to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .map_err(|e| {
            PyValueError::new_err(format!("{name} {text:?} is not an RFC 3339 instant like 2025-12-27T08:00:00Z: {e}"))
        })
}
