//! The control socket: `<data_dir>/appliance.sock`, a Unix socket that only
//! the appliance's own user may open (mode 0600), serving the same HTTP app
//! as the TCP listener to the local administrator (`access::identity`'s
//! `Local`: write scope, no token, no rate limit). The `appliance` CLI talks
//! to the running server through it instead of opening the state file.
//!
//! The socket is bound in a private (0700) directory, made owner-only and
//! only then moved to its name, so no other user can connect in between; the
//! move also replaces a stale socket left by a process that crashed. The
//! name is removed when the server stops.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::http::access::identity::local_administrator;

/// The control socket of the appliance whose state is in `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("appliance.sock")
}

/// A bound control socket, not yet serving.
#[derive(Debug)]
pub struct ControlSocket {
    listener: tokio::net::UnixListener,
    name: Bound,
}

/// The socket's name in the file system; removed on drop if it is still ours
/// (same inode), so a later server's socket is never removed by mistake.
#[derive(Debug)]
struct Bound {
    path: PathBuf,
    inode: (u64, u64),
}

impl Drop for Bound {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.inode);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl ControlSocket {
    /// Binds `<data_dir>/appliance.sock` owner-only, replacing a stale socket
    /// there (the caller holds the state file, so no other server runs).
    /// Must run inside a tokio runtime.
    pub fn bind(data_dir: &Path) -> anyhow::Result<ControlSocket> {
        let target = path(data_dir);
        if let Ok(meta) = std::fs::symlink_metadata(&target)
            && !meta.file_type().is_socket()
        {
            anyhow::bail!("{} exists and is not a socket; move it away", target.display());
        }
        let staging = data_dir.join(".appliance.sock.staging");
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .with_context(|| format!("cannot create {}", staging.display()))?;
        let bound = (|| -> std::io::Result<std::os::unix::net::UnixListener> {
            let temporary = staging.join("s");
            let listener = std::os::unix::net::UnixListener::bind(&temporary)?;
            std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))?;
            std::fs::rename(&temporary, &target)?;
            Ok(listener)
        })();
        let _ = std::fs::remove_dir_all(&staging);
        let listener = bound.with_context(|| format!("cannot listen on the control socket {}", target.display()))?;
        let meta = std::fs::symlink_metadata(&target)?;
        listener.set_nonblocking(true)?;
        let listener = tokio::net::UnixListener::from_std(listener)?;
        Ok(ControlSocket { listener, name: Bound { path: target, inode: (meta.dev(), meta.ino()) } })
    }

    pub fn path(&self) -> &Path {
        &self.name.path
    }

    /// Serves `app` as the local administrator until `shutdown` turns true;
    /// the socket's name goes when the task ends (or is dropped).
    pub fn serve(self, app: Router, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        let ControlSocket { listener, name } = self;
        tokio::spawn(async move {
            let _name = name;
            let graceful = axum::serve(listener, local_administrator(app)).with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|s| *s).await;
            });
            if let Err(e) = graceful.await {
                tracing::error!(error = %e, "control socket server failed");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_socket_is_owner_only_replaces_a_stale_one_and_goes_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        // A stale socket, as a crashed process leaves it: nobody listens.
        drop(std::os::unix::net::UnixListener::bind(path(dir.path())).unwrap());
        assert!(std::os::unix::net::UnixStream::connect(path(dir.path())).is_err());
        let socket = ControlSocket::bind(dir.path()).unwrap();
        let meta = std::fs::symlink_metadata(socket.path()).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        std::os::unix::net::UnixStream::connect(socket.path()).expect("the new socket answers");
        assert!(!dir.path().join(".appliance.sock.staging").exists());
        drop(socket);
        assert!(!path(dir.path()).exists(), "removed when dropped");

        std::fs::write(path(dir.path()), "not a socket").unwrap();
        let refused = ControlSocket::bind(dir.path()).unwrap_err().to_string();
        assert!(refused.ends_with("appliance.sock exists and is not a socket; move it away"), "{refused}");
    }
}
