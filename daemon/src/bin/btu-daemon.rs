//! `btu-daemon [--config PATH]`: runs BTU schedules as RQ jobs.
//!
//! Config path: `--config`, else `$BTU_CONFIG`, else `/etc/btu_scheduler/btu_scheduler.toml`.
//! SIGHUP rebuilds from the sources; SIGTERM/SIGINT stop taking new work, finish in-flight
//! enqueues and exit 0.

use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::Arc;

use btu::config::{self, Config, LogFormat};
use btu::engine::{Engine, EngineHandle, EngineOptions};
use btu::metrics::{self, Readiness};
use btu::server::{self, ServerOptions};
use btu::source::{Source, SourceSet};
use btu::systemd;
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

/// jemalloc instead of glibc malloc: the plan is ~10 small allocations per schedule, which
/// glibc rounds up to 32-byte chunks with headers and fragments across its per-thread arenas
/// (a rebuild's rows are built on a loader thread and freed by the engine's). Measured at
/// 100k schedules: peak RSS 125 -> 96 MB (docs/daemon.md, "Memory").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's `malloc_conf`, read at its start. One arena: memory a rebuild frees on one
/// thread is reused by the next rebuild's rows built on another (with one arena per thread
/// the all-changed rebuild of 100k schedules peaked at 105-121 MB instead of 96); per-thread
/// caches still serve most allocations without a lock.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: MallocConf = MallocConf(c"narenas:1".as_ptr());

/// A `const char *` jemalloc reads; the text is a `'static` literal, never written.
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);
// SAFETY: the pointer is to an immutable static C string.
unsafe impl Sync for MallocConf {}

#[derive(Parser, Debug)]
#[command(name = "btu-daemon", version, about = "Runs Frappe BTU task schedules as Python RQ jobs")]
struct Args {
    /// Configuration file [env: BTU_CONFIG] [default: /etc/btu_scheduler/btu_scheduler.toml]
    #[arg(long, short = 'c', value_name = "PATH")]
    config: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("btu-daemon: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config) {
    // RUST_LOG wins over the file, so an operator can turn up one module without editing it.
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(v),
        _ => EnvFilter::try_new(config.daemon.log_level.as_deref().unwrap_or("info").to_lowercase()),
    }
    .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: under Supervisor/systemd the log is a file or the journal,
    // where escape codes make lines hard to grep.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    match config.daemon.log_format {
        LogFormat::Text => fmt.with_ansi(ansi).init(),
        // One object per line: timestamp, level, the message and the event's fields at the top
        // level (the same fields as a text line), for log shippers.
        LogFormat::Json => fmt.json().flatten_event(true).with_current_span(false).with_span_list(false).init(),
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let path = config::resolve_path(args.config.as_deref());
    let config = Config::load(&path)?;
    init_logging(&config);
    info!(config = %path.display(), version = env!("CARGO_PKG_VERSION"), "btu-daemon starting");
    if !config.unused_keys.is_empty() {
        warn!(keys = %config.unused_keys.join(", "), "configuration keys not used by this daemon (ignored)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("btu-daemon")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(file_config: Config) -> anyhow::Result<()> {
    // With [frappe] bench_path the bench is read here (and again at every full rebuild).
    let (sources, config) = SourceSet::from_config(&file_config)?;
    for s in sources.snapshot().iter() {
        match s {
            Source::MariaDb(m) => info!(site = %m.site(), database = %m.target(), "source: MariaDB"),
            Source::File(f) => info!(site = %f.site(), path = %f.path().display(), "source: schedules file"),
            Source::Dropped(_) => {}
        }
    }
    raise_fd_limit();
    // Bind before the engine starts: a second daemon on the same socket (or a taken metrics
    // port) must stop here, before it fires anything.
    let metrics_listener = match config.metrics.listen {
        Some(addr) => Some(metrics::bind(addr).await?),
        None => None,
    };
    let bound = server::bind(ServerOptions::from_config(&config)).await?;
    let options = EngineOptions::from_config(&config);
    let metrics = options.metrics.clone();
    let (engine, handle) = Engine::with_source_set(options, sources);
    let engine_task = tokio::spawn(engine.run());
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server_ctx = Arc::new(server::Context::from_config(handle.clone(), &config).with_metrics(metrics.clone()));
    let server_task = tokio::spawn(bound.run(server_ctx, async move {
        let _ = server_stopped.await;
    }));
    let ready = Arc::new(Readiness::default());
    ready.set_socket(true);
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics_task = metrics_listener.map(|listener| {
        tokio::spawn(metrics::serve(listener, metrics, ready.clone(), handle.clone(), async move {
            let _ = metrics_stopped.await;
        }))
    });
    let notifier = tokio::spawn(systemd::report(handle.clone()));
    watch_signals(&handle).await?;
    notifier.abort();
    systemd::stopping();
    // The server stops accepting first, so no new request meets an engine that is shutting down.
    let _ = stop_server.send(());
    server_task.await.context("socket server task")?;
    ready.set_socket(false);
    handle.shutdown().await;
    engine_task.await.context("engine task")?;
    let _ = stop_metrics.send(());
    if let Some(task) = metrics_task {
        task.await.context("metrics listener task")?;
    }
    info!("btu-daemon stopped");
    Ok(())
}

/// Raises the soft open-files limit to the hard one: each client connection is a descriptor,
/// and 1,000+ concurrent clients exceed the usual soft limit of 1024.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => info!(from = soft, to = hard, "raised the open-files limit"),
            Err(e) => warn!(soft, hard, error = %e, "cannot raise the open-files limit"),
        },
        Ok(_) => {}
        Err(e) => warn!(error = %e, "cannot read the open-files limit"),
    }
}

/// Returns after SIGTERM/SIGINT (the caller then stops the server and the engine); SIGHUP
/// triggers a rebuild.
async fn watch_signals(handle: &EngineHandle) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    loop {
        tokio::select! {
            _ = term.recv() => { info!(signal = "SIGTERM", "stopping"); break; }
            _ = int.recv() => { info!(signal = "SIGINT", "stopping"); break; }
            _ = hup.recv() => { info!(signal = "SIGHUP", "rebuilding schedules"); handle.request_rebuild(); }
        }
    }
    Ok(())
}
