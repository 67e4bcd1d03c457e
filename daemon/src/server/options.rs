//! What the server is told besides the engine: the socket file, who may connect, limits and
//! timeouts.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::Config;
pub use crate::config::DEFAULT_MAX_CONNECTIONS;

/// Everything the server needs to know besides the engine.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub socket_path: PathBuf,
    /// Group owning the socket file (`socket_file_group_owner`); `None` keeps the daemon's group.
    pub group: Option<String>,
    /// Mode of the socket file: 0660 lets the daemon's user and the group connect.
    pub mode: u32,
    /// Peer uids / primary gids allowed to talk to the daemon (SO_PEERCRED). Both empty = no
    /// check beyond the file mode. The daemon's own uid is always allowed.
    pub allowed_uids: Vec<u32>,
    pub allowed_gids: Vec<u32>,
    /// Largest request body accepted (and response body sent).
    pub max_frame_len: usize,
    /// Once a request's first byte arrived, the whole frame must arrive within this.
    pub frame_timeout: Duration,
    /// A connection with no request started for this long is closed.
    pub idle_timeout: Duration,
    /// Writing one answer may take at most this long (a client that does not read).
    pub write_timeout: Duration,
    /// Connections served at once (`[daemon] max_connections`); a connection beyond it is
    /// refused: accepted and closed at once, so a flood cannot exhaust file descriptors.
    pub max_connections: usize,
}

/// Defaults chosen for a local control socket: requests are tiny and answered in milliseconds,
/// so a client that needs seconds to send one frame is broken or hostile.
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// Long enough for a Frappe worker to reuse a connection between saves, short enough that
/// forgotten connections do not pile up.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

impl ServerOptions {
    /// Options for `socket_path` with every default.
    pub fn new(socket_path: impl Into<PathBuf>) -> Self {
        ServerOptions {
            socket_path: socket_path.into(),
            group: None,
            mode: 0o660,
            allowed_uids: Vec::new(),
            allowed_gids: Vec::new(),
            max_frame_len: btu_protocol::MAX_FRAME_LEN,
            frame_timeout: DEFAULT_FRAME_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// Options from the `[daemon]` section of the configuration.
    pub fn from_config(config: &Config) -> Self {
        ServerOptions {
            group: config.daemon.socket_file_group_owner.clone(),
            allowed_uids: config.daemon.allowed_uids.clone(),
            allowed_gids: config.daemon.allowed_gids.clone(),
            max_connections: config.daemon.max_connections,
            ..ServerOptions::new(config.daemon.socket_path.clone())
        }
    }
}
