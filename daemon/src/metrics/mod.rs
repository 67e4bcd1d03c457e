//! Prometheus metrics and health (docs/operations.md): the families and per-site handles the
//! engine and the socket server count through (`families.rs`), readiness (`ready.rs`) and the
//! optional HTTP listener serving both (`http.rs`).
//!
//! Imports: `http` → `families`, `ready`; `families` → `ready`. The module imports no other
//! project module but `outcome`: the engine's state reaches it through [`StateSource`].

mod families;
mod http;
mod ready;

pub use families::{Metrics, ScheduleState, SiteMetrics};
pub use http::{ListenError, bind, serve};
pub use ready::{Readiness, SiteSnapshot, Snapshot, StateSource};
