//! `btu next`: the next run instants of an expression in a zone.

use super::error::CliError;
use super::text::{job_class, parse_dst_gap, parse_dst_overlap, parse_instant, rfc3339z};
use crate::cron::{DstGap, DstOverlap, LocalSchedule};
use chrono::{DateTime, Utc};
use std::fmt::Write;

#[derive(clap::Args, Debug)]
pub struct NextArgs {
    /// Cron expression: 5 fields (minute hour day-of-month month day-of-week), 6 with seconds
    /// first, 7 with a year last, or a macro such as @daily. Quote it.
    pub expr: String,
    /// IANA time zone the expression is read in, e.g. America/Los_Angeles.
    #[arg(long, default_value = "UTC")]
    pub tz: String,
    /// A fixed-time run whose wall time a spring-forward skips: shift (to the first instant
    /// after the gap) or skip (not run).
    #[arg(long, default_value = "shift", value_parser = parse_dst_gap)]
    pub dst_gap: DstGap,
    /// Runs whose wall time a fall-back repeats: auto (fixed-time once, wildcard both passes),
    /// first, last or both.
    #[arg(long, default_value = "auto", value_parser = parse_dst_overlap)]
    pub dst_overlap: DstOverlap,
    /// List runs strictly after this RFC 3339 instant [default: now].
    #[arg(long, value_parser = parse_instant)]
    pub from: Option<DateTime<Utc>>,
    /// How many runs to list.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub count: u32,
    /// Print only a JSON array of RFC 3339 UTC instants.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &NextArgs, now: DateTime<Utc>) -> Result<String, CliError> {
    let schedule = LocalSchedule::parse(&args.expr, &args.tz)?.with_dst(args.dst_gap, args.dst_overlap);
    let from = args.from.unwrap_or(now);
    let runs: Vec<DateTime<Utc>> = schedule.runs_after(from).take(args.count as usize).collect();
    if args.json {
        let list: Vec<String> = runs.iter().map(|t| rfc3339z(*t)).collect();
        let mut out = serde_json::to_string(&list).map_err(|e| CliError::Json(e.to_string()))?;
        out.push('\n');
        return Ok(out);
    }
    let tz = schedule.tz();
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "{} in {} ({}), runs after {}:",
        schedule.expr().source(),
        tz.name(),
        job_class(&schedule),
        rfc3339z(from)
    );
    if runs.is_empty() {
        let _ = writeln!(out, "  no runs");
    } else {
        let _ = writeln!(out, "{:>5}  {:<34}  UTC", "#", "local time (offset, zone)");
    }
    for (i, t) in runs.iter().enumerate() {
        let local = t.with_timezone(&tz);
        let shown = format!("{}", local.format("%Y-%m-%d %H:%M:%S %:z (%Z)"));
        let _ = writeln!(out, "{:>5}  {shown:<34}  {}", i + 1, rfc3339z(*t));
    }
    Ok(out)
}
