//! `btu` subcommands that ask the running daemon over its socket: `ping`, `status`, `upcoming`,
//! `history`, `notify`, `cancel`, `rebuild`, `run-now` (the operator actions are in
//! [`super::actions`]). Each prints a human summary, or with `--json` only the daemon's answer
//! as JSON (the protocol's field names).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use btu_protocol::{Client, Request, Response, SOCKET_PATH_ENV, Settings};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::client::{ClientError, resolve_socket};

/// Options every daemon subcommand takes.
#[derive(Args, Debug, Clone)]
pub struct ConnArgs {
    /// Daemon socket [env: BTU_SOCKET_PATH] [default: socket_path of --config, else /tmp/btu_scheduler.sock]
    #[arg(long, value_name = "PATH", env = SOCKET_PATH_ENV, hide_env = true)]
    pub socket: Option<PathBuf>,
    /// Read socket_path from this daemon configuration file.
    #[arg(long, short = 'c', value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Site the request is about (needed when the daemon serves several and the id is ambiguous).
    #[arg(long)]
    pub site: Option<String>,
    /// Print only the daemon's answer as JSON.
    #[arg(long)]
    pub json: bool,
    /// Seconds the whole exchange may take (connecting included).
    #[arg(long, default_value_t = 10.0, value_parser = parse_timeout)]
    pub timeout: f64,
}

fn parse_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(s),
        _ => Err(format!("'{text}' is not a number of seconds between 0 and 86400")),
    }
}

