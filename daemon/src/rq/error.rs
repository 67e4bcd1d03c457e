//! [`RqError`]: why a job was not written.

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
    /// The URL is shown without its password.
    #[error("cannot connect to redis at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: redis::RedisError,
    },
}
