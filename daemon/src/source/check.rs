//! Row checking: the one place a schedule row read by any source is validated and turned into
//! a [`ScheduleSpec`] (or a [`SkipReason`]), with its [`Fingerprint`].

use std::fmt;
use std::sync::Arc;

use super::fingerprint::{Fingerprint, FingerprintHasher};
use super::row::{RebuildRow, RowOutcome};
use super::skip::SkipReason;
use super::spec::{Interner, KnownFingerprints, ScheduleSpec};
use crate::config::Mode;
use crate::policy::{Policies, PolicyTexts};
use crate::pyvalue::{Kwargs, write_kwargs_repr};

/// Everything a source needs besides its own connection settings.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// Shared by every schedule of the site.
    pub site: Arc<str>,
    pub mode: Mode,
    /// Prepended to queue names (Frappe's `<bench_id>:`), in frappe mode only.
    pub queue_prefix: String,
    /// The config file's zone, the fallback when the site says nothing.
    pub default_zone: Option<String>,
    /// Frappe mode calls this runner; kept here so the fingerprint changes when it does.
    pub runner: String,
    /// The config's `[defaults]`: the policies of rows that do not set their own.
    pub defaults: Policies,
}

/// Fields of one schedule as a source read them, before validation.
#[derive(Debug, Clone, Default)]
pub struct RawSchedule {
    pub id: String,
    pub task: Option<String>,
    pub task_description: Option<String>,
    pub function: Option<String>,
    pub cron: Option<String>,
    pub zone: String,
    pub queue: Option<String>,
    pub kwargs: Kwargs,
    pub timeout_secs: i64,
    /// The row's own policy settings (file keys, MariaDB columns); unset ones are the defaults.
    pub policies: PolicyTexts,
}

/// One row as a source read it: its fields, or already why it does not run (disabled, its
/// task missing or not submitted, unreadable arguments, ...), with the schedule id.
pub type SourceRow = Result<RawSchedule, (String, SkipReason)>;

/// The checks every row of every source goes through (cron, zone, function, task, timeout),
/// sharing texts and parsed schedules among the rows of one load. Pure.
#[derive(Debug)]
pub struct RowChecker<'a> {
    ctx: &'a BuildContext,
    interner: Interner,
}

impl<'a> RowChecker<'a> {
    pub fn new(ctx: &'a BuildContext) -> Self {
        RowChecker { ctx, interner: Interner::default() }
    }

    /// Checks one row: the runnable spec, or why it does not run.
    pub fn check(&mut self, row: SourceRow) -> RowOutcome {
        let checked = row.and_then(|raw| {
            let policies = policies_of(self.ctx, &raw)?;
            let fingerprint = fingerprint_of(self.ctx, &raw, &policies)?;
            self.spec(raw, fingerprint, policies)
        });
        match checked {
            Ok(spec) => RowOutcome::Loaded(spec),
            Err((schedule, reason)) => RowOutcome::Skipped { site: self.ctx.site.to_string(), schedule, reason },
        }
    }

    /// [`RowChecker::check`] for a rebuild: a row whose fingerprint `known` lists for its id
    /// becomes [`RebuildRow::Unchanged`] before anything is parsed or allocated for it.
    ///
    /// The fingerprint covers every input of the checks (mode, task, function, cron, zone,
    /// timeout, policies), so a listed fingerprint also means the row passed them when it was planned.
    pub fn check_rebuild(&mut self, row: SourceRow, known: &KnownFingerprints) -> RebuildRow {
        let checked = row.and_then(|raw| {
            let policies = policies_of(self.ctx, &raw)?;
            let fingerprint = fingerprint_of(self.ctx, &raw, &policies)?;
            if let Some((id, _)) = known.get_key_value(raw.id.as_str()).filter(|(_, f)| **f == fingerprint) {
                return Ok(RebuildRow::Unchanged { id: id.clone(), fingerprint });
            }
            self.spec(raw, fingerprint, policies).map(|spec| RebuildRow::Loaded(Arc::new(spec)))
        });
        checked.unwrap_or_else(|(schedule, reason)| RebuildRow::skipped(schedule, reason))
    }

