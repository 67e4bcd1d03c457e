//! The original BTU app's requests: unframed UTF-8 JSON
//! (`{"request_type": "ping" | "create_task_schedule" | "cancel_task_schedule", "request_content": …}`),
//! answered in plain text with the original daemon's wording, then the connection is closed.
//!
//! The app does not terminate or half-close its message (it sends, sleeps, reads once), so the
//! request is parsed as soon as the JSON object is complete; the read is bounded by
//! [`btu_protocol::LEGACY_MAX_LEN`] and the frame timeout.

use btu_protocol::{self as proto, LegacyRequest, ProtocolError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};
use tracing::{debug, info};

use super::Context;
use super::connection::{Connection, ConnectionError};
use crate::engine::ScheduleStatus;

/// Reads a legacy request whose first byte (`{`) was already read, answers it and closes.
pub(super) async fn serve(conn: &mut Connection, first: u8, deadline: Instant) -> Result<(), ConnectionError> {
    let mut buf = vec![first];
    let request = loop {
        match proto::parse_legacy(&buf) {
            Ok(request) => break request,
            Err(ProtocolError::Truncated { .. }) => {}
            // Bad JSON, a missing schedule id, too long: the original closed without a word.
            Err(e) => return Err(ConnectionError::Legacy(e.to_string())),
        }
        let mut chunk = [0u8; 2048];
        let n = match timeout_at(deadline, conn.io.read(&mut chunk)).await {
            Err(_) => {
                return Err(ConnectionError::SlowFrame { timeout: conn.opts.frame_timeout, received: buf.len() });
            }
            Ok(n) => n?,
        };
        if n == 0 {
            return Err(ConnectionError::Legacy(format!(
                "connection closed after {} bytes of an incomplete JSON request",
                buf.len()
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let text = if conn.permitted() {
        answer(&conn.ctx, &request).await
    } else {
        format!("Permission denied: uid {} is not allowed to use this BTU Scheduler.", conn.peer.uid)
    };
    info!(peer_uid = conn.peer.uid, peer_pid = ?conn.peer.pid, request = ?request, answer = %text, "legacy request answered");
    conn.write_bytes(text.as_bytes()).await?;
    // Shut down our side so a client reading until EOF stops at once.
    if let Err(e) = conn.io.get_mut().shutdown().await {
        debug!(error = %e, "shutdown after a legacy answer failed (client already gone)");
    }
    if !conn.permitted() {
        return Err(ConnectionError::Denied { uid: conn.peer.uid, gid: conn.peer.gid });
    }
    Ok(())
}

/// The plain-text answer to a legacy request. Successes use the original daemon's exact words
/// (BTU app code may compare them); failures are one plain sentence naming the schedule.
pub async fn answer(ctx: &Context, request: &LegacyRequest) -> String {
    match request {
        LegacyRequest::Ping | LegacyRequest::Unknown { .. } => request.success_reply(),
        LegacyRequest::CreateTaskSchedule { schedule } => {
            match ctx.engine.notify(None, std::slice::from_ref(schedule)).await {
                Ok(states) => match states.first().map(|s| &s.status) {
                    Some(ScheduleStatus::Planned { .. }) => request.success_reply(),
                    Some(ScheduleStatus::NotRunning(reason)) => {
                        format!(
                            "BTU Scheduler will not run Task Schedule {schedule}: {}.",
                            super::handler::reason_text(reason)
                        )
                    }
                    None => format!("BTU Scheduler found no Task Schedule {schedule}."),
                },
                Err(e) => format!("BTU Scheduler could not re-process Task Schedule {schedule}: {e}"),
            }
        }
        LegacyRequest::CancelTaskSchedule { schedule } => match ctx.engine.cancel(None, schedule).await {
            // The original reported success whether or not anything was queued.
            Ok(_) => request.success_reply(),
            Err(e) => format!("Error while cancelling BTU Task Schedule {schedule}: {e}"),
        },
    }
}
