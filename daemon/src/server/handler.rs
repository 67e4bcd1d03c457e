//! Serving one decoded request: a protocol [`Request`] becomes an [`EngineHandle`] call, whose
//! result becomes a protocol [`Response`] (or a typed error answer).

use std::sync::Arc;
use std::time::Instant;

use btu_protocol::{
    self as proto, Cancelled, ErrorCode, ErrorReply, History, HistoryRun, NextRun, Notified, Pong, RanNow, Rebuilt,
    Request, Response, Status, Upcoming,
};
use chrono::Utc;
use tracing::warn;

use super::actions;
use super::instants::{local, utc};
use crate::config::Config;
use crate::engine::{self, AuditRecord, Caller, EngineError, EngineHandle, ScheduleStatus};
use crate::metrics::Metrics;
use crate::policy::Policies;
use crate::source::SkipReason;

/// Most runs one `upcoming` or `history` answer lists: keeps the answer far below the frame
/// limit (a run is ~150 bytes) whatever count a client asks for.
pub const MAX_LISTED_RUNS: u32 = 1000;

/// What every connection shares: the engine and facts for `ping` / `status`.
#[derive(Debug, Clone)]
pub struct Context {
    pub engine: EngineHandle,
    pub daemon_version: String,
    /// Where schedules come from, for `status` (passwords redacted).
    pub source: String,
    /// Where requests are counted (`btu_requests_total`, `btu_request_duration_seconds`).
    pub metrics: Option<Arc<Metrics>>,
    /// The config's `[defaults]`, for `status`.
    pub defaults: Option<Policies>,
}

impl Context {
    pub fn new(engine: EngineHandle, source: impl Into<String>) -> Self {
        Context {
            engine,
            daemon_version: env!("CARGO_PKG_VERSION").to_string(),
            source: source.into(),
            metrics: None,
            defaults: None,
        }
    }

    /// Counts every request in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// One request of `kind` answered with `result` (`ok` or an error code) in `elapsed`.
    pub(super) fn count(&self, kind: &'static str, result: &'static str, elapsed: std::time::Duration) {
        if let Some(m) = &self.metrics {
            m.request(kind, result, elapsed);
        }
    }

    /// A context describing the sources of `config`.
    pub fn from_config(engine: EngineHandle, config: &Config) -> Self {
        let mut parts: Vec<String> = config.sites.iter().map(|s| format!("{}={}", s.name, s.db.describe())).collect();
        if let Some(f) = &config.file {
            parts.push(format!("{}=toml:{}", f.site, f.path.display()));
        }
        Context { defaults: Some(config.defaults), ..Context::new(engine, parts.join(", ")) }
    }

    /// Answers one request from `caller` (the peer's credentials, for the audit trail). Never
    /// fails: engine errors become `error` responses.
    pub async fn handle(&self, request: Request, caller: Caller) -> Response {
        let kind = request.kind();
        let started = Instant::now();
        let response = match self.dispatch(request, caller).await {
            Ok(response) => response,
            Err(reply) => {
                if reply.code == ErrorCode::Internal {
                    warn!(request = kind, schedule = ?reply.schedule, error = %reply.message, "request failed");
                }
                Response::Error(reply)
            }
        };
        let result = match &response {
            Response::Error(reply) => reply.code.as_str(),
            _ => "ok",
        };
        self.count(kind, result, started.elapsed());
        response
    }

