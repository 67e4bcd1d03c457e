//! Answers to the original BTU app's requests (`ping`, `create_task_schedule`,
//! `cancel_task_schedule`, read whole by [`super::connection`]): the engine call each one
//! means, then the plain text the app shows its user — the legacy twin of [`super::handler`].
//!
//! Successes use the original daemon's exact words (`LegacyRequest::success_reply`: BTU app
//! code may compare them); every other outcome is one plain sentence naming the schedule,
//! chosen by the pure functions [`created`] and [`cancelled`] from what the engine said.

use btu_protocol::LegacyRequest;

use super::handler::{Context, reason_text};
use crate::engine::{EngineError, ScheduleState, ScheduleStatus};

/// The plain-text answer to a legacy request from a permitted peer.
pub(super) async fn answer(ctx: &Context, request: &LegacyRequest) -> String {
    match request {
        LegacyRequest::Ping | LegacyRequest::Unknown { .. } => request.success_reply(),
        LegacyRequest::CreateTaskSchedule { schedule } => {
            let states = ctx.engine.notify(None, std::slice::from_ref(schedule)).await;
            created(request, schedule, states.as_deref())
        }
        LegacyRequest::CancelTaskSchedule { schedule } => {
            let removed = ctx.engine.cancel(None, schedule).await;
            cancelled(request, schedule, removed.as_ref().copied())
        }
    }
}

/// What a peer outside `allowed_uids`/`allowed_gids` is told.
pub(super) fn denied(uid: u32) -> String {
    format!("Permission denied: uid {uid} is not allowed to use this BTU Scheduler.")
}

/// `create_task_schedule` (a notify): `request`'s own success words when the re-read schedule
/// is planned, else why not.
fn created(request: &LegacyRequest, schedule: &str, states: Result<&[ScheduleState], &EngineError>) -> String {
    match states.map(|s| s.first().map(|s| &s.status)) {
        Ok(Some(ScheduleStatus::Planned { .. })) => request.success_reply(),
        Ok(Some(ScheduleStatus::NotRunning(reason))) => {
            format!("BTU Scheduler will not run Task Schedule {schedule}: {}.", reason_text(reason))
        }
        Ok(None) => format!("BTU Scheduler found no Task Schedule {schedule}."),
        Err(e) => format!("BTU Scheduler could not re-process Task Schedule {schedule}: {e}"),
    }
}

/// `cancel_task_schedule`: success whether or not anything was planned, as the original said.
fn cancelled(request: &LegacyRequest, schedule: &str, removed: Result<bool, &EngineError>) -> String {
    match removed {
        Ok(_) => request.success_reply(),
        Err(e) => format!("Error while cancelling BTU Task Schedule {schedule}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SkipReason;

    fn create(id: &str) -> LegacyRequest {
        LegacyRequest::CreateTaskSchedule { schedule: id.into() }
    }

    // The planned case ("now re-processing") is covered end to end by tests/server_requests.rs.
    #[test]
    fn create_says_why_a_schedule_will_not_run() {
        let state = |status| ScheduleState { site: "s".into(), schedule: "TS-1".into(), status };
        let disabled = [state(ScheduleStatus::NotRunning(SkipReason::Disabled))];
        assert_eq!(
            created(&create("TS-1"), "TS-1", Ok(&disabled)),
            "BTU Scheduler will not run Task Schedule TS-1: disabled."
        );
        assert_eq!(created(&create("TS-1"), "TS-1", Ok(&[])), "BTU Scheduler found no Task Schedule TS-1.");
        assert_eq!(
            created(&create("TS-1"), "TS-1", Err(&EngineError::Stopped)),
            format!("BTU Scheduler could not re-process Task Schedule TS-1: {}", EngineError::Stopped)
        );
    }

    #[test]
    fn cancel_reports_success_even_when_nothing_was_planned() {
        let cancel = LegacyRequest::CancelTaskSchedule { schedule: "TS-2".into() };
        let ok = "Successfully cancelled BTU Task Schedule TS-2 in Python RQ.";
        assert_eq!(cancelled(&cancel, "TS-2", Ok(false)), ok);
        assert_eq!(cancelled(&cancel, "TS-2", Ok(true)), ok);
        assert!(cancelled(&cancel, "TS-2", Err(&EngineError::Stopped)).starts_with("Error while cancelling"));
    }
}
