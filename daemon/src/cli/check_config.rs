//! `btu check-config [--config PATH]`: validates a daemon configuration file and tries every
//! connection it names (Redis PING, each site's MariaDB `SELECT 1` and schedule load, the
//! schedules file). One line per check; exit status 1 when any check fails. Passwords are
//! never printed.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use std::collections::BTreeMap;

use super::check_line::{CheckLine, CheckStatus, line};
use super::check_workers::{queue_lines, runner_app_line, worker_lines};
use super::error::CliError;
use crate::config::{self, Config, Mode};
use crate::rq::WorkerInfo;
use crate::source::{RowOutcome, Source};

#[derive(clap::Args, Debug, Clone)]
pub struct CheckConfigArgs {
    /// Configuration file [env: BTU_CONFIG] [default: /etc/btu_scheduler/btu_scheduler.toml]
    #[arg(long, short = 'c', value_name = "PATH")]
    pub config: Option<PathBuf>,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs every check for the file at `path`.
pub async fn check(path: &std::path::Path) -> Vec<CheckLine> {
    let mut out = Vec::new();
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            out.push(line(CheckStatus::Fail, "config", e.to_string()));
            return out;
        }
    };
    let sources: Vec<String> = config
        .sites
        .iter()
        .map(|s| format!("site {} ({})", s.name, s.mode))
        .chain(config.file.iter().map(|f| format!("file {} ({})", f.path.display(), f.mode)))
        .collect();
    out.push(line(
        CheckStatus::Ok,
        format!("config {}", path.display()),
        format!("valid; sources: {}", sources.join(", ")),
    ));
    if !config.unused_keys.is_empty() {
        out.push(line(
            CheckStatus::Warn,
            "config",
            format!("keys not used by this daemon: {}", config.unused_keys.join(", ")),
        ));
    }
    if let Some(zone) = &config.daemon.time_zone {
        out.push(line(CheckStatus::Ok, "time zone", zone.clone()));
    }

    let redis_what = format!("redis {}", crate::secret::redacted_url(config.redis.url.expose()));
    let redis = async {
        let mut conn = crate::rq::connect_with(config.redis.url.expose(), config.redis.tls_ca_file.as_deref())
            .await
            .map_err(|e| e.to_string())?;
        crate::engine::store::ping(&mut conn).await.map_err(|e| e.to_string())?;
        crate::rq::read_workers(&mut conn, &config.redis.key_prefix).await.map_err(|e| format!("reading workers: {e}"))
    };
    let frappe =
        config.sites.iter().any(|s| s.mode == Mode::Frappe) || config.file.iter().any(|f| f.mode == Mode::Frappe);
    let workers: Option<Vec<WorkerInfo>> = match tokio::time::timeout(CHECK_TIMEOUT, redis).await {
        Ok(Ok(workers)) => {
            out.push(line(CheckStatus::Ok, redis_what, "PING answered"));
            out.extend(worker_lines(&workers, frappe));
            Some(workers)
        }
        Ok(Err(e)) => {
            out.push(line(CheckStatus::Fail, redis_what, e));
            None
        }
        Err(_) => {
            out.push(line(CheckStatus::Fail, redis_what, "no answer within 10 s"));
            None
        }
    };
    // queue -> site -> runnable schedules using it
    let mut used: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();

    for source in Source::all_from_config(&config) {
        match &source {
            Source::MariaDb(m) => {
                let what = format!("site {} mariadb {}", m.site(), m.target());
                match m.ping().await {
                    Ok(()) => out.push(line(CheckStatus::Ok, what.clone(), "SELECT 1 answered")),
                    Err(e) => {
                        out.push(line(CheckStatus::Fail, what, e.to_string()));
                        source.close().await;
                        continue;
                    }
                }
                if config.sites.iter().any(|s| s.name == m.site() && s.mode == Mode::Frappe) {
                    match m.installed_apps().await {
                        Ok(apps) => out.push(runner_app_line(m.site(), &config.frappe.runner, &apps)),
                        Err(e) => {
                            out.push(line(CheckStatus::Fail, format!("site {} runner app", m.site()), e.to_string()))
                        }
                    }
                }
            }
            Source::File(_) => {}
        }
        let what = match &source {
            Source::MariaDb(m) => format!("site {} schedules", m.site()),
            Source::File(f) => format!("site {} schedules file {}", f.site(), f.path().display()),
        };
        match source.load_all().await {
            Ok(rows) => {
                let runnable = rows.iter().filter(|r| matches!(r, RowOutcome::Loaded(_))).count();
                out.push(line(
                    CheckStatus::Ok,
                    what.clone(),
                    format!("{runnable} runnable, {} not running", rows.len() - runnable),
                ));
                for r in &rows {
                    match r {
                        RowOutcome::Skipped { schedule, reason, .. } => {
                            out.push(line(CheckStatus::Warn, format!("{what}: {schedule}"), reason.to_string()));
                        }
                        RowOutcome::Loaded(spec) => {
                            *used.entry(spec.queue.clone()).or_default().entry(spec.site.to_string()).or_default() += 1;
                        }
                    }
                }
            }
            Err(e) => out.push(line(CheckStatus::Fail, what, e.to_string())),
        }
        source.close().await;
    }
    if let Some(workers) = &workers {
        out.extend(queue_lines(workers, &used));
    }
    out
}

/// The subcommand for `btu`: the report text when every check passed, else
/// [`CliError::CheckFailed`] carrying the same lines (so the binary exits non-zero).
pub fn run_text(args: &CheckConfigArgs) -> Result<String, CliError> {
    let path = config::resolve_path(args.config.as_deref());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::CheckFailed(format!("FAIL  runtime: {e}")))?;
    let lines = runtime.block_on(check(&path));
    let mut text = String::new();
    for l in &lines {
        let _ = writeln!(text, "{l}");
    }
    if lines.iter().any(|l| l.status == CheckStatus::Fail) { Err(CliError::CheckFailed(text)) } else { Ok(text) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn missing_file_fails_with_its_path() {
        let lines = check(std::path::Path::new("/nonexistent/btu.toml")).await;
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].status, CheckStatus::Fail);
        assert!(lines[0].detail.contains("/nonexistent/btu.toml"), "{}", lines[0]);
    }

    #[tokio::test]
    async fn bad_connections_fail_without_printing_passwords() {
        let dir = std::env::temp_dir().join(format!("btu-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "[redis]\nurl = \"redis://:redispw123@127.0.0.1:1/0\"\n[[sites]]\nname = \"a.local\"\nport = 1\npassword = \"dbpw456\"\ndatabase = \"x\"\n",
        )
        .unwrap();
        let lines = check(&path).await;
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        assert!(!text.contains("redispw123") && !text.contains("dbpw456"), "{text}");
        assert_eq!(lines.iter().filter(|l| l.status == CheckStatus::Fail).count(), 2, "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
