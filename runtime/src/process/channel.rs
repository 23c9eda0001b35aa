//! The parent/init channel: one SOCK_SEQPACKET socketpair carrying typed messages
//! as JSON, one datagram each, and a descriptor with a message that needs one.
//! EOF means the other side died; so does a reset (it closed with our message
//! unread) or a broken pipe: all three are `ChannelError::Closed`.

use std::cell::Cell;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// parent → init: the cgroup is joined and the id maps are written; go on.
    Proceed,
    /// parent → init: the cgroups made after the clone exist, with their
    /// limits; the init may enter them (`cgroups::Entry::ByItself`).
    CgroupsMade,
    /// init → parent: the process that will exec (after a second fork), host pid.
    InitPid { pid: i32 },
    /// init → parent: mounts are ready; run the prestart and createRuntime hooks.
    RunHooks,
    /// parent → init: those hooks succeeded.
    HooksDone,
    /// init → parent: everything is set up; the init now waits for `start`.
    Ready,
    /// parent → init: exec the process (a `run`, which holds the channel,
    /// starting the container it created). The channel closing is the exec.
    Start,
    /// init → parent, with the descriptor: the seccomp filter is loaded and
    /// this is its listener, for the agent on linux.seccomp.listenerPath.
    SeccompListener,
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
    /// The descriptor that came with the last message received, if any.
    received: Cell<Option<OwnedFd>>,
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
    let end = |fd| Channel {
        fd,
        received: Cell::new(None),
    };
    Ok((end(a), end(b)))
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
                return Err(closed_or(e));
            }
        }
    }

    /// Sends `msg` with a descriptor (SCM_RIGHTS).
    pub fn send_with_fd(&self, msg: &Message, fd: BorrowedFd) -> Result<(), ChannelError> {
        let buf = serde_json::to_vec(msg).map_err(ChannelError::Decode)?;
        let fds = [fd.as_raw_fd()];
        loop {
            match sendmsg::<()>(
                self.fd.as_raw_fd(),
                &[IoSlice::new(&buf)],
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(closed_or(e.into())),
            }
        }
    }

    pub fn recv(&self) -> Result<Message, ChannelError> {
        let mut space = nix::cmsg_space!(RawFd);
        let mut reset_seen = false;
        loop {
            // A buffer of the message's own size (MSG_TRUNC makes a peek
            // return a datagram's whole length): one of 64 KB, zeroed for
            // every message, was 16 page faults in the runtime and as many
            // copy-on-write ones in its init, for messages of ~10 bytes.
            let size = match nix::sys::socket::recv(
                self.fd.as_raw_fd(),
                &mut [],
                MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
            ) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                // A peer that closed with a message of ours unread is
                // reported once, ahead of what it sent before closing (an
                // init's Failed, say): read on to that, then to the end.
                Err(nix::errno::Errno::ECONNRESET) if !reset_seen => {
                    reset_seen = true;
                    continue;
                }
                Err(e) => return Err(closed_or(e.into())),
            };
            let mut buf = vec![0u8; size.max(1)];
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) => m,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(closed_or(e.into())),
            };
            let n = msg.bytes;
            let mut fd = None;
            for c in msg.cmsgs().map_err(|e| ChannelError::Io(e.into()))? {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    for raw in fds {
                        // SAFETY: descriptors just received are ours.
                        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                        fd.get_or_insert(owned);
                    }
                }
            }
            self.received.set(fd);
            if n == 0 {
                return Err(ChannelError::Closed);
            }
            return serde_json::from_slice(&buf[..n]).map_err(ChannelError::Decode);
        }
    }

    /// The descriptor that came with the last message.
    pub fn take_fd(&self) -> Option<OwnedFd> {
        self.received.take()
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

/// The other side is gone (ECONNRESET: it closed with a message of ours
/// unread; EPIPE: we wrote after it closed), or another error.
fn closed_or(e: io::Error) -> ChannelError {
    match e.raw_os_error() {
        Some(libc::ECONNRESET | libc::EPIPE) => ChannelError::Closed,
        _ => ChannelError::Io(e),
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
        let file = std::fs::File::open("/dev/null").unwrap();
        a.send_with_fd(&Message::SeccompListener, file.as_fd())
            .unwrap();
        assert_eq!(b.recv().unwrap(), Message::SeccompListener);
        assert!(b.take_fd().is_some());
        assert!(b.take_fd().is_none());
        drop(a);
        assert!(matches!(b.recv(), Err(ChannelError::Closed)));
    }

    #[test]
    fn a_message_is_read_whole_whatever_its_size() {
        let (a, b) = channel_pair().unwrap();
        let error = "x".repeat(100_000);
        a.send(&Message::Failed {
            error: error.clone(),
        })
        .unwrap();
        a.send(&Message::Ready).unwrap();
        assert_eq!(b.recv().unwrap(), Message::Failed { error });
        assert_eq!(b.recv().unwrap(), Message::Ready);
    }

    #[test]
    fn what_a_peer_said_before_it_left_with_our_message_unread_is_read() {
        let (a, b) = channel_pair().unwrap();
        b.send(&Message::CgroupsMade).unwrap();
        a.send(&Message::Failed {
            error: "mount".into(),
        })
        .unwrap();
        drop(a);
        assert_eq!(
            b.recv().unwrap(),
            Message::Failed {
                error: "mount".into()
            }
        );
        assert!(matches!(b.recv(), Err(ChannelError::Closed)));
    }

    #[test]
    fn a_peer_gone_with_our_message_unread_is_closed_too() {
        let (a, b) = channel_pair().unwrap();
        b.send(&Message::Ready).unwrap();
        drop(a);
        assert!(matches!(b.recv(), Err(ChannelError::Closed)));
        assert!(matches!(b.send(&Message::Ready), Err(ChannelError::Closed)));
    }
}
