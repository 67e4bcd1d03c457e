//! Cron engine speed: parse time, and time per next run instant in America/Los_Angeles.
//! Run with `cargo bench -p btu-daemon --bench cron`; results are in docs/cron.md.

use btu_cron::explain::explain;
use btu_cron::{CronExpr, LocalSchedule};
use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{BatchSize, Criterion, black_box, criterion_group, criterion_main};

const EXPRS: [(&str, &str); 3] = [("dense", "*/5 * * * *"), ("daily", "30 2 * * *"), ("sparse", "0 0 29 2 1")];

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for (name, expr) in EXPRS.iter().chain(&[("complex", "*/10 0-30/5 8-18 1,15,28 JAN-MAR,OCT MON-FRI 2027-2030")]) {
        g.bench_function(*name, |b| b.iter(|| CronExpr::parse(black_box(expr))));
    }
    g.finish();
}

fn next_instant(c: &mut Criterion) {
    let mut g = c.benchmark_group("next_after/America_Los_Angeles");
    // Start instants spread over a year (including the DST days) so no one case dominates.
    let base = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
    let starts: Vec<DateTime<Utc>> = (0..997).map(|i| base + Duration::seconds(i * 31_653)).collect();
    for (name, expr) in EXPRS {
        let s = LocalSchedule::parse(expr, "America/Los_Angeles").unwrap();
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    i = (i + 1) % starts.len();
                    starts[i]
                },
                |t| s.next_after(black_box(t)),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn explain_year(c: &mut Criterion) {
    let s = LocalSchedule::parse("30 2 * * *", "America/Los_Angeles").unwrap();
    let from = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
    let until = Utc.with_ymd_and_hms(2028, 1, 1, 0, 0, 0).unwrap();
    c.bench_function("explain/one_year_daily_Los_Angeles", |b| b.iter(|| explain(&s, black_box(from), until)));
}

criterion_group!(benches, parse, next_instant, explain_year);
criterion_main!(benches);
