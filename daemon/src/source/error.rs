//! [`SourceError`]: a source as a whole could not be read (one bad row never is one).

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("site {site}: database {target}: {message}")]
    Database { site: String, target: String, message: String },
    #[error("site {site}: database {target}: no answer within {secs} s")]
    Timeout { site: String, target: String, secs: u64 },
    #[error("schedules file {path}: {message}")]
    File { path: String, message: String },
}
