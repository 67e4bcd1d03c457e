//! Subcommands of the `btu` command line tool.
//!
//! Each subcommand lives in its own module with a clap `Args` struct and a `run` function that
//! returns the text for stdout; the binary prints it only on success, so a failing command
//! prints nothing on stdout and its message on stderr. To add a subcommand: add a module, a
//! variant to [`Command`] and an arm to [`Command::run`].

pub(crate) mod actions;
pub(crate) mod check_config;
mod check_line;
mod check_workers;
pub(crate) mod client;
mod error;
pub(crate) mod explain;
pub(crate) mod jobs;
pub(crate) mod next;
pub(crate) mod print_config;
pub(crate) mod remote;
pub(crate) mod setup;
mod text;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

pub use error::CliError;

/// btu: run Frappe BTU schedules (cron in local time) with exact daylight-saving rules.
#[derive(Parser, Debug)]
#[command(name = "btu", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List the next run instants of a cron expression read in a time zone.
    Next(next::NextArgs),
    /// Show a local schedule as UTC cron expressions, one set per daylight-saving window.
    Explain(explain::ExplainArgs),
    /// Validate a daemon configuration file and try each connection it names.
    CheckConfig(check_config::CheckConfigArgs),
    /// Print the effective configuration (defaults filled in, passwords redacted).
    PrintConfig(print_config::PrintConfigArgs),
    /// List the queued RQ jobs btu-daemon wrote, per queue (read from Redis).
    ListJobs(jobs::JobsArgs),
    /// Show one RQ job: its fields, its decoded call and its status (read from Redis).
    ShowJob(jobs::ShowJobArgs),
    /// Service set-up: `setup supervisor --bench PATH [--user USER]`, `setup systemd`.
    #[command(subcommand)]
    Setup(setup::SetupCommand),
    /// Subcommands that ask the running btu-daemon (ping, status, upcoming, notify, ...).
    #[command(flatten)]
    Remote(remote::RemoteCommand),
    /// Operator actions on a schedule (pause, resume, skip, backfill) and the audit trail.
    #[command(flatten)]
    Actions(actions::ActionCommand),
}

impl Command {
    /// Run the subcommand; `now` is the default start instant. Returns the stdout text.
    pub fn run(&self, now: DateTime<Utc>) -> Result<String, CliError> {
        match self {
            Command::Next(args) => next::run(args, now),
            Command::Explain(args) => explain::run(args, now),
            Command::CheckConfig(args) => check_config::run_text(args),
            Command::PrintConfig(args) => print_config::run(args),
            Command::ListJobs(args) => jobs::run_list(args),
            Command::ShowJob(args) => jobs::run_show(args),
            Command::Setup(cmd) => cmd.run(),
            Command::Remote(cmd) => Ok(cmd.run()?),
            Command::Actions(cmd) => Ok(cmd.run()?),
        }
    }
}
