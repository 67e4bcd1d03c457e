//! The daemon's Unix-socket server: clients (the `btu` CLI, the `btu_client` wheel, the original
//! BTU app) ask the running engine to notify, cancel, rebuild, report status …
//!
//! - [`listener`]: binds the socket (stale file replaced, a live daemon refused), sets its mode
//!   and group, checks peer credentials and runs the accept loop under a connection limit;
//! - [`connection`]: one client connection and ALL its socket I/O: timeouts, frames (split by
//!   `btu_protocol::FrameReader`) or one legacy JSON request, writing the answers;
//! - [`handler`]: a protocol [`btu_protocol::Request`] → an [`crate::engine::EngineHandle`] call →
//!   a protocol [`btu_protocol::Response`];
//! - [`actions`]: the operator actions (pause, resume, skip_next, backfill, audit) → engine
//!   calls → their answers (the caller's uid/pid passed down for the audit trail);
//! - [`instants`]: instants as the protocol writes and reads them (RFC 3339);
//! - [`legacy`]: a `btu_protocol::LegacyRequest` → an engine call → the plain-text answer;
//! - [`options`]: [`ServerOptions`], what the server is told besides the engine.
//!
//! Imports run one way: `listener` → `connection` → `handler` → `actions` → `instants`,
//! `legacy` → `handler`, and
//! `listener`, `connection` → `options`; this file only declares and re-exports; the two
//! answer modules never touch the socket. The wire format itself lives in the `btu-protocol`
//! crate; nothing here re-implements it.

mod actions;
mod connection;
mod handler;
mod instants;
mod legacy;
mod listener;
mod options;

pub use handler::Context;
pub use listener::{BoundServer, ServerError, bind};
pub use options::{
    DEFAULT_FRAME_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_WRITE_TIMEOUT, ServerOptions,
};
