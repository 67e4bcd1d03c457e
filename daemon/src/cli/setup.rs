//! `btu setup supervisor --bench PATH [--user USER]` and `btu setup systemd`: the service
//! set-up of a bench, in the bench's own style. Supervisor: a `[program:<bench>-btu-daemon]`
//! block (the bench's user, `logs/btu-daemon.log`, autorestart) in its own file
//! `config/btu-supervisor.conf`, plus `config/btu_scheduler.toml` (`[frappe] bench_path`,
//! written only when missing); it never touches the `config/supervisor.conf` that
//! `bench setup supervisor` regenerates. systemd: the unit, printed.

use std::path::{Path, PathBuf};

use super::error::CliError;

#[derive(clap::Subcommand, Debug, Clone)]
pub enum SetupCommand {
    /// Write a Supervisor program block for btu-daemon into the bench's config/ folder.
    Supervisor(SupervisorArgs),
    /// Print a systemd unit for btu-daemon (for set-ups without Supervisor).
    Systemd(SystemdArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct SupervisorArgs {
    /// The Frappe bench (e.g. /home/frappe/frappe-bench)
    #[arg(long, value_name = "PATH")]
    pub bench: PathBuf,
    /// The user the daemon runs as [default: the bench's frappe_user, else the bench folder's owner]
    #[arg(long)]
    pub user: Option<String>,
    /// The btu-daemon binary [default: btu-daemon beside this btu, else /usr/local/bin/btu-daemon]
    #[arg(long, value_name = "PATH")]
    pub daemon_bin: Option<PathBuf>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct SystemdArgs {
    /// A Frappe bench: the unit then uses its config/btu_scheduler.toml and its user
    #[arg(long, value_name = "PATH")]
    pub bench: Option<PathBuf>,
    /// The user the daemon runs as [default: with --bench as for supervisor, else frappe]
    #[arg(long)]
    pub user: Option<String>,
    /// The btu-daemon binary [default: btu-daemon beside this btu, else /usr/local/bin/btu-daemon]
    #[arg(long, value_name = "PATH")]
    pub daemon_bin: Option<PathBuf>,
}

/// What a generated file needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// `bench` names programs after the bench folder (`frappe-bench-frappe-web`, …).
    pub bench_name: String,
    pub bench_dir: PathBuf,
    pub user: String,
    pub daemon_bin: PathBuf,
    pub config: PathBuf,
}

impl SetupCommand {
    pub fn run(&self) -> Result<String, CliError> {
        match self {
            SetupCommand::Supervisor(a) => {
                let spec = spec(&a.bench, a.user.clone(), a.daemon_bin.clone())?;
                write_supervisor(&spec)
            }
            SetupCommand::Systemd(a) => match &a.bench {
                Some(bench) => Ok(systemd_unit(&spec(bench, a.user.clone(), a.daemon_bin.clone())?)),
                None => Ok(systemd_unit(&ServiceSpec {
                    bench_name: String::new(),
                    bench_dir: PathBuf::new(),
                    user: a.user.clone().unwrap_or_else(|| "frappe".into()),
                    daemon_bin: a.daemon_bin.clone().unwrap_or_else(default_daemon_bin),
                    config: PathBuf::from(crate::config::DEFAULT_CONFIG_PATH),
                })),
            },
        }
    }
}

fn spec(bench: &Path, user: Option<String>, daemon_bin: Option<PathBuf>) -> Result<ServiceSpec, CliError> {
    let bad = |e: String| CliError::Config(format!("--bench {}: {e}", bench.display()));
    let bench_dir = std::fs::canonicalize(bench).map_err(|e| bad(e.to_string()))?;
    if !bench_dir.join("sites").is_dir() {
        return Err(bad("not a Frappe bench (no sites/ folder)".into()));
    }
    let bench_name = bench_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let user = match user {
        Some(u) => u,
        None => bench_user(&bench_dir).map_err(bad)?,
    };
    Ok(ServiceSpec {
        config: bench_dir.join("config").join("btu_scheduler.toml"),
        bench_name,
        bench_dir,
        user,
        daemon_bin: daemon_bin.unwrap_or_else(default_daemon_bin),
    })
}

/// The bench's `frappe_user` (what `bench setup supervisor` uses), else the folder's owner.
fn bench_user(bench_dir: &Path) -> Result<String, String> {
    let common = bench_dir.join("sites").join("common_site_config.json");
    if let Ok(text) = std::fs::read_to_string(&common)
        && let Ok(json) = crate::bench::frappe_conf::parse_object(&text)
        && let Some(serde_json::Value::String(u)) = json.get("frappe_user")
        && !u.is_empty()
    {
        return Ok(u.clone());
    }
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(bench_dir).map_err(|e| e.to_string())?.uid();
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => Ok(u.name),
        _ => Err(format!("cannot tell the bench's user (owner uid {uid}); pass --user")),
    }
}

fn default_daemon_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("btu-daemon")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("/usr/local/bin/btu-daemon"))
}

