//! The Python exception classes live in `btu_client/_errors.py` (real classes with docstrings
//! and attributes); this module raises them. Imports are cached and fallible — no panics.

use btu_protocol::{ErrorCode, ErrorReply};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::transport::TransportError;

const MODULE: &str = "btu_client._errors";

static DAEMON_UNAVAILABLE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static PROTOCOL_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static SCHEDULE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DAEMON_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn raise<A>(py: Python<'_>, cell: &PyOnceLock<Py<PyType>>, name: &str, args: A) -> PyErr
where
    A: pyo3::PyErrArguments + Send + Sync + 'static,
{
    match cell.import(py, MODULE, name) {
        Ok(ty) => PyErr::from_type(ty.clone(), args),
        // The exception module ships in the same wheel; if it cannot be imported, say so.
        Err(import_error) => import_error,
    }
}

pub fn daemon_unavailable(py: Python<'_>, message: String) -> PyErr {
    raise(py, &DAEMON_UNAVAILABLE, "DaemonUnavailable", (message,))
}

pub fn protocol_error(py: Python<'_>, message: String) -> PyErr {
    raise(py, &PROTOCOL_ERROR, "ProtocolError", (message,))
}

pub fn transport(py: Python<'_>, e: TransportError) -> PyErr {
    match e {
        TransportError::Unavailable(m) => daemon_unavailable(py, m),
        TransportError::Protocol(m) => protocol_error(py, m),
    }
}

/// The exception for a daemon's error answer. `schedule` is the request's schedule, used when
/// the answer does not name one.
pub fn daemon_error(py: Python<'_>, e: &ErrorReply, schedule: Option<&str>) -> PyErr {
    let code = Some(e.code.as_str().to_owned());
    match e.code {
        ErrorCode::UnknownSchedule | ErrorCode::InvalidSchedule => {
            let schedule = e.schedule.clone().or_else(|| schedule.map(str::to_owned));
            raise(py, &SCHEDULE_ERROR, "ScheduleError", (e.message.clone(), code, schedule))
        }
        ErrorCode::UnsupportedVersion | ErrorCode::FrameTooLarge | ErrorCode::Malformed => raise(
            py,
            &PROTOCOL_ERROR,
            "ProtocolError",
            (format!("btu-daemon refused the request: {}", e.message), code),
        ),
        ErrorCode::Internal => raise(
            py,
            &DAEMON_ERROR,
            "DaemonError",
            (format!("btu-daemon failed to serve the request: {}", e.message), code),
        ),
    }
}