    /// Validates the row (zone, cron, function, task, timeout) and builds its spec.
    fn spec(
        &mut self,
        raw: RawSchedule,
        fingerprint: Fingerprint,
        policies: Policies,
    ) -> Result<ScheduleSpec, (String, SkipReason)> {
        let (cron, zone, function, queue_prefix, queue_name) = fields(self.ctx, &raw);
        let mut check = || -> Result<_, SkipReason> {
            let Some(cron) = cron else { return Err(SkipReason::NoCron) };
            let parsed = self.interner.schedule(cron, zone, policies.dst_gap, policies.dst_overlap)?;
            if self.ctx.mode == Mode::Plain && function.is_empty() {
                return Err(SkipReason::Invalid { problem: "no function to call".into() });
            }
            if self.ctx.mode == Mode::Frappe && raw.task.as_deref().is_none_or(str::is_empty) {
                return Err(SkipReason::NoTask);
            }
            if raw.timeout_secs == 0 || raw.timeout_secs < -1 {
                return Err(SkipReason::Invalid {
                    problem: format!("timeout {} s: must be positive (or -1 for no limit)", raw.timeout_secs),
                });
            }
            Ok(parsed)
        };
        let (cron, zone, schedule) = match check() {
            Ok(parsed) => parsed,
            Err(reason) => return Err((raw.id, reason)),
        };
        let function = function.to_string();
        let queue = format!("{queue_prefix}{queue_name}");
        let task = raw.task.as_deref().map(|t| self.interner.text(t));
        let task_description = raw.task_description.as_deref().map(|d| self.interner.text(d));
        let mut kwargs = raw.kwargs;
        // Merging grows the vector by doubling; the plan keeps it as long as the schedule.
        kwargs.shrink_to_fit();
        Ok(ScheduleSpec {
            site: self.ctx.site.clone(),
            id: Arc::from(raw.id),
            task,
            task_description,
            function,
            cron,
            zone,
            schedule,
            queue,
            kwargs,
            timeout_secs: raw.timeout_secs,
            mode: self.ctx.mode,
            policies,
            fingerprint,
        })
    }
}

/// Trimmed cron (None when there is none), zone, function, queue prefix and queue name.
fn fields<'a>(ctx: &'a BuildContext, raw: &'a RawSchedule) -> (Option<&'a str>, &'a str, &'a str, &'a str, &'a str) {
    (
        raw.cron.as_deref().map(str::trim).filter(|c| !c.is_empty()),
        raw.zone.trim(),
        raw.function.as_deref().map(str::trim).unwrap_or(""),
        if ctx.mode == Mode::Frappe { ctx.queue_prefix.as_str() } else { "" },
        raw.queue.as_deref().map(str::trim).filter(|q| !q.is_empty()).unwrap_or("default"),
    )
}

/// The row's effective policies: its own settings over the config's defaults.
fn policies_of(ctx: &BuildContext, raw: &RawSchedule) -> Result<Policies, (String, SkipReason)> {
    raw.policies
        .apply(ctx.defaults)
        .map_err(|e| (raw.id.clone(), SkipReason::InvalidSetting { key: e.key, problem: e.problem }))
}

/// The row's fingerprint, hashed in place (no joined text is built). The same parts, in the
/// same order, as every earlier release, so fingerprints a previous daemon stored in Redis
/// stay valid; policies other than the defaults add parts after them (so a schedule that
/// keeps the defaults keeps its fingerprint).
fn fingerprint_of(
    ctx: &BuildContext,
    raw: &RawSchedule,
    policies: &Policies,
) -> Result<Fingerprint, (String, SkipReason)> {
    let (cron, zone, function, queue_prefix, queue_name) = fields(ctx, raw);
    let Some(cron) = cron else { return Err((raw.id.clone(), SkipReason::NoCron)) };
    let mut h = FingerprintHasher::new();
    h.part(match ctx.mode {
        Mode::Frappe => "frappe",
        Mode::Plain => "plain",
    });
    h.part(if ctx.mode == Mode::Frappe { ctx.runner.as_str() } else { "" });
    h.part(raw.task.as_deref().unwrap_or(""));
    h.part(raw.task_description.as_deref().unwrap_or(""));
    h.part(function);
    h.part(cron);
    h.part(zone);
    h.write(queue_prefix);
    h.part(queue_name);
    // Writing into the hasher cannot fail.
    let _ = fmt::Write::write_fmt(&mut h, format_args!("{}", raw.timeout_secs));
    h.end();
    write_kwargs_repr(&raw.kwargs, &mut h);
    h.end();
    if *policies != Policies::default() {
        h.part("policies");
        h.part(policies.overlap.as_str());
        h.part(policies.catchup.as_str());
        let _ = fmt::Write::write_fmt(&mut h, format_args!("{}", policies.jitter_secs));
        h.end();
        h.part(policies.dst_gap.as_str());
        h.part(policies.dst_overlap.as_str());
    }
    Ok(h.finish())
}