/// The daemon's configuration for a bench: the bench path is all it needs.
pub fn bench_config(spec: &ServiceSpec) -> String {
    format!(
        "# btu-daemon on the bench {dir}: sites, databases, the queue Redis and the bench id are\n\
         # read from the bench itself (docs/daemon.md, \"Bench discovery\"). Keys set here win.\n\
         [frappe]\nbench_path = {path}\n\n\
         # MariaDB connections open at once over all the bench's sites together (default 16):\n\
         # [mariadb]\n# max_connections = 16\n",
        dir = spec.bench_dir.display(),
        path = toml_string(&spec.bench_dir.to_string_lossy()),
    )
}

/// The Supervisor program block, in `bench setup supervisor`'s style.
pub fn supervisor_block(spec: &ServiceSpec) -> String {
    let dir = spec.bench_dir.display();
    format!(
        "; btu-daemon for the bench {dir}: written by `btu setup supervisor`; `bench setup supervisor`\n\
         ; does not touch this file. Include it with:\n\
         ;   sudo ln -s {dir}/config/btu-supervisor.conf /etc/supervisor/conf.d/{name}-btu.conf\n\
         ;   sudo supervisorctl reread && sudo supervisorctl update\n\
         ; Re-read sites and schedules without a restart: sudo supervisorctl signal HUP {name}-btu-daemon\n\
         [program:{name}-btu-daemon]\n\
         command={bin} --config {config}\n\
         priority=4\n\
         autostart=true\n\
         autorestart=true\n\
         startsecs=2\n\
         ; SIGTERM: stop taking new work, finish in-flight enqueues, exit 0\n\
         stopsignal=TERM\n\
         stopwaitsecs=20\n\
         stdout_logfile={dir}/logs/btu-daemon.log\n\
         redirect_stderr=true\n\
         user={user}\n\
         directory={dir}\n\
         environment=RUST_LOG=\"info\"\n",
        name = spec.bench_name,
        bin = spec.daemon_bin.display(),
        config = spec.config.display(),
        user = spec.user,
    )
}

/// The systemd unit.
pub fn systemd_unit(spec: &ServiceSpec) -> String {
    let bench_line = if spec.bench_dir.as_os_str().is_empty() {
        String::new()
    } else {
        format!("WorkingDirectory={}\n", spec.bench_dir.display())
    };
    format!(
        "# btu-daemon as a systemd service. Install:\n\
         #   btu setup systemd{bench_flag} | sudo tee /etc/systemd/system/btu-daemon.service\n\
         #   sudo systemctl daemon-reload && sudo systemctl enable --now btu-daemon\n\
         # Re-read sites and schedules: sudo systemctl reload btu-daemon   (sends SIGHUP)\n\
         [Unit]\n\
         Description=BTU scheduler: Frappe BTU task schedules as Python RQ jobs\n\
         After=network-online.target redis-server.service mariadb.service\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         User={user}\n\
         {bench_line}\
         ExecStart={bin} --config {config}\n\
         ExecReload=/bin/kill -HUP $MAINPID\n\
         KillSignal=SIGTERM\n\
         TimeoutStopSec=20\n\
         Restart=on-failure\n\
         RestartSec=2\n\
         NoNewPrivileges=true\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        bench_flag = if spec.bench_dir.as_os_str().is_empty() {
            String::new()
        } else {
            format!(" --bench {}", spec.bench_dir.display())
        },
        user = spec.user,
        bin = spec.daemon_bin.display(),
        config = spec.config.display(),
    )
}

