//! The console socket: how a pty made inside the container reaches the shim.
//!
//! With `terminal: true`, libcontainer's init opens the pty pair from the container's
//! own devpts (after `pivot_root`, as runc does), checks both ends are real pty
//! devices, makes the peer its stdio and controlling terminal, and sends the master to
//! a unix socket with `SCM_RIGHTS`. A pty taken from the host's devpts instead would
//! not exist under the container's `/dev/pts`: `tty` would say "not a tty" and
//! programs that reopen their terminal would fail.
//!
//! The runtime connects during the create, and the init sends the master before it
//! reports ready, so the shim (single-threaded) binds a [`ConsoleSocket`] first, runs
//! the create, and only then accepts: the kernel queues the connection and the message
//! meanwhile. The master arrives close-on-exec and is never inherited by a container.

use std::io::ErrorKind;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// Why no pty master arrived.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The socket cannot be bound.
    #[error("cannot bind the console socket {path}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The runtime never connected, or the message carried no fd.
    #[error("no pty master arrived on the console socket {path}")]
    Receive {
        /// The socket path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A listening console socket; removed from the file system when dropped.
#[derive(Debug)]
pub struct ConsoleSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    /// Binds a fresh socket at `path` (a stale file there is replaced).
    ///
    /// # Errors
    /// [`ConsoleError::Bind`].
    pub fn bind(path: &Path) -> Result<Self, ConsoleError> {
        let err = |source| ConsoleError::Bind {
            path: path.to_path_buf(),
            source,
        };
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        Ok(ConsoleSocket {
            path: path.to_path_buf(),
            listener,
        })
    }

    /// The socket's path, for the runtime.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the pty master the runtime sent. Call after the create returned: the
    /// connection and its message are queued by then, so this never blocks.
    ///
    /// # Errors
    /// [`ConsoleError::Receive`]: nobody connected, or no fd came with the message.
    pub fn receive_master(&self) -> Result<OwnedFd, ConsoleError> {
        let err = |source| ConsoleError::Receive {
            path: self.path.clone(),
            source,
        };
        let (conn, _) = self.listener.accept().map_err(err)?;
        conn.set_nonblocking(false).map_err(err)?;
        conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .map_err(err)?;
        receive_fd(conn.as_raw_fd()).map_err(err)
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Receives one fd sent with `SCM_RIGHTS` (any payload is ignored).
fn receive_fd(sock: i32) -> std::io::Result<OwnedFd> {
    let mut payload = [0u8; 256];
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    // Room for one control message with up to four fds (only the first is kept).
    let mut control = [0u64; 16];
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    let n = loop {
        // SAFETY: recvmsg writes into the buffers msg points to, all owned here and
        // sized as declared; MSG_CMSG_CLOEXEC makes the received fds close-on-exec.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        break n;
    };
    let mut received = Vec::new();
    // SAFETY: the CMSG_* macros walk the control buffer recvmsg filled, bounded by
    // msg_controllen; the data of an SCM_RIGHTS message is an array of ints.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<i32>();
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<i32>();
                for i in 0..count {
                    received.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    let mut fds = received.into_iter();
    match fds.next() {
        // Extra fds (there should be none) are closed as the iterator drops.
        Some(fd) => Ok(fd),
        None => Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("a {n}-byte message without a file descriptor"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn send_fd(sock: i32, fd: i32) {
        let payload = *b"/dev/ptmx";
        let mut iov = libc::iovec {
            iov_base: payload.as_ptr() as *mut _,
            iov_len: payload.len(),
        };
        let mut control = [0u64; 4];
        // SAFETY: test-only sendmsg over buffers owned here.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(4) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(4) as _;
            libc::CMSG_DATA(cmsg).cast::<i32>().write_unaligned(fd);
            assert!(libc::sendmsg(sock, &msg, 0) > 0);
        }
    }

    #[test]
    fn a_queued_connection_delivers_its_fd_after_the_sender_left() {
        let dir = tempfile::tempdir().unwrap();
        let console = ConsoleSocket::bind(&dir.path().join("console.sock")).unwrap();
        let (mut r, w) = std::os::unix::net::UnixStream::pair().unwrap();
        {
            // Connect and send before anyone accepts, then go away: as the runtime does.
            let sender = std::os::unix::net::UnixStream::connect(console.path()).unwrap();
            send_fd(sender.as_raw_fd(), w.as_raw_fd());
        }
        let got = console.receive_master().unwrap();
        drop(w);
        let mut f = std::fs::File::from(got);
        f.write_all(b"hi").unwrap();
        drop(f);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hi");
    }

    #[test]
    fn nobody_connecting_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.sock");
        let console = ConsoleSocket::bind(&path).unwrap();
        assert!(matches!(
            console.receive_master(),
            Err(ConsoleError::Receive { .. })
        ));
        drop(console);
        assert!(!path.exists());
    }
}
