//! RQ jobs written straight into Redis, readable by stock `rq worker` 1.15 – 3.0.
//!
//! What is written follows the wire facts of `docs/rq.md` (W1–W8):
//! - [`job`]: the job id scheme, validation of every field, the hash fields;
//! - [`data`]: `data` = zlib(pickle((func, None, args, kwargs))), the pickle from
//!   [`crate::pyvalue`];
//! - [`writer`]: the atomic claim + HSET + RPUSH + SADD script, run for a
//!   whole batch of prepared runs per call, the pipelined history follow-up,
//!   and connecting to Redis from a URL.

pub(crate) mod data;
mod error;
pub(crate) mod job;
pub(crate) mod writer;

pub use error::RqError;
pub use job::{DEFAULT_FAILURE_TTL_SECS, DEFAULT_RESULT_TTL_SECS, RqJob, describe, job_id, rq_timestamp};
pub use writer::{Claim, EnqueueOutcome, HistoryAppend, PreparedRun, RqWriter, connect, connect_with};

pub use crate::secret::redacted_url;
