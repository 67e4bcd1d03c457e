//! `btu list-jobs` and `btu show-job JOB_ID`: the RQ jobs in the Redis of a daemon
//! configuration, read directly (the daemon need not run). `list-jobs` lists the queued jobs
//! this daemon wrote (ids of either form, `docs/rq.md` "Job ids"), per queue; `show-job` prints
//! one job's fields, its decoded call and its status. Both take `--json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use redis::aio::ConnectionManager;
use serde::Serialize;

use super::error::CliError;
use crate::config::{self, Config};
use crate::rq::{self, decode_job_data, is_daemon_job_id};

/// The options both commands take.
#[derive(clap::Args, Debug, Clone)]
pub struct JobsArgs {
    /// Configuration file whose Redis is read [env: BTU_CONFIG] [default: /etc/btu_scheduler/btu_scheduler.toml]
    #[arg(long, short = 'c', value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ShowJobArgs {
    /// The RQ job id (as `btu list-jobs`, `btu history` or the BTU schedule's redis_job_id show it).
    pub job_id: String,
    #[command(flatten)]
    pub opts: JobsArgs,
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// One queued job in `list-jobs`.
#[derive(Debug, Serialize)]
pub struct QueuedJob {
    pub job_id: String,
    pub status: Option<String>,
    pub enqueued_at: Option<String>,
    pub description: Option<String>,
}

/// A queue holding jobs this daemon wrote.
#[derive(Debug, Serialize)]
pub struct QueueJobs {
    pub queue: String,
    /// Every id in the queue, ours or not.
    pub length: usize,
    pub jobs: Vec<QueuedJob>,
}

#[derive(Debug, Serialize)]
pub struct JobList {
    pub queues: Vec<QueueJobs>,
}

/// `btu show-job`'s answer.
#[derive(Debug, Serialize)]
pub struct JobDetails {
    pub job_id: String,
    pub exists: bool,
    /// Every field but `data`, as text (binary values as `<N bytes>`).
    pub fields: BTreeMap<String, String>,
    pub call: Option<CallView>,
    /// Why `data` did not decode (missing, or not a plain-value pickle).
    pub call_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CallView {
    /// `func(arg, key=value)`.
    pub text: String,
    pub func: String,
    /// Python `repr()` of each positional argument.
    pub args: Vec<String>,
    /// Each keyword argument, in order, its value as Python `repr()`.
    pub kwargs: Vec<KwargView>,
}

#[derive(Debug, Serialize)]
pub struct KwargView {
    pub name: String,
    pub value: String,
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| CliError::Redis(e.to_string()))
}

async fn connect(config: &Config) -> Result<ConnectionManager, CliError> {
    match tokio::time::timeout(TIMEOUT, rq::connect_redis(&config.redis)).await {
        Ok(Ok(c)) => Ok(c.conn),
        Ok(Err(e)) => Err(CliError::Redis(e.to_string())),
        Err(_) => Err(CliError::Redis(format!("{}: no answer within 10 s", config.redis.describe()))),
    }
}

fn load(args: &JobsArgs) -> Result<Config, CliError> {
    let config =
        Config::load(&config::resolve_path(args.config.as_deref())).map_err(|e| CliError::Config(e.to_string()))?;
    crate::bench::effective(&config).map_err(|e| CliError::Config(e.to_string()))
}

fn redis_err(e: redis::RedisError) -> CliError {
    CliError::Redis(e.to_string())
}

/// Reads the queued jobs this daemon wrote, per queue (queues in name order, jobs in queue
/// order: the head is taken next).
pub async fn list_jobs(conn: &mut ConnectionManager, prefix: &str) -> Result<JobList, CliError> {
    let mut queue_keys: Vec<String> =
        redis::cmd("SMEMBERS").arg(format!("{prefix}:queues")).query_async(conn).await.map_err(redis_err)?;
    queue_keys.sort();
    let queue_prefix = format!("{prefix}:queue:");
    let mut queues = Vec::new();
    for key in queue_keys {
        let Some(name) = key.strip_prefix(&queue_prefix) else { continue };
        let ids: Vec<String> =
            redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).query_async(conn).await.map_err(redis_err)?;
        let ours: Vec<&String> = ids.iter().filter(|id| is_daemon_job_id(id)).collect();
        if ours.is_empty() {
            continue;
        }
        let mut pipe = redis::pipe();
        for id in &ours {
            pipe.cmd("HMGET").arg(format!("{prefix}:job:{id}")).arg("status").arg("enqueued_at").arg("description");
        }
        let fields: Vec<(Option<String>, Option<String>, Option<String>)> =
            pipe.query_async(conn).await.map_err(redis_err)?;
        let jobs = ours
            .into_iter()
            .zip(fields)
            .map(|(id, (status, enqueued_at, description))| QueuedJob {
                job_id: id.clone(),
                status,
                enqueued_at,
                description,
            })
            .collect();
        queues.push(QueueJobs { queue: name.to_string(), length: ids.len(), jobs });
    }
    Ok(JobList { queues })
}

