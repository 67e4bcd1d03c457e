//! One `btu check-config` verdict line: `ok  `/`warn`/`FAIL`, what was checked, the detail.

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    pub status: CheckStatus,
    pub what: String,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    Ok,
    Warn,
    Fail,
}

impl std::fmt::Display for CheckLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tag = match self.status {
            CheckStatus::Ok => "ok  ",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "FAIL",
        };
        write!(f, "{tag}  {}: {}", self.what, self.detail)
    }
}

pub fn line(status: CheckStatus, what: impl Into<String>, detail: impl Into<String>) -> CheckLine {
    CheckLine { status, what: what.into(), detail: detail.into() }
}
