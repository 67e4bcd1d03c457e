//! btu-scheduler: runs Frappe BTU task schedules, written as cron strings in a
//! site's local time zone, as Python RQ jobs at the right UTC instants.
//!
//! The crate is split into a pure core (no I/O) and thin adapters around it:
//!
//! | module      | job                                                              | I/O |
//! |-------------|------------------------------------------------------------------|-----|
//! | [`cron`]    | parse a cron string, list its run instants in UTC across DST      | no  |
//! | [`explain`] | one local schedule as sets of UTC cron expressions per DST window | no  |
//! | [`pyvalue`] | Python values: read literals (task arguments), repr, pickle    | no  |
//! | [`rq`]      | build RQ job hashes (pickle + zlib) and write them to Redis       | Redis |
//! | [`config`]  | the daemon's TOML configuration (new and original flat keys)     | file |
//! | [`source`]  | where schedules come from: MariaDB (Frappe BTU) or a TOML file    | MariaDB, file |
//! | [`secret`]  | passwords kept out of logs; the one URL redaction                 | no  |
//! | [`cli`]     | the `btu` command's subcommands                                   | stdout |

pub use btu_cron as cron;

pub mod cli;
pub mod config;
pub mod engine;
pub mod pyvalue;
pub mod rq;
pub mod secret;
pub mod server;
pub mod source;
