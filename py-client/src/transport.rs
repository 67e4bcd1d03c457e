//! Blocking request/response over the daemon's Unix socket, bounded by one deadline.
//!
//! Runs without the GIL (the caller detaches), so it must not touch Python objects.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use btu_protocol::{self as proto, ProtocolError, Request, RequestEnvelope, Response};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, setsockopt, socket, sockopt};
use nix::sys::time::TimeVal;

/// Why a call failed before the daemon gave a typed answer.
#[derive(Debug)]
pub enum TransportError {
    /// The daemon cannot be reached or did not answer in time; the text says what to check.
    Unavailable(String),
    /// The daemon answered something this client cannot accept.
    Protocol(String),
}

/// A `Read + Write` stream whose every read/write gets only the time left until `deadline`,
/// so a daemon dribbling one byte per second cannot stretch a call past the caller's timeout.
struct DeadlineStream {
    stream: UnixStream,
    deadline: Instant,
}

impl DeadlineStream {
    fn remaining(&self) -> std::io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(ErrorKind::TimedOut, "deadline reached"));
        }
        Ok(left)
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.remaining()?;
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let left = self.remaining()?;
        self.stream.set_write_timeout(Some(left))?;
        self.stream.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

fn is_timeout(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn timed_out(path: &Path, timeout: Duration) -> TransportError {
    TransportError::Unavailable(format!(
        "btu-daemon at '{}' did not answer within {:.3} s: it may be hung or overloaded; check its log \
         (journalctl -u btu-daemon) or pass a longer timeout=",
        path.display(),
        timeout.as_secs_f64()
    ))
}

/// Connects with `SO_SNDTIMEO` set first: on Linux a Unix-socket connect to a listener whose
/// backlog is full waits up to that timeout (then EAGAIN) instead of blocking forever.
fn connect_with_timeout(path: &Path, timeout: Duration) -> Result<UnixStream, TransportError> {
    let unavailable = |what: &str, e: nix::Error| {
        TransportError::Unavailable(format!("cannot reach btu-daemon at '{}': {what}: {e}", path.display()))
    };
    let addr = UnixAddr::new(path).map_err(|e| unavailable("invalid socket path", e))?;
    let fd: OwnedFd = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|e| unavailable("cannot create a socket", e))?;
    let tv = TimeVal::new(
        i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
        // subsec_micros() < 1_000_000 always fits.
        i64::from(timeout.subsec_micros()),
    );
    setsockopt(&fd, sockopt::SendTimeout, &tv).map_err(|e| unavailable("cannot set the connect timeout", e))?;
    use std::os::fd::AsRawFd;
    match connect(fd.as_raw_fd(), &addr) {
        Ok(()) => Ok(UnixStream::from(fd)),
        Err(e) => Err(connect_error(path, timeout, std::io::Error::from(e))),
    }
}

fn connect_error(path: &Path, timeout: Duration, e: std::io::Error) -> TransportError {
    let p = path.display();
    match e.kind() {
        ErrorKind::NotFound => TransportError::Unavailable(format!(
            "no btu-daemon socket at '{p}': is btu-daemon running (systemctl status btu-daemon)? \
             Check socket_path in its configuration against BTU_SOCKET_PATH or the socket_path= argument"
        )),
        ErrorKind::ConnectionRefused => TransportError::Unavailable(format!(
            "nothing is listening on '{p}' (connection refused): the socket file is stale and btu-daemon is \
             not running; start it (systemctl start btu-daemon) and check its log"
        )),
        ErrorKind::PermissionDenied => TransportError::Unavailable(format!(
            "permission denied on '{p}': the user running this Python process must be in the socket's group \
             (socket_file_group_owner in the btu-daemon configuration) and allowed by its peer allowlist"
        )),
        kind if is_timeout(kind) => timed_out(path, timeout),
        _ => TransportError::Unavailable(format!("cannot connect to btu-daemon at '{p}': {e}")),
    }
}

fn call_error(path: &Path, timeout: Duration, e: ProtocolError) -> TransportError {
    let p = path.display();
    match e {
        ProtocolError::Io(io) if is_timeout(io.kind()) => timed_out(path, timeout),
        ProtocolError::Io(io) => TransportError::Unavailable(format!("connection to btu-daemon at '{p}' failed: {io}")),
        ProtocolError::Closed => TransportError::Unavailable(format!(
            "btu-daemon at '{p}' closed the connection without answering: check its log; a daemon that only \
             speaks the original JSON protocol does this too"
        )),
        ProtocolError::UnsupportedVersion { .. } => TransportError::Protocol(format!(
            "{e}: install a btu_client and a btu-daemon of matching protocol versions"
        )),
        other => TransportError::Protocol(format!("btu-daemon at '{p}' sent an unusable answer: {other}")),
    }
}

/// Sends one request and waits for its answer, all within `timeout`.
pub fn call(path: &Path, timeout: Duration, id: u64, request: Request) -> Result<Response, TransportError> {
    let deadline = Instant::now() + timeout;
    let stream = connect_with_timeout(path, timeout)?;
    let mut stream = DeadlineStream { stream, deadline };
    let envelope = RequestEnvelope::new(id, request);
    proto::call(&mut stream, &envelope, proto::MAX_FRAME_LEN).map_err(|e| call_error(path, timeout, e))
}
