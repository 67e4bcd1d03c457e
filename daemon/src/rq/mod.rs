//! RQ jobs written straight into Redis, readable by stock `rq worker` 1.15 – 3.0.
//!
//! What is written follows the wire facts of `docs/rq.md` (W1–W8):
//! - [`job`]: the job id scheme, validation of every field, the hash fields;
//! - [`data`]: `data` = zlib(pickle((func, None, args, kwargs))), the pickle from
//!   [`crate::pyvalue`];
//! - [`writer`]: the atomic claim + HSET + RPUSH + SADD script, run for a
//!   whole batch of prepared runs per call, the pipelined history follow-up,
//!   and connecting to Redis from a URL.

pub mod data;
pub mod job;
pub mod writer;

use crate::pyvalue::PickleError;

pub use job::{DEFAULT_FAILURE_TTL_SECS, DEFAULT_RESULT_TTL_SECS, RqJob, describe, job_id, rq_timestamp};
pub use writer::{Claim, EnqueueOutcome, HistoryAppend, PreparedRun, RqWriter, connect};

pub use crate::secret::redacted_url;

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
