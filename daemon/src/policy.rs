//! The per-schedule planning policies (issue 9): [`Overlap`], [`Catchup`], the jitter and the
//! daylight-saving policies of the cron crate, together as [`Policies`]. Pure: names, parsing
//! and defaults only; the engine, the sources and the Redis step apply them.
//!
//! Every value has one spelling (`as_str`), parsed case-insensitively (`FromStr`; the error
//! names the value and the allowed ones). The defaults are the behaviour before issue 9.

use std::fmt;
use std::str::FromStr;

use btu_cron::parse_policy;
pub use btu_cron::{DstGap, DstOverlap, PolicyValueError};

/// What a due run does while the schedule's previous job is still queued or running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Overlap {
    /// Enqueue it anyway (the behaviour before issue 9).
    #[default]
    Allow,
    /// Do not enqueue it while the previous job is queued, deferred, scheduled or started.
    Skip,
    /// Cancel a still-queued previous job and enqueue the new one; a started one is left to finish.
    Replace,
}

/// Which of the runs missed while no daemon ran (within `missed_run_grace_secs`) are enqueued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Catchup {
    /// The latest missed run only (the behaviour before issue 9).
    #[default]
    Latest,
    /// Every missed run, oldest first, each with its own job id.
    All,
    /// None: planning resumes at the next run.
    None,
}

impl Overlap {
    pub const ALL: [Overlap; 3] = [Overlap::Allow, Overlap::Skip, Overlap::Replace];
    pub const ALLOWED: &'static str = "allow|skip|replace";

    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Allow => "allow",
            Overlap::Skip => "skip",
            Overlap::Replace => "replace",
        }
    }
}

impl Catchup {
    pub const ALL: [Catchup; 3] = [Catchup::Latest, Catchup::All, Catchup::None];
    pub const ALLOWED: &'static str = "latest|all|none";

    pub fn as_str(self) -> &'static str {
        match self {
            Catchup::Latest => "latest",
            Catchup::All => "all",
            Catchup::None => "none",
        }
    }
}

impl FromStr for Overlap {
    type Err = PolicyValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_policy(s, &Overlap::ALL, Overlap::as_str, Overlap::ALLOWED)
    }
}

impl FromStr for Catchup {
    type Err = PolicyValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_policy(s, &Catchup::ALL, Catchup::as_str, Catchup::ALLOWED)
    }
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Catchup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The largest `jitter_secs` accepted: one day.
pub const MAX_JITTER_SECS: u32 = 86_400;

/// A schedule's effective policies: the config's `[defaults]`, overridden by the schedule's own
/// settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Policies {
    pub overlap: Overlap,
    pub catchup: Catchup,
    /// Runs are enqueued at due + d, d in `[0, jitter_secs)` (0 = at the due instant).
    pub jitter_secs: u32,
    pub dst_gap: DstGap,
    pub dst_overlap: DstOverlap,
}

/// The policy settings by their key names, in the order they are listed everywhere.
pub const POLICY_KEYS: [&str; 5] = ["overlap", "catchup", "jitter_secs", "dst_gap", "dst_overlap"];

/// Why a policy setting was refused: its key and the problem.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("{key}: {problem}")]
pub struct PolicyError {
    pub key: &'static str,
    pub problem: String,
}

/// Policy settings as a source or the config file read them, before checking: `None` (or an
/// empty text) keeps the value underneath.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyTexts {
    pub overlap: Option<String>,
    pub catchup: Option<String>,
    pub jitter_secs: Option<i64>,
    pub dst_gap: Option<String>,
    pub dst_overlap: Option<String>,
}

impl PolicyTexts {
    /// `base` with these settings applied; the first invalid one is the error.
    pub fn apply(&self, base: Policies) -> Result<Policies, PolicyError> {
        fn pick<T: FromStr<Err = PolicyValueError>>(
            key: &'static str,
            text: &Option<String>,
            base: T,
        ) -> Result<T, PolicyError> {
            match text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                None => Ok(base),
                Some(t) => t.parse().map_err(|e: PolicyValueError| PolicyError { key, problem: e.to_string() }),
            }
        }
        let jitter_secs = match self.jitter_secs {
            None => base.jitter_secs,
            Some(n) => u32::try_from(n).ok().filter(|n| *n <= MAX_JITTER_SECS).ok_or_else(|| PolicyError {
                key: "jitter_secs",
                problem: format!("{n} is not a number of seconds from 0 to {MAX_JITTER_SECS}"),
            })?,
        };
        Ok(Policies {
            overlap: pick("overlap", &self.overlap, base.overlap)?,
            catchup: pick("catchup", &self.catchup, base.catchup)?,
            jitter_secs,
            dst_gap: pick("dst_gap", &self.dst_gap, base.dst_gap)?,
            dst_overlap: pick("dst_overlap", &self.dst_overlap, base.dst_overlap)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip_and_default_to_the_old_behaviour() {
        for o in Overlap::ALL {
            assert_eq!(o.as_str().parse::<Overlap>(), Ok(o));
        }
        for c in Catchup::ALL {
            assert_eq!(c.as_str().parse::<Catchup>(), Ok(c));
        }
        let p = Policies::default();
        assert_eq!((p.overlap, p.catchup, p.jitter_secs), (Overlap::Allow, Catchup::Latest, 0));
        assert_eq!((p.dst_gap, p.dst_overlap), (DstGap::Shift, DstOverlap::Auto));
        assert_eq!("SKIP".parse::<Overlap>(), Ok(Overlap::Skip));
        assert_eq!(
            "sometimes".parse::<Catchup>().unwrap_err().to_string(),
            "\"sometimes\" is not one of latest|all|none"
        );
    }

    #[test]
    fn texts_override_the_base_and_name_the_bad_key() {
        let base = Policies { catchup: Catchup::All, jitter_secs: 5, ..Policies::default() };
        let texts =
            PolicyTexts { overlap: Some(" replace ".into()), dst_gap: Some(String::new()), ..Default::default() };
        let p = texts.apply(base).unwrap();
        assert_eq!(
            (p.overlap, p.catchup, p.jitter_secs, p.dst_gap),
            (Overlap::Replace, Catchup::All, 5, DstGap::Shift)
        );
        let bad = PolicyTexts { dst_overlap: Some("twice".into()), ..Default::default() };
        let e = bad.apply(base).unwrap_err();
        assert_eq!(e.key, "dst_overlap");
        assert!(e.to_string().contains("auto|first|last|both"), "{e}");
        for n in [-1, i64::from(MAX_JITTER_SECS) + 1] {
            let e = PolicyTexts { jitter_secs: Some(n), ..Default::default() }.apply(base).unwrap_err();
            assert_eq!(e.key, "jitter_secs");
        }
        assert_eq!(PolicyTexts { jitter_secs: Some(0), ..Default::default() }.apply(base).unwrap().jitter_secs, 0);
    }
}
