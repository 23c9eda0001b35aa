//! The parent/init channel: one SOCK_SEQPACKET socketpair carrying typed messages
//! as JSON, one datagram each. EOF means the other side died.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// parent → init: the cgroup is joined and the id maps are written; go on.
    Proceed,
    /// init → parent: the process that will exec (after a second fork), host pid.
    InitPid { pid: i32 },
    /// init → parent: mounts are ready; run the prestart and createRuntime hooks.
    RunHooks,
    /// parent → init: those hooks succeeded.
    HooksDone,
    /// init → parent: everything is set up; the init now waits for `start`.
    Ready,
    /// init → parent: set-up failed; the init exits after sending this.
    Failed { error: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("creating the init channel: {0}")]
    Create(#[source] nix::Error),
    #[error("init channel: {0}")]
    Io(#[source] io::Error),
    #[error("init channel: the other side closed it")]
    Closed,
    #[error("init channel: bad message: {0}")]
    Decode(#[source] serde_json::Error),
    #[error("init channel: expected {expected}, got {got:?}")]
    Unexpected {
        expected: &'static str,
        got: Message,
    },
}

pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: (parent end, init end). Both are close-on-exec.
pub fn channel_pair() -> Result<(Channel, Channel), ChannelError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(ChannelError::Create)?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Message) -> Result<(), ChannelError> {
        let buf = serde_json::to_vec(msg).map_err(ChannelError::Decode)?;
        loop {
            // SAFETY: sending from a valid buffer on a socket we own.
            let n = unsafe {
                libc::send(
                    self.fd.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if n >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(ChannelError::Io(e));
            }
        }
    }

    pub fn recv(&self) -> Result<Message, ChannelError> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: receiving into a buffer of the length given.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n > 0 {
                return serde_json::from_slice(&buf[..n as usize]).map_err(ChannelError::Decode);
            }
            if n == 0 {
                return Err(ChannelError::Closed);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(ChannelError::Io(e));
            }
        }
    }

    pub fn expect(&self, expected: Message, name: &'static str) -> Result<(), ChannelError> {
        match self.recv()? {
            m if m == expected => Ok(()),
            Message::Failed { error } => Err(ChannelError::Io(io::Error::other(error))),
            got => Err(ChannelError::Unexpected {
                expected: name,
                got,
            }),
        }
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_eof() {
        let (a, b) = channel_pair().unwrap();
        a.send(&Message::InitPid { pid: 42 }).unwrap();
        a.send(&Message::Failed {
            error: "boom".into(),
        })
        .unwrap();
        assert_eq!(b.recv().unwrap(), Message::InitPid { pid: 42 });
        assert_eq!(
            b.recv().unwrap(),
            Message::Failed {
                error: "boom".into()
            }
        );
        drop(a);
        assert!(matches!(b.recv(), Err(ChannelError::Closed)));
    }
}