/// Reads one job: its fields and its decoded call.
pub async fn show_job(conn: &mut ConnectionManager, prefix: &str, job_id: &str) -> Result<JobDetails, CliError> {
    let hash: BTreeMap<String, Vec<u8>> =
        redis::cmd("HGETALL").arg(format!("{prefix}:job:{job_id}")).query_async(conn).await.map_err(redis_err)?;
    let (call, call_error) = match hash.get("data").map(|d| decode_job_data(d)) {
        Some(Ok(c)) => (
            Some(CallView {
                text: rq::describe(&c.func, &c.args, &c.kwargs),
                args: c.args.iter().map(|a| a.to_python_repr()).collect(),
                kwargs: c
                    .kwargs
                    .iter()
                    .map(|(k, v)| KwargView { name: k.clone(), value: v.to_python_repr() })
                    .collect(),
                func: c.func,
            }),
            None,
        ),
        Some(Err(e)) => (None, Some(e)),
        None if hash.is_empty() => (None, None),
        None => (None, Some("the job has no data field".to_string())),
    };
    let fields = hash
        .iter()
        .filter(|(k, _)| k.as_str() != "data")
        .map(|(k, v)| {
            let text = match std::str::from_utf8(v) {
                Ok(s) if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => s.to_string(),
                _ => format!("<{} bytes>", v.len()),
            };
            (k.clone(), text)
        })
        .collect();
    Ok(JobDetails { job_id: job_id.to_string(), exists: !hash.is_empty(), fields, call, call_error })
}

fn json<T: Serialize>(value: &T) -> Result<String, CliError> {
    let mut s = serde_json::to_string_pretty(value).map_err(|e| CliError::Json(e.to_string()))?;
    s.push('\n');
    Ok(s)
}

/// The text `btu list-jobs` prints.
pub fn list_text(list: &JobList) -> String {
    if list.queues.is_empty() {
        return "no queued jobs written by btu-daemon\n".to_string();
    }
    let mut out = String::new();
    for q in &list.queues {
        let _ = writeln!(out, "queue {}: {} queued by btu-daemon ({} in the queue)", q.queue, q.jobs.len(), q.length);
        for j in &q.jobs {
            let _ = writeln!(
                out,
                "  {}  {}  enqueued {}  {}",
                j.job_id,
                j.status.as_deref().unwrap_or("(no job hash)"),
                j.enqueued_at.as_deref().unwrap_or("-"),
                j.description.as_deref().unwrap_or("")
            );
        }
    }
    out
}

/// Fields shown first, in this order; the rest follow by name.
const FIELD_ORDER: [&str; 12] = [
    "status",
    "origin",
    "description",
    "created_at",
    "enqueued_at",
    "started_at",
    "ended_at",
    "timeout",
    "result_ttl",
    "failure_ttl",
    "worker_name",
    "last_heartbeat",
];

/// The text `btu show-job` prints.
pub fn show_text(d: &JobDetails) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "job {}", d.job_id);
    let known = FIELD_ORDER.iter().filter_map(|k| d.fields.get_key_value(*k));
    let rest = d.fields.iter().filter(|(k, _)| !FIELD_ORDER.contains(&k.as_str()));
    for (k, v) in known.chain(rest) {
        let _ = writeln!(out, "  {k:<14} {v}");
    }
    match (&d.call, &d.call_error) {
        (Some(c), _) => {
            let _ = writeln!(out, "  {:<14} {}", "call", c.text);
        }
        (None, Some(e)) => {
            let _ = writeln!(out, "  {:<14} not decoded: {e}", "call");
        }
        (None, None) => {}
    }
    out
}

/// `btu list-jobs`.
pub fn run_list(args: &JobsArgs) -> Result<String, CliError> {
    let config = load(args)?;
    let list = runtime()?.block_on(async {
        let mut conn = connect(&config).await?;
        tokio::time::timeout(TIMEOUT, list_jobs(&mut conn, &config.redis.key_prefix))
            .await
            .map_err(|_| CliError::Redis("no answer within 10 s".into()))?
    })?;
    if args.json { json(&list) } else { Ok(list_text(&list)) }
}

/// `btu show-job JOB_ID`: an unknown id is an error (exit status 1), also with `--json`.
pub fn run_show(args: &ShowJobArgs) -> Result<String, CliError> {
    let config = load(&args.opts)?;
    let details = runtime()?.block_on(async {
        let mut conn = connect(&config).await?;
        tokio::time::timeout(TIMEOUT, show_job(&mut conn, &config.redis.key_prefix, &args.job_id))
            .await
            .map_err(|_| CliError::Redis("no answer within 10 s".into()))?
    })?;
    if !details.exists {
        return Err(CliError::NoSuchJob(args.job_id.clone()));
    }
    if args.opts.json { json(&details) } else { Ok(show_text(&details)) }
}
