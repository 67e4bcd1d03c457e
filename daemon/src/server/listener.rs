//! The listening socket: binding (stale file replaced, a live daemon refused), file mode and
//! group, peer credentials and the accept loop under a connection limit.

use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tracing::{info, warn};

use super::connection::{self, Peer};
use super::handler::Context;
use super::options::ServerOptions;

/// Why the server could not start. Each message names the socket path or the config key.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("another btu-daemon is already listening on {path}: stop it first, or give this one another socket_path")]
    AlreadyRunning { path: PathBuf },
    #[error("{path} exists and is not a socket; refusing to replace it (remove it or choose another socket_path)")]
    NotASocket { path: PathBuf },
    #[error("socket {path}: cannot inspect the existing file: {source}")]
    Inspect { path: PathBuf, source: io::Error },
    #[error("socket {path}: cannot remove the stale socket file: {source}")]
    RemoveStale { path: PathBuf, source: io::Error },
    #[error("cannot listen on {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },
    #[error("socket {path}: cannot set mode {mode:o}: {source}")]
    Mode { path: PathBuf, mode: u32, source: io::Error },
    #[error("socket_file_group_owner: no group named {group:?} on this machine (check /etc/group)")]
    UnknownGroup { group: String },
    #[error("socket_file_group_owner: looking up group {group:?} failed: {source}")]
    GroupLookup { group: String, source: nix::Error },
    #[error("socket {path}: cannot give it to group {group:?} (the daemon's user must be a member, or root): {source}")]
    Chown { path: PathBuf, group: String, source: nix::Error },
}

/// How long to wait for an existing socket to answer before calling it stale. A live daemon
/// accepts in microseconds; connect() on a dead socket fails at once with ECONNREFUSED.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// A bound, permission-set socket, ready to [`BoundServer::run`].
#[derive(Debug)]
pub struct BoundServer {
    listener: UnixListener,
    opts: ServerOptions,
    /// Inode of the socket file we created: at shutdown we remove the file only if it is still
    /// ours (an operator may have started another daemon on the path meanwhile).
    inode: Option<u64>,
}

/// Binds the socket at `opts.socket_path`: replaces a stale socket file, refuses when another
/// daemon answers on it, then sets the file mode and group.
pub async fn bind(opts: ServerOptions) -> Result<BoundServer, ServerError> {
    let path = opts.socket_path.clone();
    probe_existing(&path).await?;
    let listener = UnixListener::bind(&path).map_err(|source| ServerError::Bind { path: path.clone(), source })?;
    // From here on a failure must not leave a socket file behind that nobody serves.
    let cleanup = |e: ServerError| {
        let _ = std::fs::remove_file(&path);
        e
    };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(opts.mode))
        .map_err(|source| cleanup(ServerError::Mode { path: path.clone(), mode: opts.mode, source }))?;
    if let Some(group) = &opts.group {
        set_group(&path, group).map_err(cleanup)?;
    }
    let inode = std::fs::symlink_metadata(&path).ok().map(|m| m.ino());
    info!(socket = %path.display(), mode = format!("{:o}", opts.mode), group = opts.group.as_deref().unwrap_or("-"),
        allowed_uids = ?opts.allowed_uids, allowed_gids = ?opts.allowed_gids, "socket server listening");
    Ok(BoundServer { listener, opts, inode })
}

/// Checks what is at `path` before binding: nothing (fine), a stale socket (removed), a live
/// daemon (refused) or some other file (refused: never delete what we did not create).
async fn probe_existing(path: &Path) -> Result<(), ServerError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(ServerError::Inspect { path: path.to_path_buf(), source }),
    };
    if !meta.file_type().is_socket() {
        return Err(ServerError::NotASocket { path: path.to_path_buf() });
    }
    match tokio::time::timeout(PROBE_TIMEOUT, UnixStream::connect(path)).await {
        Ok(Ok(_)) => Err(ServerError::AlreadyRunning { path: path.to_path_buf() }),
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path)
                .map_err(|source| ServerError::RemoveStale { path: path.to_path_buf(), source })?;
            info!(socket = %path.display(), "replaced a stale socket file (nothing was listening)");
            Ok(())
        }
        // WouldBlock: a listener exists but its backlog is full — very much alive.
        Ok(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
            Err(ServerError::AlreadyRunning { path: path.to_path_buf() })
        }
        Ok(Err(source)) => Err(ServerError::Inspect { path: path.to_path_buf(), source }),
        Err(_) => Err(ServerError::AlreadyRunning { path: path.to_path_buf() }),
    }
}

