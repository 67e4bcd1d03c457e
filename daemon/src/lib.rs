//! btu-scheduler: runs Frappe BTU task schedules, written as cron strings in a
//! site's local time zone, as Python RQ jobs at the right UTC instants.
//!
//! The crate is split into a pure core (no I/O) and thin adapters around it:
//!
//! | module      | job                                                              | I/O |
//! |-------------|------------------------------------------------------------------|-----|
//! | [`cron`]    | the `btu-cron` crate: cron strings to UTC instants across DST, `explain` | no  |
//! | [`pyvalue`] | Python values: read literals (task arguments), repr, pickle       | no  |
//! | [`secret`]  | passwords kept out of logs; the one URL redaction                 | no  |
//! | [`config`]  | the daemon's TOML configuration (new and original flat keys)      | file |
//! | [`bench`]   | a Frappe bench read as Frappe v15 does: sites, databases, queue Redis, bench id | files |
//! | [`source`]  | where schedules come from: MariaDB (Frappe BTU) or a TOML file    | MariaDB, file |
//! | [`rq`]      | build RQ job hashes (zlib'd pickle) and write them to Redis       | Redis |
//! | [`engine`]  | the plan, timers, rebuilds, firing, missed runs                   | Redis, sources |
//! | [`server`]  | the Unix-socket server for live changes                           | socket |
//! | [`cli`]     | the `btu` command's subcommands                                   | stdout |
//! | [`outcome`] | what happened to a due run: the one list of outcomes              | no  |
//! | [`policy`]  | per-schedule policies: overlap, catch-up, jitter, DST gap/overlap | no  |
//! | [`metrics`] | Prometheus metrics, health and readiness over HTTP                | TCP |
//! | [`systemd`] | `Type=notify`: ready, status, watchdog, stopping                  | notify socket |
//!
//! Which module may import which: `docs/architecture.md`.

pub use btu_cron as cron;

pub mod bench;
pub mod cli;
pub mod config;
pub mod engine;
pub mod metrics;
pub mod outcome;
pub mod policy;
pub mod pyvalue;
pub mod rq;
pub mod secret;
pub mod server;
pub mod source;
pub mod systemd;
