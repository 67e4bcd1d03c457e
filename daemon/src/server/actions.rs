//! Serving the operator actions (protocol version 2): `pause`, `resume`, `skip_next`,
//! `backfill` and `audit` become [`EngineHandle`] calls (which write the audit entry with the
//! caller's uid/pid), whose results become the protocol's answers. The twin of
//! [`super::handler`] for these request kinds; it never touches the socket.

use btu_protocol::{
    AuditEntry, Audited, BackfillRun, BackfillStatus, Backfilled, NextRun, PauseInfo, Paused, PausedSchedule, Request,
    Response, Resumed, Skipped,
};

use super::instants::{local, parse, utc};
use crate::engine::{BackfillState, Caller, EngineError, EngineHandle, PauseRecord};

/// Most audit entries one answer lists.
pub const MAX_AUDIT_ENTRIES: u32 = 1000;

/// The schedule a request is about, for its error answer.
pub(super) fn schedule_of(request: &Request) -> Option<String> {
    match request {
        Request::Pause { schedule, .. }
        | Request::Resume { schedule, .. }
        | Request::SkipNext { schedule, .. }
        | Request::Backfill { schedule, .. } => Some(schedule.clone()),
        Request::Audit { schedule, .. } => schedule.clone(),
        _ => None,
    }
}

fn instant(field: &str, text: &str) -> Result<chrono::DateTime<chrono::Utc>, EngineError> {
    parse(field, text).map_err(EngineError::InvalidArgument)
}

fn pause_info(p: PauseRecord) -> PauseInfo {
    PauseInfo { until: p.until, note: p.note, at: p.at, uid: p.uid, pid: p.pid }
}

/// A paused schedule as `status` lists it.
pub(super) fn paused_schedule(schedule: String, p: PauseRecord) -> PausedSchedule {
    PausedSchedule { schedule, pause: pause_info(p) }
}

/// Answers one operator action from `caller`. Other request kinds are not ours: `malformed`.
pub(super) async fn answer(e: &EngineHandle, request: Request, caller: Caller) -> Result<Response, EngineError> {
    Ok(match request {
        Request::Pause { schedule, site, until, note } => {
            let until = until.as_deref().map(|u| instant("until", u)).transpose()?;
            let note = note.filter(|n| !n.is_empty());
            let (site, pause) = e.pause(site.as_deref(), &schedule, until, note, caller).await?;
            Response::Paused(Paused { site, schedule, pause: pause_info(pause) })
        }
        Request::Resume { schedule, site } => {
            let (site, was_paused) = e.resume(site.as_deref(), &schedule, caller).await?;
            Response::Resumed(Resumed { site, schedule, was_paused })
        }
        Request::SkipNext { schedule, site, count } => {
            let r = e.skip_next(site.as_deref(), &schedule, count, caller).await?;
            let runs = |v: Vec<_>| v.into_iter().map(|t| NextRun { utc: utc(t), local: local(t, r.zone) }).collect();
            Response::Skipped(Skipped {
                site: r.site.clone(),
                schedule,
                added: runs(r.added),
                pending: runs(r.pending),
            })
        }
        Request::Backfill { schedule, site, start, end, max, dry_run } => {
            let range = (instant("start", &start)?, instant("end", &end)?);
            let r = e.backfill(site.as_deref(), &schedule, range, max, dry_run, caller).await?;
            Response::Backfilled(Backfilled {
                site: r.site,
                schedule,
                dry_run,
                runs: r
                    .runs
                    .into_iter()
                    .map(|b| BackfillRun {
                        due: utc(b.due),
                        local: local(b.due, r.zone),
                        job_id: b.job_id,
                        status: match b.state {
                            BackfillState::Enqueued => BackfillStatus::Enqueued,
                            BackfillState::Exists => BackfillStatus::Exists,
                            BackfillState::WouldEnqueue => BackfillStatus::WouldEnqueue,
                        },
                    })
                    .collect(),
            })
        }
        Request::Audit { schedule, site, count } => {
            let count = count.clamp(1, MAX_AUDIT_ENTRIES) as usize;
            let (site, entries) = e.audit(site.as_deref(), schedule.as_deref(), count).await?;
            Response::Audited(Audited {
                site,
                entries: entries
                    .into_iter()
                    .map(|a| AuditEntry {
                        id: a.id,
                        time: a.time,
                        action: a.action,
                        schedule: a.schedule,
                        args: a.args,
                        note: a.note,
                        uid: a.uid,
                        pid: a.pid,
                    })
                    .collect(),
            })
        }
        other => {
            return Err(EngineError::InvalidArgument(format!("{} is not an operator action", other.kind())));
        }
    })
}