/// Test support for the engine's tests: the outcome of checking a plain-mode row of `site` that
/// runs `m.f` on `cron` in UTC.
#[cfg(test)]
pub(crate) fn plain_row(site: &str, id: &str, cron: &str) -> RowOutcome {
    let ctx = BuildContext {
        site: site.into(),
        mode: Mode::Plain,
        queue_prefix: String::new(),
        default_zone: None,
        runner: String::new(),
        defaults: Policies::default(),
    };
    let raw = RawSchedule {
        id: id.into(),
        function: Some("m.f".into()),
        cron: Some(cron.into()),
        zone: "UTC".into(),
        timeout_secs: 60,
        ..Default::default()
    };
    RowChecker::new(&ctx).check(Ok(raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::fingerprint::fingerprint;

    /// One row through a fresh checker.
    fn finish(ctx: &BuildContext, raw: RawSchedule) -> RowOutcome {
        RowChecker::new(ctx).check(Ok(raw))
    }

    fn build(ctx: &BuildContext, known: &KnownFingerprints, raw: RawSchedule) -> RebuildRow {
        RowChecker::new(ctx).check_rebuild(Ok(raw), known)
    }

    fn ctx(mode: Mode) -> BuildContext {
        BuildContext {
            site: "s1.local".into(),
            mode,
            queue_prefix: "bench:".into(),
            default_zone: None,
            runner: "btu_hooks.runner.run_task".into(),
            defaults: Policies::default(),
        }
    }

    fn raw() -> RawSchedule {
        RawSchedule {
            id: "TS-1".into(),
            task: Some("BTU-1".into()),
            function: Some("m.f".into()),
            cron: Some("0 * * * *".into()),
            zone: "Europe/Paris".into(),
            queue: Some("long".into()),
            timeout_secs: 600,
            ..Default::default()
        }
    }

    #[test]
    fn valid_row_loads_with_prefixed_queue() {
        match finish(&ctx(Mode::Frappe), raw()) {
            RowOutcome::Loaded(s) => {
                assert_eq!(s.queue, "bench:long");
                assert_eq!(s.fingerprint.to_string().len(), 16);
            }
            other => panic!("{other:?}"),
        }
        match finish(&ctx(Mode::Plain), raw()) {
            RowOutcome::Loaded(s) => assert_eq!(s.queue, "long"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_rows_are_skipped_with_reasons() {
        let mut r = raw();
        r.cron = Some("61 25 * * *".into());
        let RowOutcome::Skipped { reason, .. } = finish(&ctx(Mode::Frappe), r) else { panic!() };
        assert_eq!(reason.code(), "invalid_cron");
        let mut r = raw();
        r.zone = "Mars/Base".into();
        let RowOutcome::Skipped { reason, .. } = finish(&ctx(Mode::Frappe), r) else { panic!() };
        assert!(reason.to_string().contains("Mars/Base"), "{reason}");
        let mut r = raw();
        r.function = None;
        assert!(matches!(finish(&ctx(Mode::Plain), r), RowOutcome::Skipped { .. }));
        let mut r = raw();
        r.timeout_secs = 0;
        assert!(matches!(finish(&ctx(Mode::Plain), r), RowOutcome::Skipped { .. }));
    }

    #[test]
    fn fingerprint_changes_with_any_field() {
        let fp = |r: RawSchedule| match finish(&ctx(Mode::Frappe), r) {
            RowOutcome::Loaded(s) => s.fingerprint,
            other => panic!("{other:?}"),
        };
        let base = fp(raw());
        assert_eq!(base, fp(raw()));
        let mut r = raw();
        r.cron = Some("1 * * * *".into());
        assert_ne!(base, fp(r));
        let mut r = raw();
        r.kwargs = vec![("a".into(), crate::pyvalue::PyValue::Int(1))];
        assert_ne!(base, fp(r));
        let mut r = raw();
        r.zone = "UTC".into();
        assert_ne!(base, fp(r));
    }

    /// Fingerprints are stored in Redis: the value must stay what earlier releases computed
    /// (FNV-1a over the joined parts), or a restarted daemon would replan everything.
    #[test]
    fn fingerprint_is_stable_across_releases() {
        let RowOutcome::Loaded(s) = finish(&ctx(Mode::Frappe), raw()) else { panic!() };
        let joined = fingerprint(&[
            "frappe",
            "btu_hooks.runner.run_task",
            "BTU-1",
            "",
            "m.f",
            "0 * * * *",
            "Europe/Paris",
            "bench:long",
            "600",
            "{}",
        ]);
        assert_eq!(s.fingerprint, joined);
        assert_eq!(Fingerprint::parse_hex(&s.fingerprint.to_string()), Some(s.fingerprint));
        assert_eq!(Fingerprint::parse_hex("xyz"), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// The kwargs are hashed as their repr is written, never built as text: the value must
        /// be the one the joined text gives (what earlier releases stored in Redis).
        #[test]
        fn kwargs_hash_as_their_joined_repr(
            kwargs in proptest::collection::vec(("\\PC{0,8}", crate::pyvalue::tests::arb_value()), 0..5)
        ) {
            let mut r = raw();
            r.kwargs = kwargs;
            let RowOutcome::Loaded(s) = finish(&ctx(Mode::Frappe), r.clone()) else { panic!() };
            let repr = crate::pyvalue::kwargs_repr(&r.kwargs);
            let joined = fingerprint(&[
                "frappe", "btu_hooks.runner.run_task", "BTU-1", "", "m.f", "0 * * * *", "Europe/Paris",
                "bench:long", "600", &repr,
            ]);
            proptest::prop_assert_eq!(s.fingerprint, joined);
        }
    }

    #[test]
    fn policies_come_from_defaults_then_the_row_and_enter_the_fingerprint() {
        use crate::policy::{Catchup, DstGap, Overlap};
        let mut c = ctx(Mode::Frappe);
        let RowOutcome::Loaded(plain) = finish(&c, raw()) else { panic!() };
        assert_eq!(plain.policies, Policies::default());
        c.defaults.catchup = Catchup::All;
        let RowOutcome::Loaded(s) = finish(&c, raw()) else { panic!() };
        assert_eq!(s.policies.catchup, Catchup::All);
        assert_ne!(s.fingerprint, plain.fingerprint);
        let mut r = raw();
        r.policies.overlap = Some("skip".into());
        r.policies.dst_gap = Some("skip".into());
        r.policies.catchup = Some("latest".into());
        let RowOutcome::Loaded(s) = finish(&c, r) else { panic!() };
        assert_eq!((s.policies.overlap, s.policies.catchup), (Overlap::Skip, Catchup::Latest));
        assert_eq!(s.schedule.dst_gap(), DstGap::Skip);
        assert_ne!(s.fingerprint, plain.fingerprint);
        // Back at the defaults: the fingerprint of earlier releases.
        let mut r = raw();
        r.policies.catchup = Some("latest".into());
        let RowOutcome::Loaded(s) = finish(&ctx(Mode::Frappe), r) else { panic!() };
        assert_eq!(s.fingerprint, plain.fingerprint);
        let mut r = raw();
        r.policies.jitter_secs = Some(-5);
        let RowOutcome::Skipped { reason, .. } = finish(&c, r) else { panic!() };
        assert_eq!(reason.code(), "invalid_setting");
        assert!(reason.to_string().contains("jitter_secs"), "{reason}");
    }

    #[test]
    fn interner_keys_schedules_by_dst_policies_too() {
        let ctx = ctx(Mode::Frappe);
        let mut checker = RowChecker::new(&ctx);
        let a = checker.check(Ok(raw()));
        let mut r = raw();
        r.id = "TS-2".into();
        r.policies.dst_overlap = Some("both".into());
        let b = checker.check(Ok(r));
        let (RowOutcome::Loaded(a), RowOutcome::Loaded(b)) = (a, b) else { panic!() };
        assert!(!Arc::ptr_eq(&a.schedule, &b.schedule));
        assert_eq!(b.schedule.dst_overlap(), crate::policy::DstOverlap::Both);
    }

    #[test]
    fn interner_shares_texts_and_schedules() {
        let ctx = ctx(Mode::Frappe);
        let mut checker = RowChecker::new(&ctx);
        let a = checker.check(Ok(raw()));
        let mut r = raw();
        r.id = "TS-2".into();
        let b = checker.check(Ok(r));
        let (RowOutcome::Loaded(a), RowOutcome::Loaded(b)) = (a, b) else { panic!() };
        assert!(Arc::ptr_eq(&a.schedule, &b.schedule));
        assert!(Arc::ptr_eq(&a.zone, &b.zone));
        assert!(Arc::ptr_eq(a.task.as_ref().unwrap(), b.task.as_ref().unwrap()));
    }

    #[test]
    fn known_fingerprint_short_circuits_only_on_a_match() {
        let RowOutcome::Loaded(s) = finish(&ctx(Mode::Frappe), raw()) else { panic!() };
        let id: Arc<str> = Arc::from("TS-1");
        let mut known = KnownFingerprints::default();
        known.insert(id.clone(), s.fingerprint);
        match build(&ctx(Mode::Frappe), &known, raw()) {
            RebuildRow::Unchanged { id: got, fingerprint } => {
                assert!(Arc::ptr_eq(&got, &id));
                assert_eq!(fingerprint, s.fingerprint);
            }
            other => panic!("{other:?}"),
        }
        let mut r = raw();
        r.queue = Some("short".into());
        assert!(matches!(build(&ctx(Mode::Frappe), &known, r), RebuildRow::Loaded(_)));
        known.insert(id, Fingerprint(0));
        assert!(matches!(build(&ctx(Mode::Frappe), &known, raw()), RebuildRow::Loaded(_)));
        let mut r = raw();
        r.cron = Some("61 * * * *".into());
        assert!(matches!(build(&ctx(Mode::Frappe), &known, r), RebuildRow::Skipped(_)));
    }
}
