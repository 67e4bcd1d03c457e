//! [`SourceError`]: a source as a whole could not be read (one bad row never is one).

/// `Clone`: a coalesced read's error goes to every caller of its batch.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    #[error("site {site}: database {target}: {message}")]
    Database { site: String, target: String, message: String },
    #[error("site {site}: database {target}: no answer within {secs} s")]
    Timeout { site: String, target: String, secs: u64 },
    #[error("schedules file {path}: {message}")]
    File { path: String, message: String },
    /// A coalesced read of the site ended without an answer (`source::coalesce`).
    #[error("site {site}: the read of its schedules stopped before answering ({reason})")]
    Interrupted { site: String, reason: String },
}
