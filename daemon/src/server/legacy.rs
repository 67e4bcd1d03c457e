//! Answers to the original BTU app's requests (`ping`, `create_task_schedule`,
//! `cancel_task_schedule`, read whole by [`super::connection`]): the engine call each one
//! means, then the plain text the app shows its user — the legacy twin of [`super::handler`].
//!
//! Successes use the original daemon's exact words (`LegacyRequest::success_reply`: BTU app
//! code may compare them); every other outcome is one plain sentence naming the schedule,
//! chosen by the pure functions [`created`] and [`cancelled`] from what the engine said.

use btu_protocol::LegacyRequest;

use super::handler::{Context, reason_text};
use crate::engine::{AuditRecord, Caller, EngineError, LegacyKind, LegacyReport, ScheduleState, ScheduleStatus};
use crate::source::SkipReason;

/// The plain-text answer to a legacy request from a permitted peer (`caller`); a create or
/// cancel is added to the audit trail (of the site that knows the schedule, else of every
/// site: the request names none), with the answer given.
pub(super) async fn answer(ctx: &Context, request: &LegacyRequest, caller: Caller) -> String {
    let (action, schedule, text) = match request {
        LegacyRequest::Ping | LegacyRequest::Unknown { .. } => return request.success_reply(),
        LegacyRequest::CreateTaskSchedule { schedule } => {
            let report = ctx.engine.legacy(LegacyKind::Create, schedule).await;
            ("legacy_create", schedule, created(request, schedule, report.as_ref()))
        }
        LegacyRequest::CancelTaskSchedule { schedule } => {
            let report = ctx.engine.legacy(LegacyKind::Cancel, schedule).await;
            ("legacy_cancel", schedule, cancelled(request, schedule, report.as_ref()))
        }
    };
    let args = serde_json::json!({ "answer": text });
    let record = AuditRecord { action, schedule: Some(schedule.clone()), args, note: None, caller };
    ctx.engine.record(None, record).await;
    text
}

/// What a peer outside `allowed_uids`/`allowed_gids` is told.
pub(super) fn denied(uid: u32) -> String {
    format!("Permission denied: uid {uid} is not allowed to use this BTU Scheduler.")
}

/// Added to the success words while the schedule is followed: the app sends its requests
/// before its transaction commits, so what the daemon reads now may be the old row.
pub(super) const FOLLOWING: &str = "It will follow the change once saved.";

/// `create_task_schedule`. While followed: `request`'s own success words and [`FOLLOWING`]
/// (what will happen, not the state of the row before the save). Not followed (no database
/// site, or `legacy_follow_secs = 0`): the success words when the schedule is planned, else
/// why not.
fn created(request: &LegacyRequest, schedule: &str, report: Result<&LegacyReport, &EngineError>) -> String {
    let report = match report {
        Ok(r) => r,
        Err(e) => return format!("BTU Scheduler could not re-process Task Schedule {schedule}: {e}"),
    };
    if let Some(error) = report.errors.first().filter(|_| report.states.is_empty()) {
        return format!("BTU Scheduler could not re-process Task Schedule {schedule}: {error}");
    }
    if report.following.is_some() {
        return format!("{} {FOLLOWING}", request.success_reply());
    }
    match report.states.iter().find(|s| matches!(s.status, ScheduleStatus::Planned { .. })).or(report.states.first()) {
        Some(ScheduleState { status: ScheduleStatus::Planned { .. }, .. }) => request.success_reply(),
        Some(ScheduleState { status: ScheduleStatus::NotRunning(reason), .. }) => {
            format!("BTU Scheduler will not run Task Schedule {schedule}: {}.", reason_text(reason))
        }
        None => format!("BTU Scheduler will not run Task Schedule {schedule}: {}.", reason_text(&SkipReason::NotFound)),
    }
}

/// `cancel_task_schedule`: success whether or not anything was planned, as the original said
/// (and [`FOLLOWING`] while the schedule is followed).
fn cancelled(request: &LegacyRequest, schedule: &str, report: Result<&LegacyReport, &EngineError>) -> String {
    match report {
        Ok(r) if r.following.is_some() => format!("{} {FOLLOWING}", request.success_reply()),
        Ok(_) => request.success_reply(),
        Err(e) => format!("Error while cancelling BTU Task Schedule {schedule}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(id: &str) -> LegacyRequest {
        LegacyRequest::CreateTaskSchedule { schedule: id.into() }
    }

    fn report(states: Vec<ScheduleState>, following: bool) -> LegacyReport {
        let following = following.then(|| std::time::Duration::from_secs(60));
        LegacyReport { states, cancelled: false, following, errors: Vec::new() }
    }

    fn state(status: ScheduleStatus) -> ScheduleState {
        ScheduleState { site: "s".into(), schedule: "TS-1".into(), status }
    }

    // The planned case ("now re-processing") is covered end to end by tests/server_requests.rs.
    #[test]
    fn create_not_followed_says_why_a_schedule_will_not_run() {
        let disabled = report(vec![state(ScheduleStatus::NotRunning(SkipReason::Disabled))], false);
        assert_eq!(
            created(&create("TS-1"), "TS-1", Ok(&disabled)),
            "BTU Scheduler will not run Task Schedule TS-1: disabled."
        );
        let none = report(Vec::new(), false);
        assert_eq!(
            created(&create("TS-1"), "TS-1", Ok(&none)),
            "BTU Scheduler will not run Task Schedule TS-1: unknown schedule."
        );
        assert_eq!(
            created(&create("TS-1"), "TS-1", Err(&EngineError::Stopped)),
            format!("BTU Scheduler could not re-process Task Schedule TS-1: {}", EngineError::Stopped)
        );
    }

    /// Followed, the answer says what will happen, not the row before the save (a new
    /// schedule is not in the database yet, a re-enabled one still reads as disabled).
    #[test]
    fn create_followed_says_it_will_follow_the_change() {
        let followed =
            "BTU Scheduler now re-processing Task Schedule TS-1 in Python RQ. It will follow the change once saved.";
        for states in [Vec::new(), vec![state(ScheduleStatus::NotRunning(SkipReason::Disabled))]] {
            assert_eq!(created(&create("TS-1"), "TS-1", Ok(&report(states, true))), followed);
        }
        let mut unread = report(Vec::new(), true);
        unread.errors.push("site s: database down".into());
        assert_eq!(
            created(&create("TS-1"), "TS-1", Ok(&unread)),
            "BTU Scheduler could not re-process Task Schedule TS-1: site s: database down"
        );
    }

    #[test]
    fn cancel_reports_success_even_when_nothing_was_planned() {
        let cancel = LegacyRequest::CancelTaskSchedule { schedule: "TS-2".into() };
        let ok = "Successfully cancelled BTU Task Schedule TS-2 in Python RQ.";
        let mut r = report(Vec::new(), false);
        assert_eq!(cancelled(&cancel, "TS-2", Ok(&r)), ok);
        r.cancelled = true;
        assert_eq!(cancelled(&cancel, "TS-2", Ok(&r)), ok);
        r.following = Some(std::time::Duration::from_secs(60));
        assert_eq!(cancelled(&cancel, "TS-2", Ok(&r)), format!("{ok} {FOLLOWING}"));
        assert!(cancelled(&cancel, "TS-2", Err(&EngineError::Stopped)).starts_with("Error while cancelling"));
    }
}
