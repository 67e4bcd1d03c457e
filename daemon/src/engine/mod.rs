//! The scheduling engine: keeps every enabled schedule's next run, fires runs as RQ jobs at
//! their due instants, rebuilds from the sources, applies the missed-run rule and rides out
//! Redis and MariaDB outages.
//!
//! One task owns all the state ([`Engine`]); the rest of the daemon talks to it through
//! [`EngineHandle`]s. The engine is a thin loop over components, each in its own file, each
//! owning one concept:
//!
//! | file | owns |
//! |------|------|
//! | `planner` | pure decisions: what to fire, what is missed, the claim TTL |
//! | `nextrun` | next runs of many schedules from one instant, each shared schedule searched once (pure) |
//! | `backoff` | reconnect delays |
//! | `choose` | which planned instants skip-next and backfill name (pure) |
//! | `store` | the daemon's Redis keys (`btu:<site>:…`) and their reads and writes |
//! | `operator` | the operators' Redis state: pause, skip, the audit stream |
//! | `jobs` | the RQ job of one run (frappe or plain mode) |
//! | `reports` | what the engine answers: schedule states, upcoming runs, status, errors |
//! | `handle` | [`EngineHandle`] and the commands it sends |
//! | `actions` | the operator actions (pause, resume, skip-next, backfill, audit) as `EngineHandle` methods, run in the caller's task |
//! | `plan` | the plan: per site the planned schedules and the skipped rows, the timer |
//! | `follow` | the follow set: schedules named by a legacy request, re-read for a while (pure) |
//! | `reread` | the spawned re-read of the followed rows, one query per site |
//! | `link` | the Redis link: connection, RQ writer, health — the one `usable()` answer |
//! | `rebuild` | the steps of one site's rebuild, applied to the plan batch by batch |
//! | `loader` | when and which sites load; per-site source state; rebuild waiters |
//! | `prepare` | payloads of the next due instant, built ahead of it |
//! | `resend` | with Sentinel: the runs enqueued lately, sent again after a master change |
//! | `batch` | one batch's script call, its answer per run and the history entries it decided |
//! | `firing` | due runs → batches of enqueues → outcomes, run counters, logs, metrics |
//! | `answers` | notify, cancel, status, upcoming, history and run-now answers |
//! | `run` | [`Engine`]: the `select!` loop handing each event to its component |
//!
//! Imports go one way only, down this list: a file may import the files above it, never one
//! below (so `plan` knows nothing of Redis, `link` nothing of the plan, and only `run` knows
//! every component). This file only declares and re-exports.

mod actions;
mod answers;
pub(crate) mod backoff;
mod batch;
mod choose;
mod firing;
mod follow;
mod handle;
pub(crate) mod jobs;
mod link;
mod loader;
mod nextrun;
pub mod operator;
mod plan;
pub(crate) mod planner;
mod prepare;
mod rebuild;
mod reports;
mod reread;
mod resend;
mod run;
mod staged;
pub mod store;

pub use actions::{MAX_BACKFILL, MAX_SKIP};
pub use handle::EngineHandle;
pub use operator::{AuditRead, AuditRecord, Caller, PauseRecord};
pub use reports::{
    BackfillItem, BackfillReport, BackfillState, EngineError, LegacyKind, LegacyReport, NOTIFY_NEXT_RUNS,
    RebuildReport, RunNowResult, ScheduleState, ScheduleStatus, SiteMarks, SiteRebuild, SiteStatus, SkipReport,
    StatusReport, UpcomingRun,
};
pub use run::{Engine, EngineOptions};
pub use store::HistoryEntry;
