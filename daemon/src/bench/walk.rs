//! The bench on disk: lists its sites the way Frappe's `get_sites()` does (every directory
//! under `sites/` that is not a symlink and holds a `site_config.json`, sorted) and reads the
//! JSON files [`super::frappe_conf`] interprets. The only file-system code of discovery.

use std::path::{Path, PathBuf};

use super::error::BenchError;
use super::frappe_conf::{self, Json};

/// What was read from a bench's files, before any site was judged.
pub struct BenchFiles {
    /// The real path (symlinks resolved, as Frappe's `get_bench_path()`).
    pub path: PathBuf,
    pub common: Json,
    /// Each site folder's name and its `site_config.json` (parsed, or why not).
    pub sites: Vec<(String, Result<Json, String>)>,
}

pub fn read(bench: &Path) -> Result<BenchFiles, BenchError> {
    let path = std::fs::canonicalize(bench).map_err(|source| BenchError::Path { path: bench.to_path_buf(), source })?;
    let sites_dir = path.join("sites");
    let entries =
        std::fs::read_dir(&sites_dir).map_err(|source| BenchError::Path { path: sites_dir.clone(), source })?;
    let common_path = sites_dir.join("common_site_config.json");
    // Frappe reads a missing common_site_config.json as {}; a broken one is an error here
    // (Frappe prints it and goes on with {}, which would send every job to a wrong queue).
    let common = match std::fs::read_to_string(&common_path) {
        Ok(text) => frappe_conf::parse_object(&text)
            .map_err(|problem| BenchError::Common { path: common_path.clone(), problem })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Json::new(),
        Err(e) => return Err(BenchError::Common { path: common_path, problem: e.to_string() }),
    };
    let mut names = Vec::new();
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else { continue };
        // `os.path.isdir(path) and not os.path.islink(path)`: file_type() does not follow links.
        if !kind.is_dir() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
        if entry.path().join("site_config.json").exists() {
            names.push(name);
        }
    }
    names.sort();
    let sites = names
        .into_iter()
        .map(|name| {
            let file = sites_dir.join(&name).join("site_config.json");
            let conf = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read site_config.json: {e}"))
                .and_then(|t| frappe_conf::parse_object(&t).map_err(|e| format!("site_config.json: {e}")));
            (name, conf)
        })
        .collect();
    Ok(BenchFiles { path, common, sites })
}