fn set_group(path: &Path, group: &str) -> Result<(), ServerError> {
    let found = nix::unistd::Group::from_name(group)
        .map_err(|source| ServerError::GroupLookup { group: group.to_string(), source })?;
    let Some(g) = found else {
        return Err(ServerError::UnknownGroup { group: group.to_string() });
    };
    nix::unistd::chown(path, None, Some(g.gid)).map_err(|source| ServerError::Chown {
        path: path.to_path_buf(),
        group: group.to_string(),
        source,
    })
}

impl ServerOptions {
    /// Whether a peer may use the daemon: no allowlist, the daemon's own uid, or a listed
    /// uid / primary gid.
    pub(super) fn permits(&self, peer: &Peer, own_uid: u32) -> bool {
        (self.allowed_uids.is_empty() && self.allowed_gids.is_empty())
            || peer.uid == own_uid
            || self.allowed_uids.contains(&peer.uid)
            || self.allowed_gids.contains(&peer.gid)
    }
}

/// Connections refused over `max_connections`, logged once per burst: a warning at the first
/// refusal, one line with the count when a connection is served again.
#[derive(Default)]
struct RefusalBurst {
    refused: u64,
}

impl RefusalBurst {
    fn refused(&mut self, opts: &ServerOptions, peer: &Peer) {
        if self.refused == 0 {
            warn!(socket = %opts.socket_path.display(), max_connections = opts.max_connections,
                peer_uid = peer.uid, peer_pid = ?peer.pid,
                "connection limit reached: refusing new connections until one closes");
        }
        self.refused += 1;
    }

    fn served(&mut self, opts: &ServerOptions) {
        if self.refused > 0 {
            info!(socket = %opts.socket_path.display(), refused = self.refused,
                "below the connection limit again: serving new connections");
            self.refused = 0;
        }
    }
}

impl BoundServer {
    pub fn socket_path(&self) -> &Path {
        &self.opts.socket_path
    }

    /// Accepts and serves clients until `shutdown` completes; then stops accepting and removes
    /// the socket file. Connections in progress finish on their own tasks.
    pub async fn run(self, ctx: Arc<Context>, shutdown: impl Future<Output = ()>) {
        let BoundServer { listener, opts, inode } = self;
        let opts = Arc::new(opts);
        let limit = Arc::new(Semaphore::new(opts.max_connections.max(1)));
        let own_uid = nix::unistd::getuid().as_raw();
        let mut burst = RefusalBurst::default();
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE/ENFILE and the like: back off briefly instead of spinning.
                    warn!(socket = %opts.socket_path.display(), error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let peer = match stream.peer_cred() {
                Ok(c) => Peer { uid: c.uid(), gid: c.gid(), pid: c.pid() },
                Err(e) => {
                    warn!(error = %e, "cannot read the peer credentials of a connection; closing it");
                    continue;
                }
            };
            // Over the limit the connection is closed at once (the client reads EOF): a flood
            // costs one descriptor for a moment, never one per waiting client.
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                burst.refused(&opts, &peer);
                drop(stream);
                continue;
            };
            burst.served(&opts);
            let permitted = opts.permits(&peer, own_uid);
            if !permitted {
                warn!(peer_uid = peer.uid, peer_gid = peer.gid, peer_pid = ?peer.pid,
                    "connection from a peer not in allowed_uids/allowed_gids refused");
            }
            let (ctx, opts) = (ctx.clone(), opts.clone());
            tokio::spawn(async move {
                connection::serve(stream, ctx, opts, peer, permitted).await;
                drop(permit);
            });
        }
        drop(listener);
        let ours = std::fs::symlink_metadata(&opts.socket_path).ok().map(|m| m.ino());
        if ours.is_some()
            && ours == inode
            && let Err(e) = std::fs::remove_file(&opts.socket_path)
        {
            warn!(socket = %opts.socket_path.display(), error = %e, "cannot remove the socket file");
        }
        info!(socket = %opts.socket_path.display(), "socket server stopped accepting");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_by_uid_gid_or_own_uid() {
        let peer = |uid, gid| Peer { uid, gid, pid: None };
        let mut opts = ServerOptions::new("/tmp/x.sock");
        assert!(opts.permits(&peer(1234, 1234), 0), "no allowlist: the file mode decides");
        opts.allowed_uids = vec![1000];
        opts.allowed_gids = vec![33];
        assert!(opts.permits(&peer(1000, 5), 0));
        assert!(opts.permits(&peer(7, 33), 0));
        assert!(opts.permits(&peer(0, 0), 0), "the daemon's own uid");
        assert!(!opts.permits(&peer(1234, 1234), 0));
    }
}
