//! `btu check-config [--config PATH]`: validates a daemon configuration file and tries every
//! connection it names (Redis PING, each site's MariaDB `SELECT 1` and schedule load, the
//! schedules file). With `[frappe] bench_path` it first prints what it discovered in the
//! bench (bench id, queue names, Redis, each site's database) and which sites it left out and
//! why. One line per check; exit status 1 when any check fails. Passwords are never printed.

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
    let file_config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            out.push(line(CheckStatus::Fail, "config", e.to_string()));
            return out;
        }
    };
    let (config, discovered) = match &file_config.frappe.bench_path {
        None => (file_config.clone(), Vec::new()),
        Some(bench) => match crate::bench::discover(bench) {
            Ok(d) => {
                let applied = d.apply(&file_config);
                let lines = bench_lines(&d, &file_config, &applied);
                (applied, lines)
            }
            Err(e) => {
                out.push(line(CheckStatus::Fail, "bench", e.to_string()));
                return out;
            }
        },
    };
    let sources: Vec<String> = file_config
        .frappe
        .bench_path
        .iter()
        .map(|p| format!("bench {}", p.display()))
        .chain(file_config.sites.iter().map(|s| format!("site {} ({})", s.name, s.mode)))
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
    out.extend(discovered);
    if let Some(zone) = &config.daemon.time_zone {
        out.push(line(CheckStatus::Ok, "time zone", zone.clone()));
    }
    if !config.sites.is_empty() {
        out.push(line(
            CheckStatus::Ok,
            "mariadb connections",
            format!(
                "at most {} open at once over the {} site(s) ([mariadb] max_connections)",
                config.mariadb.max_connections,
                config.sites.len()
            ),
        ));
    }

    let mut redis_what = format!("redis {}", config.redis.describe());
    let redis = async {
        let crate::rq::RedisConnection { mut conn, address } =
            crate::rq::connect_redis(&config.redis).await.map_err(|e| e.to_string())?;
        crate::engine::store::ping(&mut conn).await.map_err(|e| e.to_string())?;
        let workers = crate::rq::read_workers(&mut conn, &config.redis.key_prefix)
            .await
            .map_err(|e| format!("reading workers: {e}"))?;
        Ok::<_, String>((workers, address))
    };
    let frappe =
        config.sites.iter().any(|s| s.mode == Mode::Frappe) || config.file.iter().any(|f| f.mode == Mode::Frappe);
    let workers: Option<Vec<WorkerInfo>> = match tokio::time::timeout(CHECK_TIMEOUT, redis).await {
        Ok(Ok((workers, address))) => {
            if config.redis.sentinel.is_some() {
                redis_what = format!("{redis_what}: master {address}");
            }
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
                        let why = if m.requires_app() { "left out for now (unreachable; retried): " } else { "" };
                        out.push(line(CheckStatus::Fail, what, format!("{why}{e}")));
                        source.close().await;
                        continue;
                    }
                }
                let frappe_site = config.sites.iter().any(|s| s.name == m.site() && s.mode == Mode::Frappe);
                if m.requires_app() || frappe_site {
                    match m.installed_apps().await {
                        Ok(apps) => {
                            if m.requires_app() {
                                if !apps.iter().any(|a| a == crate::bench::BTU_APP) {
                                    out.push(line(
                                        CheckStatus::Warn,
                                        format!("site {}", m.site()),
                                        format!("left out: BTU app not installed (apps: {})", apps.join(", ")),
                                    ));
                                    source.close().await;
                                    continue;
                                }
                                out.push(line(CheckStatus::Ok, format!("site {} apps", m.site()), apps.join(", ")));
                            }
                            if frappe_site {
                                out.push(runner_app_line(m.site(), &config.frappe.runner, &apps));
                            }
                        }
                        Err(e) => {
                            out.push(line(CheckStatus::Fail, format!("site {} apps", m.site()), e.to_string()));
                            if m.requires_app() {
                                source.close().await;
                                continue;
                            }
                        }
                    }
                }
            }
            Source::File(_) | Source::Dropped(_) => {}
        }
        let what = match &source {
            Source::MariaDb(m) => format!("site {} schedules", m.site()),
            Source::File(f) => format!("site {} schedules file {}", f.site(), f.path().display()),
            Source::Dropped(site) => format!("site {site}"),
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

/// What discovery found in the bench: id, queues, Redis, the sites it serves (from the bench
/// or the file) and the ones it left out.
fn bench_lines(d: &crate::bench::Discovery, file: &Config, applied: &Config) -> Vec<CheckLine> {
    let mut out = Vec::new();
    let id_from = if d.bench_path.to_string_lossy().trim_matches('/').replace('/', "-") == d.bench_id {
        "the bench path"
    } else {
        "bench_id in common_site_config.json"
    };
    out.push(line(
        CheckStatus::Ok,
        format!("bench {}", d.bench_path.display()),
        format!("bench id {} (from {id_from})", d.bench_id),
    ));
    let prefix = &applied.frappe.queue_prefix;
    let from = if file.frappe.queue_prefix_explicit { "[frappe] queue_prefix" } else { "the bench id" };
    out.push(line(
        CheckStatus::Ok,
        "queues",
        format!("{prefix}default, {prefix}short, {prefix}long (prefix from {from})"),
    ));
    let redis_from = if file.redis.url_explicit {
        "the configuration file (wins over redis_queue)".to_string()
    } else {
        match &d.queue_redis.user {
            Some(user) => format!("redis_queue of common_site_config.json, use_rq_auth as user {user}"),
            None => "redis_queue of common_site_config.json".to_string(),
        }
    };
    out.push(line(CheckStatus::Ok, "queue redis", format!("{} (from {redis_from})", applied.redis.describe())));
    for site in &d.sites {
        let detail = if d.discovered(file, &site.name) {
            format!("database {} (from site_config.json)", site.db.describe())
        } else {
            "listed in [[sites]]: the file's entry wins".to_string()
        };
        out.push(line(CheckStatus::Ok, format!("bench site {}", site.name), detail));
    }
    for x in &d.excluded {
        out.push(line(CheckStatus::Warn, format!("bench site {}", x.site), format!("left out: {}", x.reason)));
    }
    if d.sites.is_empty() && d.excluded.is_empty() {
        out.push(line(CheckStatus::Warn, "bench sites", "no site folder with a site_config.json"));
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
