//! `btu_protocol::ClientError` → the `btu_client` exception a Python caller catches, worded
//! with what to check. The classes live in `btu_client/_errors.py` (real classes with
//! docstrings and attributes); this module raises them. Imports are cached and fallible — no
//! panics.

use std::io::ErrorKind;
use std::path::Path;
use std::time::Duration;

use btu_protocol::{ClientError, ErrorCode, ErrorReply, ProtocolError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

const MODULE: &str = "btu_client._errors";

static DAEMON_UNAVAILABLE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static PROTOCOL_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static SCHEDULE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DAEMON_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static ARGUMENT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

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

fn timed_out(path: &Path, timeout: Duration) -> String {
    format!(
        "btu-daemon at '{}' did not answer within {:.3} s: it may be hung or overloaded; check its log \
         (journalctl -u btu-daemon) or pass a longer timeout=",
        path.display(),
        timeout.as_secs_f64()
    )
}

fn connect_failed(path: &Path, e: &std::io::Error) -> String {
    let p = path.display();
    match e.kind() {
        ErrorKind::NotFound => format!(
            "no btu-daemon socket at '{p}': is btu-daemon running (systemctl status btu-daemon)? \
             Check socket_path in its configuration against BTU_SOCKET_PATH or the socket_path= argument"
        ),
        ErrorKind::ConnectionRefused => format!(
            "nothing is listening on '{p}' (connection refused): the socket file is stale and btu-daemon is \
             not running; start it (systemctl start btu-daemon) and check its log"
        ),
        ErrorKind::PermissionDenied => format!(
            "permission denied on '{p}': the user running this Python process must be in the socket's group \
             (socket_file_group_owner in the btu-daemon configuration) and allowed by its peer allowlist"
        ),
        // Too long for a socket address (ENAMETOOLONG), or a NUL byte in it.
        ErrorKind::InvalidFilename | ErrorKind::InvalidInput => {
            format!("cannot reach btu-daemon at '{p}': invalid socket path: {e}")
        }
        _ => format!("cannot connect to btu-daemon at '{p}': {e}"),
    }
}

/// The exception for a failed call. `schedule` is the request's schedule, named by a
/// `ScheduleError` when the daemon's answer does not name one.
pub fn client(py: Python<'_>, e: ClientError, schedule: Option<&str>) -> PyErr {
    match e {
        ClientError::Connect { path, source } => daemon_unavailable(py, connect_failed(&path, &source)),
        ClientError::Timeout { path, timeout } => daemon_unavailable(py, timed_out(&path, timeout)),
        ClientError::Closed { path } => daemon_unavailable(
            py,
            format!(
                "btu-daemon at '{}' closed the connection without answering: check its log; a daemon that only \
                 speaks the original JSON protocol does this too",
                path.display()
            ),
        ),
        ClientError::Io { path, source } => {
            daemon_unavailable(py, format!("connection to btu-daemon at '{}' failed: {source}", path.display()))
        }
        ClientError::Protocol { source: ProtocolError::UnexpectedAnswer { sent, got }, .. } => {
            protocol_error(py, format!("btu-daemon answered '{got}' to a '{sent}' request"))
        }
        ClientError::Protocol { source: source @ ProtocolError::UnsupportedVersion { .. }, .. } => {
            protocol_error(py, format!("{source}: install a btu_client and a btu-daemon of matching protocol versions"))
        }
        ClientError::Protocol { path, source } => {
            protocol_error(py, format!("btu-daemon at '{}' sent an unusable answer: {source}", path.display()))
        }
        ClientError::Daemon { reply } => daemon_error(py, &reply, schedule),
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
        ErrorCode::InvalidArgument => {
            let schedule = e.schedule.clone().or_else(|| schedule.map(str::to_owned));
            raise(py, &ARGUMENT_ERROR, "ArgumentError", (e.message.clone(), code, schedule))
        }
        ErrorCode::Internal => raise(
            py,
            &DAEMON_ERROR,
            "DaemonError",
            (format!("btu-daemon failed to serve the request: {}", e.message), code),
        ),
    }
}
