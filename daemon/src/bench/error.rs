//! Why a bench could not be read at all (a single site's problem is an `Excluded` entry).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("bench {path}: {source}")]
    Path { path: PathBuf, source: std::io::Error },
    #[error("{path}: {problem}")]
    Common { path: PathBuf, problem: String },
}
