//! `btu explain`: a local schedule as UTC cron expressions, window by window.

use super::error::CliError;
use super::text::{job_class, parse_date_or_instant, parse_dst_gap, parse_dst_overlap, rfc3339z};
use crate::cron::explain::explain;
use crate::cron::{DstGap, DstOverlap, LocalSchedule};
use chrono::{DateTime, Months, Utc};
use std::fmt::Write;

#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// Cron expression (5, 6 or 7 fields, or a macro such as @daily). Quote it.
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
    /// Start: YYYY-MM-DD (midnight in --tz) or an RFC 3339 instant [default: now].
    #[arg(long)]
    pub from: Option<String>,
    /// End (exclusive): YYYY-MM-DD (midnight in --tz) or an RFC 3339 instant
    /// [default: one year after --from].
    #[arg(long)]
    pub until: Option<String>,
    /// Print only the JSON array of windows.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &ExplainArgs, now: DateTime<Utc>) -> Result<String, CliError> {
    let schedule = LocalSchedule::parse(&args.expr, &args.tz)?.with_dst(args.dst_gap, args.dst_overlap);
    let tz = schedule.tz();
    let from = match &args.from {
        Some(text) => parse_date_or_instant("from", text, tz)?,
        None => now,
    };
    let until = match &args.until {
        Some(text) => parse_date_or_instant("until", text, tz)?,
        None => from
            .checked_add_months(Months::new(12))
            .ok_or(CliError::DateRange { flag: "from", value: rfc3339z(from) })?,
    };
    let windows = explain(&schedule, from, until)?;
    if args.json {
        let mut out = serde_json::to_string_pretty(&windows).map_err(|e| CliError::Json(e.to_string()))?;
        out.push('\n');
        return Ok(out);
    }
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "{} in {} ({}) as UTC cron expressions, {} .. {}",
        schedule.expr().source(),
        tz.name(),
        job_class(&schedule),
        rfc3339z(from),
        rfc3339z(until)
    );
    for w in &windows {
        let _ = writeln!(out, "\n{} .. {}  (UTC{})", rfc3339z(w.from), rfc3339z(w.until), w.utc_offset);
        if w.utc_crons.is_empty() && w.instants.is_empty() {
            let _ = writeln!(out, "  no runs");
        }
        for cron in &w.utc_crons {
            let _ = writeln!(out, "  {cron}");
        }
        for t in &w.instants {
            let _ = writeln!(out, "  plus once at {}", rfc3339z(*t));
        }
    }
    Ok(out)
}
