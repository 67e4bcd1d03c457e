//! RQ jobs written straight into Redis, readable by stock `rq worker` 1.15 – 3.0.
//!
//! What is written follows the wire facts of `docs/rq.md` (W1–W9):
//! - [`id`]: the two job id forms (portable, and Frappe's `<site>||…` for rq < 2.8);
//! - [`job`]: validation of every field, the hash fields;
//! - [`data`]: `data` = zlib(pickle((func, None, args, kwargs))), the pickle from
//!   [`crate::pyvalue`];
//! - [`writer`]: the enqueue (or the release of runs staged ahead) of a whole
//!   batch of prepared runs per script call and the pipelined history follow-up;
//! - [`staging`]: staging runs ahead of their instant and removing staged runs;
//! - [`release`]: the release of staged runs at their instant, built ahead;
//! - [`scripts`]: the Lua of those steps (claim, [`gates`] — pause, skip,
//!   overlap —, HSET, RPUSH, SADD, atomically per run; stage; unstage);
//! - [`stamp`]: `enqueued_at` stamped in the scripts from Redis' clock;
//! - [`connect`]: connecting to the queue Redis from a URL or through Redis Sentinel;
//! - [`workers`]: the registered workers (release, queues) and the id form they allow.

pub(crate) mod connect;
pub(crate) mod data;
mod error;
pub(crate) mod gates;
pub(crate) mod id;
pub(crate) mod job;
pub(crate) mod release;
pub(crate) mod scripts;
pub(crate) mod staging;
pub(crate) mod stamp;
pub(crate) mod workers;
pub(crate) mod writer;

pub use connect::{RedisConnection, SentinelProbe, connect, connect_redis, connect_with, is_master};
pub use data::{DecodedCall, decode_job_data};
pub use error::RqError;
pub use gates::{GateIndex, Gates, OverlapGate};
pub use id::{IdForm, is_daemon_job_id, job_id, job_id_in};
pub use job::{DEFAULT_FAILURE_TTL_SECS, DEFAULT_RESULT_TTL_SECS, RqJob, describe, rq_timestamp};
pub use release::{ReleaseCall, Released};
pub use staging::{STAGE_SLACK_SECS, STAGED_HASH_MIN_TTL_SECS, StageOutcome, Unstage};
pub use stamp::STAMP_LUA;
pub use workers::{FormChoice, WorkerInfo, choose_form, read_workers};
pub use writer::{Claim, EnqueueOutcome, HistoryAppend, PreparedRun, RqWriter};

pub use crate::secret::redacted_url;
