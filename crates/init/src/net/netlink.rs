//! The three rtnetlink requests the appliance needs: set a link up, add an
//! IPv4 address, add a default route. Written as raw messages on purpose:
//! the `rtnetlink` crate is async (it would bring tokio into PID 1) and the
//! message crates under it change their API between minor releases, while
//! these fixed messages are a few dozen bytes each.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_ERROR: u16 = 2;
const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;

/// An rtnetlink socket.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    pub fn open() -> io::Result<Netlink> {
        // SAFETY: plain socket(2); the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by socket(2) and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Netlink { fd, seq: 0 })
    }

    /// Sets link `index` up.
    pub fn link_up(&mut self, index: u32) -> io::Result<()> {
        let mut body = Vec::with_capacity(16);
        body.extend([0u8, 0]); // family, pad
        body.extend(0u16.to_ne_bytes()); // type
        body.extend(index.to_ne_bytes());
        body.extend((libc::IFF_UP as u32).to_ne_bytes()); // flags
        body.extend((libc::IFF_UP as u32).to_ne_bytes()); // change mask
        self.request(RTM_NEWLINK, 0, &body)
    }

    /// Adds (or replaces) `address/prefix` on link `index`.
    pub fn add_address(&mut self, index: u32, address: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut body = vec![libc::AF_INET as u8, prefix, 0, 0];
        body.extend(index.to_ne_bytes());
        attr(&mut body, IFA_LOCAL, &address.octets());
        attr(&mut body, IFA_ADDRESS, &address.octets());
        let host_bits = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
        let broadcast = Ipv4Addr::from(u32::from(address) | host_bits);
        attr(&mut body, IFA_BROADCAST, &broadcast.octets());
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, &body)
    }

    /// Adds (or replaces) the default route through `gateway` on link `index`.
    pub fn add_default_route(&mut self, index: u32, gateway: Ipv4Addr) -> io::Result<()> {
        let mut body = vec![
            libc::AF_INET as u8,
            0, // dst_len: default route
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            0, // scope universe
            RTN_UNICAST,
        ];
        body.extend(0u32.to_ne_bytes()); // flags
        attr(&mut body, RTA_GATEWAY, &gateway.octets());
        attr(&mut body, RTA_OIF, &index.to_ne_bytes());
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &body)
    }

    fn request(&mut self, kind: u16, flags: u16, body: &[u8]) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let mut msg = Vec::with_capacity(16 + body.len());
        msg.extend(((16 + body.len()) as u32).to_ne_bytes());
        msg.extend(kind.to_ne_bytes());
        msg.extend((NLM_F_REQUEST | NLM_F_ACK | flags).to_ne_bytes());
        msg.extend(self.seq.to_ne_bytes());
        msg.extend(0u32.to_ne_bytes());
        msg.extend(body);
        // SAFETY: msg is a live buffer of msg.len() bytes.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: buf is a live, writable buffer of buf.len() bytes.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let reply = buf.get(..n as usize).unwrap_or(&[]);
            if let Some(result) = ack(reply, self.seq) {
                return result;
            }
        }
    }
}

/// Appends one rtattr, padded to 4 bytes.
fn attr(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    out.extend(((4 + data.len()) as u16).to_ne_bytes());
    out.extend(kind.to_ne_bytes());
    out.extend(data);
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// The outcome carried by the NLMSG_ERROR answering `seq`, if `reply` holds it.
fn ack(reply: &[u8], seq: u32) -> Option<io::Result<()>> {
    let mut at = 0usize;
    while let Some(h) = reply.get(at..at + 16) {
        let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let kind = u16::from_ne_bytes([h[4], h[5]]);
        let msg_seq = u32::from_ne_bytes([h[8], h[9], h[10], h[11]]);
        if kind == NLMSG_ERROR && msg_seq == seq {
            let e = reply.get(at + 16..at + 20)?;
            let code = i32::from_ne_bytes([e[0], e[1], e[2], e[3]]);
            return Some(if code == 0 {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(-code))
            });
        }
        if len < 16 {
            return None;
        }
        at += (len + 3) & !3;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_acks_decoded() {
        let mut v = Vec::new();
        attr(&mut v, 5, &[1, 2, 3]);
        assert_eq!(v, [7, 0, 5, 0, 1, 2, 3, 0]);
        let mut reply = Vec::new();
        reply.extend(36u32.to_ne_bytes());
        reply.extend(NLMSG_ERROR.to_ne_bytes());
        reply.extend(0u16.to_ne_bytes());
        reply.extend(9u32.to_ne_bytes());
        reply.extend(0u32.to_ne_bytes());
        reply.extend((-17i32).to_ne_bytes());
        reply.extend([0u8; 16]);
        let err = ack(&reply, 9).unwrap().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(17));
        assert!(ack(&reply, 10).is_none(), "other sequence number");
        assert!(ack(&reply[..10], 9).is_none(), "short reply must not panic");
    }
}
