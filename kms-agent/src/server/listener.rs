//! [`Listener`]: a bound TCP or Unix socket.
//!
//! - TCP: the address is checked when the configuration is read (loopback unless
//!   `allow_non_loopback`). On a loopback listener each accepted socket's IP TTL is set to 1,
//!   as the AWS agent does, so no answer can be routed off the host.
//! - Unix: the socket is bound under a temporary name, given its mode, then renamed into
//!   place, so it never exists at its path with looser permissions. A stale socket at the
//!   path is replaced; any other file there is an error (never clobbered). The file is
//!   removed when the listener is dropped, unless another agent has replaced it since.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::config::UnixSettings;

/// A bound listener.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix domain socket, its path and its inode (to remove only its own file).
    Unix(UnixListener, PathBuf, u64),
}

/// An accepted connection.
#[derive(Debug)]
pub enum Accepted {
    /// Over TCP.
    Tcp(TcpStream),
    /// Over the Unix socket.
    Unix(UnixStream),
}

impl Listener {
    /// Binds `addr`.
    ///
    /// # Errors
    ///
    /// The bind error.
    pub async fn tcp(addr: SocketAddr) -> io::Result<Self> {
        TcpListener::bind(addr).await.map(Self::Tcp)
    }

    /// Binds the Unix socket.
    ///
    /// # Errors
    ///
    /// A non-socket file at the path, or the bind, chmod or rename error.
    pub fn unix(settings: &UnixSettings) -> io::Result<Self> {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};

        let path = &settings.path;
        if let Ok(meta) = std::fs::symlink_metadata(path)
            && !meta.file_type().is_socket()
        {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        let tmp = temporary_name(path);
        let _ = std::fs::remove_file(&tmp);
        let listener = UnixListener::bind(&tmp)?;
        let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(settings.mode))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::symlink_metadata(path)?);
        Ok(Self::Unix(listener, path.clone(), inode))
    }

    /// Accepts a connection.
    ///
    /// # Errors
    ///
    /// The accept error (the caller backs off and continues).
    pub async fn accept(&self) -> io::Result<Accepted> {
        match self {
            Self::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                if peer.ip().is_loopback() {
                    s.set_ttl(1)?;
                }
                s.set_nodelay(true)?;
                Ok(Accepted::Tcp(s))
            }
            Self::Unix(l, ..) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
        }
    }

    /// The TCP address bound (its port, when 0 was asked).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Tcp(l) => l.local_addr().ok(),
            Self::Unix(..) => None,
        }
    }

    /// What it listens on, for logs: `tcp 127.0.0.1:2773`, `unix /run/kms-agent.sock`.
    pub fn describe(&self) -> String {
        match self {
            Self::Tcp(l) => match l.local_addr() {
                Ok(a) => format!("tcp {a}"),
                Err(_) => "tcp".to_owned(),
            },
            Self::Unix(_, p, _) => format!("unix {}", p.display()),
        }
    }
}

fn temporary_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Self::Unix(_, path, inode) = self {
            let ours = std::fs::symlink_metadata(&*path)
                .is_ok_and(|m| std::os::unix::fs::MetadataExt::ino(&m) == *inode);
            if ours {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    use super::*;

    #[tokio::test]
    async fn unix_sockets_get_their_mode_and_go_away() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let l = Listener::unix(&UnixSettings {
            path: path.clone(),
            mode: 0o600,
        })
        .unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(l.describe(), format!("unix {}", path.display()));
        // A second agent replaces the socket; the first one leaving does not remove it.
        let second = Listener::unix(&UnixSettings {
            path: path.clone(),
            mode: 0o660,
        })
        .unwrap();
        drop(l);
        assert!(
            path.exists(),
            "the first agent leaves the second one's socket alone"
        );
        drop(second);
        assert!(!path.exists(), "removed on drop");
    }

    #[tokio::test]
    async fn other_files_are_never_clobbered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-socket");
        std::fs::write(&path, "data").unwrap();
        let e = Listener::unix(&UnixSettings {
            path: path.clone(),
            mode: 0o600,
        })
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "data");
    }

    #[tokio::test]
    async fn tcp_reports_its_port() {
        let l = Listener::tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        assert_ne!(l.local_addr().unwrap().port(), 0);
        assert!(l.describe().starts_with("tcp 127.0.0.1:"));
    }
}
