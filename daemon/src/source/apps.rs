//! Which Frappe apps a site has installed, and the gate that keeps a site discovered in a
//! bench out of the plan while the BTU app is not installed on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use tracing::{info, warn};

use crate::bench::BTU_APP;

/// Frappe v15's `get_installed_apps()` reads the `installed_apps` global default (a JSON
/// list in `tabDefaultValue`); `tabInstalled Application` is read too (real v15 sites often
/// leave it empty, other versions may lack the default): the union counts.
const SELECT_INSTALLED_DEFAULT: &str =
    "SELECT defvalue FROM tabDefaultValue WHERE defkey = ? AND parent IN ('__global', '__default')";
const SELECT_INSTALLED_TABLE: &str = "SELECT app_name FROM `tabInstalled Application`";
/// MariaDB's ER_NO_SUCH_TABLE.
const NO_SUCH_TABLE: u16 = 1146;

const UNKNOWN: u8 = 0;
const INSTALLED: u8 = 1;
const MISSING: u8 = 2;

/// Why the installed apps could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppsError {
    #[error(transparent)]
    Db(#[from] mysql_async::Error),
    #[error("tabDefaultValue installed_apps is not a JSON list: {0}")]
    NotAList(serde_json::Error),
}

/// The apps installed on the site behind `conn`: sorted, without duplicates or blanks.
pub(crate) async fn installed_apps(conn: &mut Conn) -> Result<Vec<String>, AppsError> {
    let lists: Vec<Option<String>> = conn.exec(SELECT_INSTALLED_DEFAULT, ("installed_apps",)).await?;
    let mut apps = Vec::new();
    for list in lists.into_iter().flatten() {
        apps.extend(serde_json::from_str::<Vec<String>>(&list).map_err(AppsError::NotAList)?);
    }
    match conn.query::<Option<String>, _>(SELECT_INSTALLED_TABLE).await {
        Ok(names) => apps.extend(names.into_iter().flatten()),
        Err(mysql_async::Error::Server(e)) if e.code == NO_SUCH_TABLE => {}
        Err(e) => return Err(e.into()),
    }
    apps.retain(|a| !a.is_empty());
    apps.sort();
    apps.dedup();
    Ok(apps)
}

/// For a discovered site: whether BTU is installed, asked on every full load (so installing
/// or removing it is seen at the next rebuild or SIGHUP) and remembered for notifies.
#[derive(Debug, Clone)]
pub(crate) struct AppGate {
    site: Arc<str>,
    app: Option<&'static str>,
    state: Arc<AtomicU8>,
}

impl AppGate {
    pub fn new(site: Arc<str>, discovered: bool) -> Self {
        AppGate { site, app: discovered.then_some(BTU_APP), state: Arc::new(AtomicU8::new(UNKNOWN)) }
    }

    pub fn required(&self) -> bool {
        self.app.is_some()
    }

    /// Whether rows may be read: a full load (`one` = None) asks the database; a single
    /// row reuses the last answer. One log line when the answer changes.
    pub async fn open(&self, one: Option<&str>, conn: &mut Conn) -> Result<bool, AppsError> {
        let Some(app) = self.app else { return Ok(true) };
        if one.is_some() {
            return Ok(self.state.load(Ordering::Relaxed) != MISSING);
        }
        let installed = installed_apps(conn).await?.iter().any(|a| a == app);
        let state = if installed { INSTALLED } else { MISSING };
        if self.state.swap(state, Ordering::Relaxed) != state {
            if installed {
                info!(site = %self.site, app, "app installed: the site's schedules are served");
            } else {
                warn!(site = %self.site, app, "app not installed: site left out (nothing planned)");
            }
        }
        Ok(installed)
    }
}
