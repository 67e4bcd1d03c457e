//! The operator actions of `btu`: `pause`, `resume`, `skip`, `backfill`, `audit`. Each asks the
//! running daemon (which records the action with your uid/pid in the site's audit trail) and
//! prints a human summary, or with `--json` only the daemon's answer as JSON.

use std::fmt::Write as _;

use btu_protocol::{BackfillStatus, Request, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::Subcommand;

use super::client::ClientError;
use super::remote::{ConnArgs, exchange, json, table};

/// An RFC 3339 instant on the command line, sent as UTC.
fn rfc3339(text: &str) -> Result<String, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc).to_rfc3339_opts(SecondsFormat::Secs, true))
        .map_err(|e| {
            format!("'{text}' is not an RFC 3339 instant like 2025-12-27T08:00:00Z or 2025-12-27T09:00:00+01:00 ({e})")
        })
}

/// The operator subcommands (flattened into `btu`'s own list).
#[derive(Subcommand, Debug)]
pub enum ActionCommand {
    /// Pause a schedule: none of its runs is enqueued until --until (or `btu resume`).
    Pause {
        /// Schedule id, e.g. TS-000001.
        id: String,
        /// End of the pause, RFC 3339 (e.g. 2026-01-05T08:00:00+01:00); default: until resumed.
        #[arg(long, value_name = "RFC3339", value_parser = rfc3339)]
        until: Option<String>,
        /// Why (kept with the pause and in the audit trail).
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// End a schedule's pause (the runs due while paused are not replayed).
    Resume {
        id: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Skip a schedule's next planned run(s): they are not enqueued.
    Skip {
        id: String,
        /// How many of the next runs (after those already skipped).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
        count: u32,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Enqueue every planned run in [--from, --until) that has no job yet.
    Backfill {
        id: String,
        /// First instant of the range (included), RFC 3339.
        #[arg(long = "from", value_name = "RFC3339", value_parser = rfc3339)]
        from: String,
        /// End of the range (excluded), RFC 3339; runs from now on are left to the plan.
        #[arg(long, value_name = "RFC3339", value_parser = rfc3339)]
        until: String,
        /// Refuse a range with more planned runs than this.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=5000))]
        max: u32,
        /// Only list what would be enqueued; write nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// The audit trail: the newest operator actions (of one schedule, or all), newest first.
    Audit {
        /// Only this schedule's actions.
        id: Option<String>,
        /// How many entries to list (at most 1000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        count: u32,
        #[command(flatten)]
        conn: ConnArgs,
    },
}

impl ActionCommand {
    fn conn(&self) -> &ConnArgs {
        match self {
            ActionCommand::Pause { conn, .. }
            | ActionCommand::Resume { conn, .. }
            | ActionCommand::Skip { conn, .. }
            | ActionCommand::Backfill { conn, .. }
            | ActionCommand::Audit { conn, .. } => conn,
        }
    }

    fn request(&self) -> Request {
        let site = self.conn().site.clone();
        match self {
            ActionCommand::Pause { id, until, note, .. } => {
                Request::Pause { schedule: id.clone(), site, until: until.clone(), note: note.clone() }
            }
            ActionCommand::Resume { id, .. } => Request::Resume { schedule: id.clone(), site },
            ActionCommand::Skip { id, count, .. } => Request::SkipNext { schedule: id.clone(), site, count: *count },
            ActionCommand::Backfill { id, from, until, max, dry_run, .. } => Request::Backfill {
                schedule: id.clone(),
                site,
                start: from.clone(),
                end: until.clone(),
                max: *max,
                dry_run: *dry_run,
            },
            ActionCommand::Audit { id, count, .. } => Request::Audit { schedule: id.clone(), site, count: *count },
        }
    }

    /// Asks the daemon and returns the text for stdout.
    pub fn run(&self) -> Result<String, ClientError> {
        let (_, response) = exchange(self.conn(), self.request())?;
        if self.conn().json {
            return json(&response);
        }
        render(&response)
    }
}

/// Human text for an operator action's answer.
fn render(response: &Response) -> Result<String, ClientError> {
    let mut out = String::new();
    // Writing to a String cannot fail; the results of write! are ignored below.
    match response {
        Response::Paused(p) => {
            let until = p.pause.until.as_deref().map_or("until resumed".to_string(), |u| format!("until {u}"));
            let _ = write!(out, "paused {} (site {}) {until}", p.schedule, p.site);
            if let Some(n) = &p.pause.note {
                let _ = write!(out, ": {n}");
            }
            out.push('\n');
        }
        Response::Resumed(r) if r.was_paused => {
            let _ =
                writeln!(out, "resumed {} (site {}): runs are enqueued again from its next run on", r.schedule, r.site);
        }
        Response::Resumed(r) => {
            let _ = writeln!(out, "{} (site {}) was not paused; nothing changed", r.schedule, r.site);
        }
        Response::Skipped(k) => {
            let _ = writeln!(out, "skipping {} run(s) of {} (site {}):", k.added.len(), k.schedule, k.site);
            for r in &k.added {
                let _ = writeln!(out, "  {}  ({})", r.local, r.utc);
            }
            if k.pending.len() > k.added.len() {
                let _ = writeln!(out, "{} run(s) of it are skipped in all", k.pending.len());
            }
        }
        Response::Backfilled(b) => {
            let count = |s: BackfillStatus| b.runs.iter().filter(|r| r.status == s).count();
            let rows: Vec<Vec<String>> = b
                .runs
                .iter()
                .map(|r| vec![r.due.clone(), r.local.clone(), r.status.as_str().to_string(), r.job_id.clone()])
                .collect();
            if !rows.is_empty() {
                out.push_str(&table(&["DUE (UTC)", "LOCAL", "STATUS", "JOB ID"], &rows));
            }
            let (enq, exist, would) =
                (count(BackfillStatus::Enqueued), count(BackfillStatus::Exists), count(BackfillStatus::WouldEnqueue));
            if b.dry_run {
                let _ = writeln!(
                    out,
                    "dry run, nothing written: {would} would be enqueued, {exist} already have a job ({} site {})",
                    b.schedule, b.site
                );
            } else {
                let _ = writeln!(
                    out,
                    "backfilled {} (site {}): {enq} enqueued, {exist} already had a job",
                    b.schedule, b.site
                );
            }
        }
        Response::Audited(a) => {
            if a.entries.is_empty() {
                let _ = writeln!(out, "no operator actions recorded on site {}", a.site);
            } else {
                let rows: Vec<Vec<String>> = a
                    .entries
                    .iter()
                    .map(|e| {
                        let who = match (e.uid, e.pid) {
                            (Some(u), Some(p)) => format!("uid {u} pid {p}"),
                            (Some(u), None) => format!("uid {u}"),
                            _ => "-".into(),
                        };
                        let mut args = if e.args == "{}" { String::new() } else { e.args.clone() };
                        if let Some(n) = &e.note {
                            args = if args.is_empty() { format!("note: {n}") } else { format!("{args} note: {n}") };
                        }
                        vec![
                            e.time.clone(),
                            e.action.clone(),
                            e.schedule.clone().unwrap_or_else(|| "-".into()),
                            who,
                            args,
                        ]
                    })
                    .collect();
                out.push_str(&table(&["TIME (UTC)", "ACTION", "SCHEDULE", "BY", "DETAILS"], &rows));
            }
        }
        Response::Error(e) => return Err(ClientError::Daemon { code: e.code, message: e.message.clone() }),
        other => return Err(ClientError::UnexpectedAnswer { sent: "an operator action", got: other.kind() }),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_sent_in_utc() {
        assert_eq!(rfc3339("2026-01-05T08:00:00+01:00").as_deref(), Ok("2026-01-05T07:00:00Z"));
        assert!(rfc3339("next monday").is_err());
    }
}
