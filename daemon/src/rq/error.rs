//! [`RqError`]: why a job was not written.

use std::path::PathBuf;

use crate::pyvalue::PickleError;

/// Why a job was not written. `Clone` so that one failed batch call can
/// answer each of its runs.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RqError {
    /// A field would make rq workers fail or die; nothing was written.
    #[error("job field {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A key this run would be written to holds another Redis type (the
    /// script's WRONGTYPE text, naming the key); nothing of the run was written.
    #[error("redis: {0}")]
    WrongType(String),
    #[error("job payload: {0}")]
    Pickle(#[from] PickleError),
    /// zlib refused the payload (writing into memory; not expected to happen).
    #[error("job payload: zlib compression failed: {0}")]
    Compress(String),
    /// The URL is shown without its password; a refused TLS certificate gets a hint.
    #[error("cannot connect to redis at {url}: {source}{}", tls_hint(source))]
    Connect {
        url: String,
        #[source]
        source: redis::RedisError,
    },
    /// `[redis] tls_ca_file` could not be read.
    #[error("redis tls_ca_file {}: {reason}", path.display())]
    TlsCaFile { path: PathBuf, reason: String },
}

/// A rustls verification failure reads `invalid peer certificate: UnknownIssuer`; say what
/// that means for the daemon's configuration.
fn tls_hint(e: &redis::RedisError) -> &'static str {
    let text = e.to_string();
    if text.contains("certificate") || text.contains("Certificate") {
        " (the Redis server's TLS certificate was not accepted: it must be signed by a CA in \
         [redis] tls_ca_file, or by a public CA when that key is not set, and name the URL's host)"
    } else {
        ""
    }
}