/// The daemon subcommands (flattened into `btu`'s own list).
#[derive(Subcommand, Debug)]
pub enum RemoteCommand {
    /// Check that btu-daemon answers; print its version.
    Ping(ConnArgs),
    /// Daemon health: version, uptime, per-site schedules, Redis and source state.
    Status(ConnArgs),
    /// The next planned runs (all schedules, or one), soonest first.
    Upcoming {
        /// Only this schedule's runs.
        #[arg(long, value_name = "ID")]
        schedule: Option<String>,
        /// How many runs to list (at most 1000).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
        count: u32,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// What happened to a schedule's most recent due instants (outcome, lateness), newest first.
    History {
        /// Schedule id, e.g. TS-000001.
        id: String,
        /// How many runs to list (at most 1000).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        count: u32,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Re-read schedules from their source now and print their next runs (or why they won't run).
    Notify {
        /// One or more schedule ids.
        #[arg(required = true, num_args = 1..)]
        ids: Vec<String>,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Drop a schedule's planned runs (until a notify or rebuild finds it runnable again).
    Cancel {
        id: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Re-read every schedule from the sources (of --site, or all sites).
    Rebuild(ConnArgs),
    /// Enqueue a schedule's task now, outside its cron plan.
    RunNow {
        id: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
}

impl RemoteCommand {
    fn conn(&self) -> &ConnArgs {
        match self {
            RemoteCommand::Ping(c) | RemoteCommand::Status(c) | RemoteCommand::Rebuild(c) => c,
            RemoteCommand::Upcoming { conn, .. }
            | RemoteCommand::History { conn, .. }
            | RemoteCommand::Notify { conn, .. }
            | RemoteCommand::Cancel { conn, .. }
            | RemoteCommand::RunNow { conn, .. } => conn,
        }
    }

    fn request(&self) -> Request {
        let site = self.conn().site.clone();
        match self {
            RemoteCommand::Ping(_) => Request::Ping,
            RemoteCommand::Status(_) => Request::Status,
            RemoteCommand::Upcoming { schedule, count, .. } => {
                Request::Upcoming { schedule: schedule.clone(), site, count: *count }
            }
            RemoteCommand::History { id, count, .. } => Request::History { schedule: id.clone(), site, count: *count },
            RemoteCommand::Notify { ids, .. } => Request::Notify { schedules: ids.clone(), site },
            RemoteCommand::Cancel { id, .. } => Request::Cancel { schedule: id.clone(), site },
            RemoteCommand::Rebuild(_) => Request::Rebuild { site },
            RemoteCommand::RunNow { id, .. } => Request::RunNow { schedule: id.clone(), site },
        }
    }

    /// Asks the daemon and returns the text for stdout.
    pub fn run(&self) -> Result<String, ClientError> {
        let conn = self.conn();
        let (client, response) = exchange(conn, self.request())?;
        if conn.json {
            return json(&response);
        }
        render(&client, &response)
    }
}

/// Sends `request` to the daemon `conn` names; the client checks that the answer is the one
/// asked for (an error answer is an Err).
pub(super) fn exchange(conn: &ConnArgs, request: Request) -> Result<(Client, Response), ClientError> {
    let socket = resolve_socket(conn.socket.as_deref(), conn.config.as_deref())?;
    let client = Client::new(socket, Duration::from_secs_f64(conn.timeout));
    let response = client.call(request)?;
    Ok((client, response))
}

/// The answer's payload as pretty JSON (without the envelope).
pub(super) fn json(response: &Response) -> Result<String, ClientError> {
    fn to<T: Serialize>(v: &T) -> String {
        // Serialising the protocol's own plain structs cannot fail (string keys only).
        let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        s.push('\n');
        s
    }
    Ok(match response {
        Response::Pong(p) => to(p),
        Response::Notified(n) => to(n),
        Response::Cancelled(c) => to(c),
        Response::Rebuilt(r) => to(r),
        Response::Status(s) => to(s),
        Response::Upcoming(u) => to(u),
        Response::History(h) => to(h),
        Response::RanNow(r) => to(r),
        Response::Paused(p) => to(p),
        Response::Resumed(r) => to(r),
        Response::Skipped(k) => to(k),
        Response::Backfilled(b) => to(b),
        Response::Audited(a) => to(a),
        Response::Error(e) => to(e),
    })
}

/// Left-aligned columns, two spaces apart.
pub(super) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// Human text for an answer.
fn render(client: &Client, response: &Response) -> Result<String, ClientError> {
    let mut out = String::new();
    // Writing to a String cannot fail; the results of write! are ignored below.
    match response {
        Response::Pong(p) => {
            let _ = writeln!(
                out,
                "btu-daemon {} (protocol {}) is answering at {}",
                p.daemon_version,
                p.protocol_version,
                client.socket().display()
            );
        }
        Response::Status(s) => {
            let _ = writeln!(out, "btu-daemon {} (protocol {})", s.daemon_version, s.protocol_version);
            let _ = writeln!(out, "started   {} (up {})", s.started_at, uptime(s.uptime_secs));
            let _ = writeln!(out, "source    {}", s.source);
            let rows: Vec<Vec<String>> = s
                .sites
                .iter()
                .map(|site| {
                    vec![
                        site.site.clone(),
                        site.schedules.to_string(),
                        ok(site.redis_ok),
                        ok(site.source_ok),
                        site.last_rebuild.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            out.push_str(&table(&["SITE", "SCHEDULES", "REDIS", "SOURCE", "LAST REBUILD"], &rows));
            status_marks(&mut out, s);
            if let Some(d) = &s.defaults {
                let _ = writeln!(out, "defaults  {}", settings_text(d));
            }
        }
        Response::Upcoming(u) => {
            if u.runs.is_empty() {
                out.push_str("no planned runs\n");
            } else {
                let several_sites = u.runs.iter().any(|r| r.site != u.runs[0].site);
                let marked = u.runs.iter().any(|r| r.paused || r.skipped);
                // A POLICIES column only when some schedule leaves the defaults.
                let policies = u.runs.iter().any(|r| r.settings.as_ref().is_some_and(|x| !changed(x).is_empty()));
                let rows: Vec<Vec<String>> = u
                    .runs
                    .iter()
                    .map(|r| {
                        let mut row = vec![
                            r.schedule.clone(),
                            r.task.clone().unwrap_or_else(|| "-".into()),
                            r.local.clone(),
                            r.utc.clone(),
                        ];
                        if several_sites {
                            row.insert(0, r.site.clone());
                        }
                        if marked {
                            let note = match (r.paused, r.skipped) {
                                (true, _) => "paused: not enqueued",
                                (false, true) => "skipped: not enqueued",
                                _ => "",
                            };
                            row.push(note.to_string());
                        }
                        if policies {
                            let text = r.settings.as_ref().map(changed).unwrap_or_default();
                            row.push(if text.is_empty() { "-".to_string() } else { text });
                        }
                        row
                    })
                    .collect();
                let mut header: Vec<&str> = if several_sites {
                    vec!["SITE", "SCHEDULE", "TASK", "LOCAL", "UTC"]
                } else {
                    vec!["SCHEDULE", "TASK", "LOCAL", "UTC"]
                };
                if marked {
                    header.push("NOTE");
                }
                if policies {
                    header.push("POLICIES");
                }
                out.push_str(&table(&header, &rows));
            }
        }
        Response::History(h) => {
            if h.runs.is_empty() {
                let _ = writeln!(out, "no runs recorded for {} on site {}", h.schedule, h.site);
            } else {
                let rows: Vec<Vec<String>> = h
                    .runs
                    .iter()
                    .map(|r| {
                        vec![
                            r.due.clone(),
                            r.outcome.clone(),
                            r.lateness_ms.map_or_else(|| "-".to_string(), |ms| ms.to_string()),
                            r.enqueued_at.clone().unwrap_or_else(|| "-".to_string()),
                            r.job_id.clone(),
                        ]
                    })
                    .collect();
                out.push_str(&table(&["DUE (UTC)", "OUTCOME", "LATENESS MS", "ENQUEUED (UTC)", "JOB ID"], &rows));
            }
        }
        Response::Notified(n) => {
            for s in &n.results {
                if s.runs {
                    let _ = writeln!(
                        out,
                        "{} (site {}): next runs, {}:",
                        s.schedule,
                        s.site,
                        s.time_zone.as_deref().unwrap_or("UTC")
                    );
                    for r in &s.next_runs {
                        let _ = writeln!(out, "  {}  ({})", r.local, r.utc);
                    }
                    if let Some(x) = &s.settings {
                        let _ = writeln!(out, "  policies: {}", settings_text(x));
                    }
                } else {
                    let _ = writeln!(
                        out,
                        "{} (site {}): will not run: {}",
                        s.schedule,
                        s.site,
                        s.reason.as_deref().unwrap_or("no reason given")
                    );
                }
            }
        }
        Response::Cancelled(c) => {
            if c.removed {
                let _ = writeln!(out, "cancelled {} on site {}: its planned runs are dropped", c.schedule, c.site);
            } else {
                let _ = writeln!(out, "{} on site {} had no planned runs; nothing to cancel", c.schedule, c.site);
            }
        }
        Response::Rebuilt(r) => {
            let _ = writeln!(
                out,
                "rebuilt {} in {} ms: {} schedules planned, {} skipped",
                r.sites.join(", "),
                r.duration_ms,
                r.schedules,
                r.skipped
            );
        }
        Response::RanNow(r) => {
            let _ =
                writeln!(out, "enqueued {} (site {}) now: job {} on queue {}", r.schedule, r.site, r.job_id, r.queue);
        }
        // `Client::call` returns error answers as errors; kept total rather than trusted.
        Response::Error(e) => return Err(ClientError::Daemon { code: e.code, message: e.message.clone() }),
        // The operator actions' answers are rendered by `super::actions`, which asks for them.
        other @ (Response::Paused(_)
        | Response::Resumed(_)
        | Response::Skipped(_)
        | Response::Backfilled(_)
        | Response::Audited(_)) => {
            return Err(ClientError::UnexpectedAnswer { sent: "a daemon subcommand", got: other.kind() });
        }
    }
    Ok(out)
}

/// The paused schedules and skipped runs of `status`, after its table (nothing when none).
fn status_marks(out: &mut String, s: &btu_protocol::Status) {
    let several = s.sites.len() > 1;
    let label =
        |site: &str, schedule: &str| if several { format!("{schedule} (site {site})") } else { schedule.to_string() };
    for site in &s.sites {
        for p in &site.paused {
            let until = p.pause.until.as_deref().map_or("until resumed".to_string(), |u| format!("until {u}"));
            let note = p.pause.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default();
            let _ = writeln!(out, "paused    {} {until}{note}", label(&site.site, &p.schedule));
        }
        for k in &site.skipped {
            let _ = writeln!(out, "skipped   {} run due {}", label(&site.site, &k.schedule), k.utc);
        }
    }
}

/// Every policy, e.g. `overlap allow, catchup latest, jitter_secs 0, dst_gap shift, dst_overlap auto`.
fn settings_text(s: &Settings) -> String {
    format!(
        "overlap {}, catchup {}, jitter_secs {}, dst_gap {}, dst_overlap {}",
        s.overlap, s.catchup, s.jitter_secs, s.dst_gap, s.dst_overlap
    )
}

/// The policies that differ from the built-in defaults, e.g. `overlap=skip jitter_secs=30`.
fn changed(s: &Settings) -> String {
    let jitter = s.jitter_secs.to_string();
    [
        ("overlap", s.overlap.as_str(), "allow"),
        ("catchup", s.catchup.as_str(), "latest"),
        ("jitter_secs", jitter.as_str(), "0"),
        ("dst_gap", s.dst_gap.as_str(), "shift"),
        ("dst_overlap", s.dst_overlap.as_str(), "auto"),
    ]
    .iter()
    .filter(|(_, v, d)| v != d)
    .map(|(k, v, _)| format!("{k}={v}"))
    .collect::<Vec<_>>()
    .join(" ")
}

fn ok(b: bool) -> String {
    if b { "ok".into() } else { "DOWN".into() }
}

fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h {m}m")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m {s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(&["A", "LONG"], &[vec!["xyz".into(), "1".into()], vec!["q".into(), "22".into()]]);
        assert_eq!(t, "A    LONG\nxyz  1\nq    22\n");
    }

    #[test]
    fn uptime_reads_naturally() {
        assert_eq!(uptime(59), "0m 59s");
        assert_eq!(uptime(3_700), "1h 1m");
        assert_eq!(uptime(90_000), "1d 1h 0m");
    }
}
