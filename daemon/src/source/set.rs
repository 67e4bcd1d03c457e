//! [`SourceSet`]: the sources the engine serves, one per site, by a stable index. Fixed for a
//! configuration that lists its sites; re-read from the bench at every full rebuild (start,
//! interval, SIGHUP) with `[frappe] bench_path`, so a site created or dropped is picked up
//! without a restart. A new site gets the next index; a dropped one keeps its index as
//! [`Source::Dropped`] (it loads no rows, so its schedules leave the plan and Redis) and
//! gets its source back if the site returns.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use tracing::{info, warn};

use super::mariadb::MariaDbSource;
use super::{ConnCap, Source};
use crate::bench::{self, BenchError, same_db};
use crate::config::{Config, DbConfig};

#[derive(Clone)]
pub struct SourceSet {
    current: Arc<RwLock<Arc<Vec<Source>>>>,
    bench: Option<Arc<BenchSites>>,
    /// Every MariaDB source's connections count against it, sites added later too.
    cap: Option<ConnCap>,
}

impl std::fmt::Debug for SourceSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSet")
            .field("sites", &self.snapshot().iter().map(Source::site).collect::<Vec<_>>())
            .finish()
    }
}

/// What a bench-backed set remembers between refreshes.
struct BenchSites {
    /// The configuration as the file says it (before discovery fills it in).
    file_config: Config,
    /// Site name → the database its current source reaches (discovered sites only).
    dbs: Mutex<HashMap<String, DbConfig>>,
    /// Sites left out at the last refresh, with why (logged when that changes).
    excluded: Mutex<BTreeMap<String, String>>,
}

impl SourceSet {
    /// A set that never changes.
    pub fn fixed(sources: Vec<Source>) -> Self {
        let cap = sources.iter().find_map(Source::conn_cap).cloned();
        SourceSet { current: Arc::new(RwLock::new(Arc::new(sources))), bench: None, cap }
    }

    /// The cap of the MariaDB sources' connections (None without any).
    pub fn conn_cap(&self) -> Option<&ConnCap> {
        self.cap.as_ref()
    }

    /// The sources of `file_config` — with `[frappe] bench_path`, after discovering the
    /// bench — and the configuration they were built from.
    pub fn from_config(file_config: &Config) -> Result<(SourceSet, Config), BenchError> {
        let Some(path) = &file_config.frappe.bench_path else {
            return Ok((SourceSet::fixed(Source::all_from_config(file_config)), file_config.clone()));
        };
        let cap = ConnCap::new(file_config.mariadb.max_connections);
        let found = bench::discover(path)?;
        info!(bench = %found.bench_path.display(), bench_id = %found.bench_id, sites = found.sites.len(),
            left_out = found.excluded.len(), "bench discovered");
        let config = found.apply(file_config);
        let dbs = config.sites.iter().filter(|s| s.discovered).map(|s| (s.name.clone(), s.db.clone())).collect();
        let set = SourceSet {
            current: Arc::new(RwLock::new(Arc::new(Source::all_with_cap(&config, &cap)))),
            bench: Some(Arc::new(BenchSites {
                file_config: file_config.clone(),
                dbs: Mutex::new(dbs),
                excluded: Mutex::new(BTreeMap::new()),
            })),
            cap: Some(cap),
        };
        set.log_excluded(found.excluded.iter().map(|x| (x.site.clone(), x.reason.clone())).collect());
        Ok((set, config))
    }

    /// The sources now, by index (cheap: one `Arc` clone).
    pub fn snapshot(&self) -> Arc<Vec<Source>> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Re-reads the bench (no-op for a fixed set) and updates the sources; returns the names
    /// of the sites added, which take the next indices in that order. A bench that cannot
    /// be read keeps the current sites (one warning).
    pub fn refresh(&self) -> Vec<String> {
        let Some(b) = &self.bench else { return Vec::new() };
        let Some(path) = &b.file_config.frappe.bench_path else { return Vec::new() };
        let found = match bench::discover(path) {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "cannot read the bench; keeping the sites found before");
                return Vec::new();
            }
        };
        self.log_excluded(found.excluded.iter().map(|x| (x.site.clone(), x.reason.clone())).collect());
        let config = found.apply(&b.file_config);
        let cap = self.cap.clone().unwrap_or_else(|| ConnCap::new(config.mariadb.max_connections));
        let mut dbs = b.dbs.lock().unwrap_or_else(PoisonError::into_inner);
        let mut sources: Vec<Source> = self.snapshot().as_ref().clone();
        let mut added = Vec::new();
        for site in config.sites.iter().filter(|s| s.discovered) {
            let fresh = || Source::MariaDb(MariaDbSource::new(site, &config, &cap));
            match sources.iter().position(|s| s.site() == site.name) {
                None => {
                    info!(site = %site.name, database = %site.db.describe(), "bench site added");
                    sources.push(fresh());
                    added.push(site.name.clone());
                }
                Some(i) => {
                    let same = matches!(sources[i], Source::MariaDb(_))
                        && dbs.get(&site.name).is_some_and(|db| same_db(db, &site.db));
                    if !same {
                        info!(site = %site.name, database = %site.db.describe(), "bench site (re)configured");
                        close_later(std::mem::replace(&mut sources[i], fresh()));
                    }
                }
            }
            dbs.insert(site.name.clone(), site.db.clone());
        }
        for source in sources.iter_mut() {
            let name = source.site().to_string();
            if dbs.contains_key(&name) && !config.sites.iter().any(|s| s.name == name) {
                info!(site = %name, "bench site gone: its schedules leave the plan");
                dbs.remove(&name);
                close_later(std::mem::replace(source, Source::Dropped(name)));
            }
        }
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(sources);
        added
    }

    fn log_excluded(&self, now: BTreeMap<String, String>) {
        let Some(b) = &self.bench else { return };
        let mut before = b.excluded.lock().unwrap_or_else(PoisonError::into_inner);
        for (site, reason) in &now {
            if before.get(site) != Some(reason) {
                warn!(site = %site, reason = %reason, "bench site left out");
            }
        }
        *before = now;
    }
}

/// Closes a replaced source's connections without holding up the caller.
fn close_later(source: Source) {
    if let Source::MariaDb(_) = &source
        && let Ok(rt) = tokio::runtime::Handle::try_current()
    {
        rt.spawn(async move { source.close().await });
    }
}