    async fn dispatch(&self, request: Request, caller: Caller) -> Result<Response, ErrorReply> {
        let e = &self.engine;
        let audit = |action, schedule: Option<&str>, args| AuditRecord {
            action,
            schedule: schedule.map(str::to_string),
            args,
            note: None,
            caller,
        };
        Ok(match request {
            Request::Ping => Response::Pong(Pong {
                daemon_version: self.daemon_version.clone(),
                protocol_version: proto::PROTOCOL_VERSION,
            }),
            Request::Notify { schedules, site } => {
                if schedules.is_empty() {
                    return Ok(Response::Notified(Notified { results: Vec::new() }));
                }
                let one = (schedules.len() == 1).then(|| schedules[0].clone());
                let states =
                    e.notify(site.as_deref(), &schedules).await.map_err(|err| error_reply(err, one.as_deref()))?;
                Response::Notified(Notified { results: states.iter().map(schedule_state).collect() })
            }
            Request::Cancel { schedule, site } => {
                let removed =
                    e.cancel(site.as_deref(), &schedule).await.map_err(|err| error_reply(err, Some(&schedule)))?;
                let args = serde_json::json!({ "removed": removed });
                e.record(site.as_deref(), audit("cancel", Some(&schedule), args)).await;
                Response::Cancelled(Cancelled { site: self.site_label(site), schedule, removed })
            }
            Request::Rebuild { site } => {
                let started = Instant::now();
                e.rebuild(site.as_deref()).await.map_err(|err| error_reply(err, None))?;
                e.record(site.as_deref(), audit("rebuild", None, serde_json::json!({}))).await;
                let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                let status = e.status().await.map_err(|err| error_reply(err, None))?;
                let chosen: Vec<_> =
                    status.sites.iter().filter(|s| site.as_ref().is_none_or(|n| *n == s.name)).collect();
                Response::Rebuilt(Rebuilt {
                    sites: chosen.iter().map(|s| s.name.clone()).collect(),
                    schedules: saturating_u32(chosen.iter().map(|s| s.planned).sum()),
                    skipped: saturating_u32(chosen.iter().map(|s| s.skipped).sum()),
                    duration_ms,
                })
            }
            Request::Status => {
                let r = e.status().await.map_err(|err| error_reply(err, None))?;
                let mut marks = e.site_marks().await;
                let uptime = (Utc::now() - r.started_at).num_seconds().max(0);
                Response::Status(Status {
                    daemon_version: self.daemon_version.clone(),
                    protocol_version: proto::PROTOCOL_VERSION,
                    started_at: utc(r.started_at),
                    uptime_secs: u64::try_from(uptime).unwrap_or(0),
                    source: self.source.clone(),
                    sites: r
                        .sites
                        .iter()
                        .map(|s| {
                            let m = marks.remove(&s.name).unwrap_or_default();
                            proto::SiteStatus {
                                site: s.name.clone(),
                                schedules: saturating_u32(s.planned),
                                redis_ok: r.redis_up,
                                source_ok: s.source_ok.unwrap_or(false),
                                last_rebuild: s.last_loaded.or(r.last_rebuild).map(utc),
                                paused: m.paused.into_iter().map(|(id, p)| actions::paused_schedule(id, p)).collect(),
                                skipped: m
                                    .skipped
                                    .into_iter()
                                    .map(|(schedule, t)| proto::SkippedRun { schedule, utc: utc(t) })
                                    .collect(),
                            }
                        })
                        .collect(),
                    defaults: self.defaults.as_ref().map(settings),
                })
            }
            Request::Upcoming { schedule, site, count } => {
                let count = count.clamp(1, MAX_LISTED_RUNS) as usize;
                let runs = e
                    .upcoming(site.as_deref(), schedule.as_deref(), count)
                    .await
                    .map_err(|err| error_reply(err, schedule.as_deref()))?;
                let marks = e.marks_of(&runs).await;
                Response::Upcoming(Upcoming {
                    runs: runs
                        .into_iter()
                        .zip(marks)
                        .map(|(r, (paused, skipped))| proto::UpcomingRun {
                            local: local(r.due, r.zone),
                            utc: utc(r.due),
                            site: r.site,
                            schedule: r.schedule,
                            task: r.task,
                            paused,
                            skipped,
                            settings: Some(settings(&r.policies)),
                        })
                        .collect(),
                })
            }
            Request::History { schedule, site, count } => {
                let count = count.clamp(1, MAX_LISTED_RUNS) as usize;
                let runs = e
                    .history(site.as_deref(), &schedule, count)
                    .await
                    .map_err(|err| error_reply(err, Some(&schedule)))?;
                Response::History(History {
                    site: self.site_label(site),
                    schedule,
                    runs: runs
                        .into_iter()
                        .map(|h| HistoryRun {
                            job_id: h.job_id,
                            due: h.due,
                            enqueued_at: h.enqueued_at,
                            outcome: h.outcome,
                            lateness_ms: h.lateness_ms,
                        })
                        .collect(),
                })
            }
            Request::RunNow { schedule, site } => {
                let r = e.run_now(site.as_deref(), &schedule).await.map_err(|err| error_reply(err, Some(&schedule)))?;
                let args = serde_json::json!({ "job_id": r.job_id });
                e.record(Some(&r.site), audit("run_now", Some(&schedule), args)).await;
                Response::RanNow(RanNow { site: r.site, schedule: r.schedule, job_id: r.job_id, queue: r.queue })
            }
            action @ (Request::Pause { .. }
            | Request::Resume { .. }
            | Request::SkipNext { .. }
            | Request::Backfill { .. }
            | Request::Audit { .. }) => {
                let schedule = actions::schedule_of(&action);
                actions::answer(e, action, caller).await.map_err(|err| error_reply(err, schedule.as_deref()))?
            }
        })
    }

