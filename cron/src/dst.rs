//! The daylight-saving policies a schedule may choose instead of the default rule:
//! [`DstGap`] (wall times a spring-forward skips) and [`DstOverlap`] (wall times a fall-back
//! repeats). The defaults are the Vixie cron / cronie rule (`docs/cron.md`).

use std::fmt;
use std::str::FromStr;

/// What a fixed-time run whose wall time falls in a spring-forward gap does. Wildcard jobs
/// never run inside a gap, whichever is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DstGap {
    /// Run at the first real instant after the gap (several gap times collapse into one run).
    #[default]
    Shift,
    /// Do not run: the wall time does not exist that day.
    Skip,
}

/// Which passes of a fall-back overlap a run whose wall time occurs twice runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DstOverlap {
    /// Fixed-time jobs run once (first pass), wildcard jobs in both passes.
    #[default]
    Auto,
    /// Every job runs in the first pass only.
    First,
    /// Every job runs in the second pass only.
    Last,
    /// Every job runs in both passes.
    Both,
}

/// A policy value that is not one of the allowed spellings.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("{value:?} is not one of {allowed}")]
pub struct PolicyValueError {
    pub value: String,
    /// The allowed spellings, `a|b|c`.
    pub allowed: &'static str,
}

impl DstGap {
    pub const ALL: [DstGap; 2] = [DstGap::Shift, DstGap::Skip];
    pub const ALLOWED: &'static str = "shift|skip";

    pub fn as_str(self) -> &'static str {
        match self {
            DstGap::Shift => "shift",
            DstGap::Skip => "skip",
        }
    }
}

impl DstOverlap {
    pub const ALL: [DstOverlap; 4] = [DstOverlap::Auto, DstOverlap::First, DstOverlap::Last, DstOverlap::Both];
    pub const ALLOWED: &'static str = "auto|first|last|both";

    pub fn as_str(self) -> &'static str {
        match self {
            DstOverlap::Auto => "auto",
            DstOverlap::First => "first",
            DstOverlap::Last => "last",
            DstOverlap::Both => "both",
        }
    }

    /// Whether a job (wildcard or not) runs in the first and in the second pass.
    pub(crate) fn passes(self, wildcard: bool) -> (bool, bool) {
        match self {
            DstOverlap::Auto => (true, wildcard),
            DstOverlap::First => (true, false),
            DstOverlap::Last => (false, true),
            DstOverlap::Both => (true, true),
        }
    }
}

/// Parses `text` (trimmed, case-insensitive) as one of `all` by its spelling.
pub fn parse_policy<T: Copy>(
    text: &str,
    all: &[T],
    name: impl Fn(T) -> &'static str,
    allowed: &'static str,
) -> Result<T, PolicyValueError> {
    let t = text.trim();
    all.iter()
        .copied()
        .find(|v| name(*v).eq_ignore_ascii_case(t))
        .ok_or_else(|| PolicyValueError { value: text.to_string(), allowed })
}

impl FromStr for DstGap {
    type Err = PolicyValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_policy(s, &DstGap::ALL, DstGap::as_str, DstGap::ALLOWED)
    }
}

impl FromStr for DstOverlap {
    type Err = PolicyValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_policy(s, &DstOverlap::ALL, DstOverlap::as_str, DstOverlap::ALLOWED)
    }
}

impl fmt::Display for DstGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for DstOverlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip_and_errors_name_the_choices() {
        for g in DstGap::ALL {
            assert_eq!(g.as_str().parse::<DstGap>(), Ok(g));
        }
        for o in DstOverlap::ALL {
            assert_eq!(o.as_str().parse::<DstOverlap>(), Ok(o));
        }
        assert_eq!(" Skip ".parse::<DstGap>(), Ok(DstGap::Skip));
        assert_eq!(DstGap::default(), DstGap::Shift);
        assert_eq!(DstOverlap::default(), DstOverlap::Auto);
        let e = "twice".parse::<DstOverlap>().unwrap_err().to_string();
        assert_eq!(e, "\"twice\" is not one of auto|first|last|both");
        assert!("".parse::<DstGap>().unwrap_err().to_string().contains("shift|skip"));
    }
}