/// Writes `config/btu-supervisor.conf` (replaced) and `config/btu_scheduler.toml` (only when
/// missing); returns what was done and how to include the block.
fn write_supervisor(spec: &ServiceSpec) -> Result<String, CliError> {
    let config_dir = spec.bench_dir.join("config");
    let io = |what: &Path, e: std::io::Error| CliError::Config(format!("{}: {e}", what.display()));
    std::fs::create_dir_all(&config_dir).map_err(|e| io(&config_dir, e))?;
    let mut out = String::new();
    if spec.config.exists() {
        out.push_str(&format!("kept     {} (exists; not overwritten)\n", spec.config.display()));
    } else {
        std::fs::write(&spec.config, bench_config(spec)).map_err(|e| io(&spec.config, e))?;
        out.push_str(&format!("wrote    {}\n", spec.config.display()));
    }
    let conf = config_dir.join("btu-supervisor.conf");
    std::fs::write(&conf, supervisor_block(spec)).map_err(|e| io(&conf, e))?;
    out.push_str(&format!(
        "wrote    {conf}\n\nInclude it in Supervisor (config/supervisor.conf is left alone):\n  \
         sudo ln -s {conf} /etc/supervisor/conf.d/{name}-btu.conf\n  \
         sudo supervisorctl reread && sudo supervisorctl update\nCheck the set-up: btu check-config --config {cfg}\n",
        conf = conf.display(),
        name = spec.bench_name,
        cfg = spec.config.display(),
    ));
    Ok(out)
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("btu-setup-{tag}-{}", std::process::id())).join("frappe-bench");
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("sites")).unwrap();
        std::fs::create_dir_all(d.join("config")).unwrap();
        std::fs::write(d.join("sites/common_site_config.json"), r#"{"frappe_user": "frappe"}"#).unwrap();
        std::fs::write(d.join("config/supervisor.conf"), "; bench's own\n").unwrap();
        d
    }

    #[test]
    fn supervisor_writes_its_own_files_only() {
        let b = bench("sup");
        let cmd = SetupCommand::Supervisor(SupervisorArgs {
            bench: b.clone(),
            user: None,
            daemon_bin: Some("/opt/btu/btu-daemon".into()),
        });
        let out = cmd.run().unwrap();
        let real = std::fs::canonicalize(&b).unwrap();
        let block = std::fs::read_to_string(b.join("config/btu-supervisor.conf")).unwrap();
        assert!(block.contains("[program:frappe-bench-btu-daemon]"), "{block}");
        assert!(
            block.contains(&format!(
                "command=/opt/btu/btu-daemon --config {}/config/btu_scheduler.toml",
                real.display()
            ))
        );
        assert!(block.contains("user=frappe\n") && block.contains("autorestart=true\n"), "{block}");
        assert!(block.contains(&format!("stdout_logfile={}/logs/btu-daemon.log", real.display())), "{block}");
        assert_eq!(std::fs::read_to_string(b.join("config/supervisor.conf")).unwrap(), "; bench's own\n");
        let toml_text = std::fs::read_to_string(b.join("config/btu_scheduler.toml")).unwrap();
        let cfg = crate::config::Config::parse(&toml_text, &b.join("config/btu_scheduler.toml")).unwrap();
        assert_eq!(cfg.frappe.bench_path.as_deref(), Some(real.as_path()));
        assert!(out.contains("/etc/supervisor/conf.d/frappe-bench-btu.conf"), "{out}");
        // Again: the daemon's configuration (maybe edited) is kept.
        std::fs::write(b.join("config/btu_scheduler.toml"), "# mine\n").unwrap();
        let out = cmd.run().unwrap();
        assert!(out.contains("kept"), "{out}");
        assert_eq!(std::fs::read_to_string(b.join("config/btu_scheduler.toml")).unwrap(), "# mine\n");
        let _ = std::fs::remove_dir_all(b.parent().unwrap());
    }

    #[test]
    fn user_flag_wins_and_systemd_prints_a_unit() {
        let b = bench("sysd");
        let cmd = SetupCommand::Systemd(SystemdArgs {
            bench: Some(b.clone()),
            user: Some("erp".into()),
            daemon_bin: Some("/usr/bin/btu-daemon".into()),
        });
        let unit = cmd.run().unwrap();
        assert!(unit.contains("User=erp\n") && unit.contains("ExecReload=/bin/kill -HUP $MAINPID"), "{unit}");
        assert!(unit.contains("ExecStart=/usr/bin/btu-daemon --config "), "{unit}");
        let plain = SetupCommand::Systemd(SystemdArgs { bench: None, user: None, daemon_bin: None }).run().unwrap();
        assert!(plain.contains("User=frappe\n") && plain.contains("/etc/btu_scheduler/btu_scheduler.toml"), "{plain}");
        let e = SetupCommand::Supervisor(SupervisorArgs { bench: "/no/bench".into(), user: None, daemon_bin: None })
            .run()
            .unwrap_err()
            .to_string();
        assert!(e.contains("/no/bench"), "{e}");
        let _ = std::fs::remove_dir_all(b.parent().unwrap());
    }
}
