//! Kernel uevents from a netlink socket, instead of udevd: each says a
//! device came or went, with its modalias when a driver may serve it.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    bind, recv, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};

/// One kernel uevent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uevent {
    pub action: String,
    pub devpath: String,
    pub subsystem: Option<String>,
    pub modalias: Option<String>,
    pub devname: Option<String>,
}

/// Decodes `action@devpath\0KEY=value\0...`; udev's own re-broadcasts
/// (`libudev` header) and garbage are `None`.
pub fn parse(msg: &[u8]) -> Option<Uevent> {
    let mut parts = msg.split(|&b| b == 0).filter(|p| !p.is_empty());
    let head = std::str::from_utf8(parts.next()?).ok()?;
    let (action, devpath) = head.split_once('@')?;
    let mut ev = Uevent {
        action: action.to_string(),
        devpath: devpath.to_string(),
        subsystem: None,
        modalias: None,
        devname: None,
    };
    for part in parts {
        let Ok(kv) = std::str::from_utf8(part) else {
            continue;
        };
        match kv.split_once('=') {
            Some(("SUBSYSTEM", v)) => ev.subsystem = Some(v.into()),
            Some(("MODALIAS", v)) => ev.modalias = Some(v.into()),
            Some(("DEVNAME", v)) => ev.devname = Some(v.into()),
            _ => {}
        }
    }
    Some(ev)
}

/// A socket on the kernel's uevent multicast group.
pub struct Listener {
    fd: OwnedFd,
}

impl Listener {
    pub fn open() -> nix::Result<Listener> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkKObjectUEvent,
        )?;
        // Coldplug makes bursts; a large buffer keeps them.
        let _ = setsockopt(&fd, sockopt::RcvBufForce, &(4 << 20));
        bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &NetlinkAddr::new(0, 1),
        )?;
        Ok(Listener { fd })
    }

    /// The next event within `wait`, or `None`.
    pub fn next(&self, wait: Duration) -> Option<Uevent> {
        let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(n) if n > 0 => {}
            _ => return None,
        }
        let mut buf = vec![0u8; 16384];
        let n = recv(
            std::os::fd::AsRawFd::as_raw_fd(&self.fd),
            &mut buf,
            MsgFlags::empty(),
        )
        .ok()?;
        // An undecodable message still counts as activity: report it empty.
        Some(parse(buf.get(..n)?).unwrap_or(Uevent {
            action: String::new(),
            devpath: String::new(),
            subsystem: None,
            modalias: None,
            devname: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uevents_decode() {
        let msg = b"add@/devices/pci0000:00/0000:00:03.0/virtio0\0ACTION=add\0DEVPATH=/devices/pci0000:00/0000:00:03.0/virtio0\0SUBSYSTEM=virtio\0MODALIAS=virtio:d00000001v00001AF4\0SEQNUM=812\0";
        let ev = parse(msg).unwrap();
        assert_eq!(ev.action, "add");
        assert_eq!(ev.subsystem.as_deref(), Some("virtio"));
        assert_eq!(ev.modalias.as_deref(), Some("virtio:d00000001v00001AF4"));
        assert!(parse(b"libudev\0\xfe\xed").is_none());
        assert!(parse(b"").is_none());
    }
}
