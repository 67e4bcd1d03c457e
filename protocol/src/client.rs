//! The one blocking socket client of btu-daemon (cargo feature `client`), used by the `btu` CLI
//! and the `btu_client` Python wheel alike.
//!
//! [`Client::call`] is a whole exchange on a new connection, bounded by ONE timeout: connect
//! (a daemon whose listen backlog is full makes `connect()` wait), send, and the answer. It
//! checks everything a caller must not have to: the answer's version, that it echoes the
//! request's id, and that its kind answers the request ([`Response::answers`]); a daemon's error
//! answer comes back as [`ClientError::Daemon`]. So `Ok` is always the answer asked for.
//!
//! Errors are facts ([`ClientError`]), not advice: each front end words them for its users
//! (the CLI names its `--timeout` flag, the wheel raises its exception classes).

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, setsockopt, socket, sockopt};
use nix::sys::time::TimeVal;

use crate::{ErrorReply, MAX_FRAME_LEN, ProtocolError, Request, RequestEnvelope, Response};

/// The socket a client uses: `explicit` (a `--socket` flag, a `socket_path=` argument), else
/// `$BTU_SOCKET_PATH` when set and not empty ([`crate::SOCKET_PATH_ENV`]), else
/// [`crate::DEFAULT_SOCKET_PATH`].
pub fn socket_path(explicit: Option<PathBuf>) -> PathBuf {
    explicit
        .or_else(|| std::env::var_os(crate::SOCKET_PATH_ENV).filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(crate::DEFAULT_SOCKET_PATH))
}

/// Why a call did not yield the answer asked for. `path` is the socket the call used.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `connect()` failed: no socket file (`NotFound`), a stale file nobody listens on
    /// (`ConnectionRefused`), no permission (`PermissionDenied`), an unusable path
    /// (`InvalidInput`) … — `source.kind()` says which.
    #[error("cannot connect to btu-daemon at {}: {source}", .path.display())]
    Connect { path: PathBuf, source: std::io::Error },
    /// The call (connecting included) took longer than the client's timeout.
    #[error("btu-daemon at {} did not answer within {timeout:?}", .path.display())]
    Timeout { path: PathBuf, timeout: Duration },
    /// The daemon closed the connection before sending a byte of its answer.
    #[error("btu-daemon at {} closed the connection without answering", .path.display())]
    Closed { path: PathBuf },
    /// Sending the request or reading the answer failed on the socket.
    #[error("connection to btu-daemon at {} failed: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// The answer is unusable: another protocol version, malformed, oversize, cut short, the
    /// answer to another request id or of another kind ([`ProtocolError::UnexpectedAnswer`]).
    #[error("btu-daemon at {} sent an unusable answer: {source}", .path.display())]
    Protocol { path: PathBuf, source: ProtocolError },
    /// The daemon answered with a typed error.
    #[error("btu-daemon refused: {} [{}]", .reply.message, .reply.code)]
    Daemon { reply: ErrorReply },
}

/// A client of the daemon at one socket: one new connection per [`Client::call`].
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    timeout: Duration,
}

/// Request ids only pair an answer with its request on one connection; a process-wide
/// counter keeps them distinct in the daemon's logs too.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Client {
    /// A client of the daemon at `socket`; every call (connect, send, answer) must finish
    /// within `timeout`.
    pub fn new(socket: impl Into<PathBuf>, timeout: Duration) -> Self {
        Client { socket: socket.into(), timeout }
    }

    /// The socket this client calls.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The time one call may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `request` on a new connection and returns the daemon's answer to it, all within
    /// the timeout. Blocks the calling thread (a Python caller releases the GIL around it).
    pub fn call(&self, request: Request) -> Result<Response, ClientError> {
        let deadline = Instant::now() + self.timeout;
        let stream = self.connect()?;
        let mut stream = DeadlineStream { stream, deadline };
        let envelope = RequestEnvelope::new(NEXT_ID.fetch_add(1, Ordering::Relaxed), request);
        match crate::call(&mut stream, &envelope, MAX_FRAME_LEN) {
            Ok(Response::Error(reply)) => Err(ClientError::Daemon { reply }),
            Ok(response) => Ok(response),
            Err(ProtocolError::Io(e)) if is_timeout(e.kind()) => Err(self.timed_out()),
            Err(ProtocolError::Io(source)) => Err(ClientError::Io { path: self.socket.clone(), source }),
            Err(ProtocolError::Closed) => Err(ClientError::Closed { path: self.socket.clone() }),
            Err(source) => Err(ClientError::Protocol { path: self.socket.clone(), source }),
        }
    }

    fn timed_out(&self) -> ClientError {
        ClientError::Timeout { path: self.socket.clone(), timeout: self.timeout }
    }

    /// Connects with `SO_SNDTIMEO` set first: on Linux a Unix-socket `connect()` to a listener
    /// whose backlog is full waits up to that timeout (then `EAGAIN`) instead of for ever.
    /// (std's `UnixStream::connect` has no timeout, hence nix.)
    fn connect(&self) -> Result<UnixStream, ClientError> {
        let failed = |e: nix::Error| ClientError::Connect { path: self.socket.clone(), source: e.into() };
        let addr = UnixAddr::new(self.socket.as_path()).map_err(failed)?;
        let fd: OwnedFd =
            socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).map_err(failed)?;
        setsockopt(&fd, sockopt::SendTimeout, &timeval(self.timeout)).map_err(failed)?;
        match connect(fd.as_raw_fd(), &addr) {
            Ok(()) => Ok(UnixStream::from(fd)),
            Err(e) if is_timeout(std::io::Error::from(e).kind()) => Err(self.timed_out()),
            Err(e) => Err(failed(e)),
        }
    }
}

/// `timeout` as a socket-option time value, at least 1 µs: a zero `timeval` means "no
/// timeout at all" to the kernel.
fn timeval(timeout: Duration) -> TimeVal {
    let secs = i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX);
    // subsec_micros() < 1_000_000 always fits.
    let micros = i64::from(timeout.subsec_micros());
    if secs == 0 && micros == 0 { TimeVal::new(0, 1) } else { TimeVal::new(secs, micros) }
}

fn is_timeout(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::WouldBlock | ErrorKind::TimedOut)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sub_microsecond_timeout_is_still_a_timeout() {
        let tv = timeval(Duration::from_nanos(1));
        assert_eq!((tv.tv_sec(), tv.tv_usec()), (0, 1));
        let tv = timeval(Duration::from_millis(1500));
        assert_eq!((tv.tv_sec(), tv.tv_usec()), (1, 500_000));
    }

    #[test]
    fn explicit_socket_wins() {
        assert_eq!(socket_path(Some(PathBuf::from("/run/x.sock"))), PathBuf::from("/run/x.sock"));
    }

    #[test]
    fn a_missing_socket_is_a_connect_error_naming_the_path() {
        let path = std::env::temp_dir().join(format!("btu-client-absent-{}.sock", std::process::id()));
        match Client::new(&path, Duration::from_millis(200)).call(Request::Ping) {
            Err(ClientError::Connect { path: p, source }) => {
                assert_eq!(p, path);
                assert_eq!(source.kind(), ErrorKind::NotFound);
            }
            other => panic!("expected a connect error, got {other:?}"),
        }
    }
}