    /// The site an answer names: the one asked for, else the daemon's only site.
    fn site_label(&self, site: Option<String>) -> String {
        site.unwrap_or_else(|| {
            let sites = self.engine.sites();
            if sites.len() == 1 { sites.into_iter().next().unwrap_or_default() } else { "*".to_string() }
        })
    }
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Protocol view of where a schedule stands after a notify.
pub fn schedule_state(s: &engine::ScheduleState) -> proto::ScheduleState {
    match &s.status {
        ScheduleStatus::Planned { zone, next_runs, policies, .. } => proto::ScheduleState {
            site: s.site.clone(),
            schedule: s.schedule.clone(),
            runs: !next_runs.is_empty(),
            reason: next_runs.is_empty().then(|| "the cron string has no future run".to_string()),
            time_zone: Some(zone.name().to_string()),
            next_runs: next_runs.iter().map(|t| NextRun { utc: utc(*t), local: local(*t, *zone) }).collect(),
            settings: Some(settings(policies)),
        },
        ScheduleStatus::NotRunning(reason) => proto::ScheduleState {
            site: s.site.clone(),
            schedule: s.schedule.clone(),
            runs: false,
            reason: Some(reason_text(reason)),
            time_zone: None,
            next_runs: Vec::new(),
            settings: None,
        },
    }
}

/// Protocol view of a schedule's effective policies.
pub fn settings(p: &Policies) -> proto::Settings {
    proto::Settings {
        overlap: p.overlap.as_str().to_string(),
        catchup: p.catchup.as_str().to_string(),
        jitter_secs: p.jitter_secs,
        dst_gap: p.dst_gap.as_str().to_string(),
        dst_overlap: p.dst_overlap.as_str().to_string(),
    }
}

/// Why a schedule does not run, as the protocol documents it.
pub(crate) fn reason_text(reason: &SkipReason) -> String {
    match reason {
        SkipReason::NotFound => "unknown schedule".to_string(),
        other => other.to_string(),
    }
}

/// The typed error answer for an engine failure; `schedule` is the schedule the request was about.
pub fn error_reply(err: EngineError, schedule: Option<&str>) -> ErrorReply {
    let with_schedule = |code, message: String| match schedule {
        Some(id) => ErrorReply::for_schedule(code, id, message),
        None => ErrorReply::new(code, message),
    };
    match err {
        EngineError::UnknownSchedule { site, schedule: id } if site == "*" => ErrorReply::for_schedule(
            ErrorCode::UnknownSchedule,
            id.clone(),
            format!("unknown schedule '{id}' on every site"),
        ),
        EngineError::UnknownSchedule { site, schedule: id } => ErrorReply::for_schedule(
            ErrorCode::UnknownSchedule,
            id.clone(),
            format!("unknown schedule '{id}' on site '{site}'"),
        ),
        EngineError::NotRunnable { site, schedule: id, reason } => ErrorReply::for_schedule(
            ErrorCode::InvalidSchedule,
            id.clone(),
            format!("schedule '{id}' on site '{site}' does not run: {}", reason_text(&reason)),
        ),
        // A site name that is not ours makes the schedule unknown from the client's view.
        EngineError::UnknownSite(site) => {
            let message = match schedule {
                Some(id) => format!("unknown schedule '{id}': this daemon serves no site '{site}'"),
                None => format!("this daemon serves no site '{site}'"),
            };
            match schedule {
                Some(_) => with_schedule(ErrorCode::UnknownSchedule, message),
                None => ErrorReply::new(ErrorCode::Malformed, message),
            }
        }
        EngineError::SiteRequired(sites) => {
            with_schedule(ErrorCode::Malformed, format!("several sites are configured ({sites}): name the site"))
        }
        EngineError::Stopped => with_schedule(ErrorCode::Internal, "btu-daemon is shutting down".to_string()),
        e @ (EngineError::Source(_) | EngineError::Redis(_)) => with_schedule(ErrorCode::Internal, e.to_string()),
        EngineError::InvalidArgument(message) => with_schedule(ErrorCode::InvalidArgument, message),
    }
}
