//! A small DHCPv4 client (RFC 2131): DISCOVER, OFFER, REQUEST, ACK on a UDP
//! socket bound to one link (SO_BINDTODEVICE) with the broadcast flag set, so
//! replies arrive before the link has an address. The address is kept for the
//! whole run: a conversion outlives no lease we have seen in practice, and a
//! renewal thread is left for when one does.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};

const COOKIE: [u8; 4] = [99, 130, 83, 99];
const DISCOVER: u8 = 1;
const OFFER: u8 = 2;
const REQUEST: u8 = 3;
const ACK: u8 = 5;
const NAK: u8 = 6;

/// What a server granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<String>,
    pub server: Option<Ipv4Addr>,
    pub lease_secs: Option<u32>,
}

/// DHCP failures.
#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    #[error("no DHCP offer on {0} (is a DHCP server on this network?)")]
    NoOffer(String),
    #[error("the DHCP server on {0} did not acknowledge our request")]
    NoAck(String),
    #[error("DHCP socket on {0}: {1}")]
    Socket(String, std::io::Error),
}

/// A reply, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub kind: u8,
    pub lease: Lease,
}

/// Builds a DISCOVER (no `request`) or a REQUEST for `(address, server)`.
pub fn build(xid: u32, mac: [u8; 6], request: Option<(Ipv4Addr, Ipv4Addr)>) -> Vec<u8> {
    let mut p = vec![0u8; 236];
    p[0] = 1; // BOOTREQUEST
    p[1] = 1; // Ethernet
    p[2] = 6;
    p[4..8].copy_from_slice(&xid.to_be_bytes());
    p[10..12].copy_from_slice(&0x8000u16.to_be_bytes()); // broadcast replies
    p[28..34].copy_from_slice(&mac);
    p.extend(COOKIE);
    let kind = if request.is_some() { REQUEST } else { DISCOVER };
    p.extend([53, 1, kind]);
    p.extend([61, 7, 1]);
    p.extend(mac);
    p.extend([55, 7, 1, 3, 6, 12, 15, 51, 54]);
    p.extend([57, 2, 0x05, 0xdc]);
    if let Some((address, server)) = request {
        p.extend([50, 4]);
        p.extend(address.octets());
        p.extend([54, 4]);
        p.extend(server.octets());
    }
    p.push(255);
    p.resize(p.len().max(300), 0);
    p
}

/// Decodes a server reply meant for `(xid, mac)`; anything else is `None`.
pub fn parse(packet: &[u8], xid: u32, mac: [u8; 6]) -> Option<Reply> {
    if packet.len() < 240 || packet[0] != 2 || packet.get(4..8)? != xid.to_be_bytes() {
        return None;
    }
    if packet.get(28..34)? != mac || packet.get(236..240)? != COOKIE {
        return None;
    }
    let address = ipv4(packet.get(16..20)?)?;
    let mut lease = Lease {
        address,
        prefix: 24,
        router: None,
        dns: Vec::new(),
        domain: None,
        server: None,
        lease_secs: None,
    };
    let mut kind = None;
    let mut i = 240;
    while let Some(&code) = packet.get(i) {
        match code {
            0 => {
                i += 1;
                continue;
            }
            255 => break,
            _ => {}
        }
        let len = *packet.get(i + 1)? as usize;
        let data = packet.get(i + 2..i + 2 + len)?;
        match code {
            1 => lease.prefix = ipv4(data).map(|m| u32::from(m).leading_ones() as u8)?,
            3 => lease.router = data.get(..4).and_then(ipv4),
            6 => lease.dns = data.chunks_exact(4).filter_map(ipv4).collect(),
            15 => lease.domain = Some(String::from_utf8_lossy(data).trim_end_matches('\0').into()),
            51 => {
                lease.lease_secs = data
                    .get(..4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            }
            53 => kind = data.first().copied(),
            54 => lease.server = data.get(..4).and_then(ipv4),
            _ => {}
        }
        i += 2 + len;
    }
    Some(Reply { kind: kind?, lease })
}

fn ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    let b: [u8; 4] = b.try_into().ok()?;
    Some(Ipv4Addr::from(b))
}

/// Gets a lease on `ifname` (already up) before `deadline`.
pub fn acquire(ifname: &str, mac: [u8; 6], deadline: Instant) -> Result<Lease, DhcpError> {
    let sock = open(ifname).map_err(|e| DhcpError::Socket(ifname.into(), e))?;
    let xid = transaction_id(mac);
    let discover = build(xid, mac, None);
    let mut wait = Duration::from_secs(1);
    while Instant::now() < deadline {
        send(&sock, &discover).map_err(|e| DhcpError::Socket(ifname.into(), e))?;
        if let Some(offer) = receive(&sock, xid, mac, &[OFFER], wait.min(left(deadline))) {
            let server = offer.lease.server.unwrap_or(Ipv4Addr::BROADCAST);
            let request = build(xid, mac, Some((offer.lease.address, server)));
            for _ in 0..3 {
                send(&sock, &request).map_err(|e| DhcpError::Socket(ifname.into(), e))?;
                match receive(&sock, xid, mac, &[ACK, NAK], Duration::from_secs(2)) {
                    Some(r) if r.kind == ACK => return Ok(merge(r.lease, &offer.lease)),
                    Some(_) => break, // NAK: start over
                    None => {}
                }
            }
            if Instant::now() >= deadline {
                return Err(DhcpError::NoAck(ifname.into()));
            }
        }
        wait = (wait * 2).min(Duration::from_secs(4));
    }
    Err(DhcpError::NoOffer(ifname.into()))
}

/// Some servers put options only in the OFFER.
fn merge(mut ack: Lease, offer: &Lease) -> Lease {
    if ack.router.is_none() {
        ack.router = offer.router;
    }
    if ack.dns.is_empty() {
        ack.dns = offer.dns.clone();
    }
    if ack.domain.is_none() {
        ack.domain = offer.domain.clone();
    }
    ack
}

fn left(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(10))
}

fn open(ifname: &str) -> std::io::Result<UdpSocket> {
    let fd: OwnedFd = socket::socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    socket::setsockopt(&fd, sockopt::Broadcast, &true)?;
    socket::setsockopt(
        &fd,
        sockopt::BindToDevice,
        &std::ffi::OsString::from(ifname),
    )?;
    socket::bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68)),
    )?;
    Ok(UdpSocket::from(fd))
}

fn send(sock: &UdpSocket, packet: &[u8]) -> std::io::Result<()> {
    sock.send_to(packet, SocketAddrV4::new(Ipv4Addr::BROADCAST, 67))
        .map(|_| ())
}

fn receive(
    sock: &UdpSocket,
    xid: u32,
    mac: [u8; 6],
    kinds: &[u8],
    wait: Duration,
) -> Option<Reply> {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 1500];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        sock.set_read_timeout(Some(deadline - now)).ok()?;
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => {
                if let Some(r) = buf.get(..n).and_then(|p| parse(p, xid, mac)) {
                    if kinds.contains(&r.kind) {
                        return Some(r);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

fn transaction_id(mac: [u8; 6]) -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]) ^ nanos
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    /// A reply as a server would build it from our request.
    fn reply(request: &[u8], kind: u8, options: &[u8]) -> Vec<u8> {
        let mut p = request[..236].to_vec();
        p[0] = 2;
        p[16..20].copy_from_slice(&[10, 0, 2, 15]);
        p.extend(COOKIE);
        p.extend([53, 1, kind]);
        p.extend(options);
        p.push(255);
        p
    }

    #[test]
    fn discover_is_well_formed() {
        let p = build(0xdeadbeef, MAC, None);
        assert!(p.len() >= 300);
        assert_eq!(&p[4..8], &0xdeadbeefu32.to_be_bytes());
        assert_eq!(&p[236..240], &COOKIE);
        assert_eq!(&p[240..243], &[53, 1, DISCOVER]);
        let r = build(
            1,
            MAC,
            Some((Ipv4Addr::new(10, 0, 2, 15), Ipv4Addr::new(10, 0, 2, 2))),
        );
        assert_eq!(&r[240..243], &[53, 1, REQUEST]);
        assert!(r.windows(6).any(|w| w == [50, 4, 10, 0, 2, 15]));
    }

    #[test]
    fn replies_are_decoded_and_foreign_ones_dropped() {
        let req = build(7, MAC, None);
        let opts = [
            1, 4, 255, 255, 255, 0, 3, 4, 10, 0, 2, 2, 6, 8, 10, 0, 2, 3, 1, 1, 1, 1, 15, 4, b'l',
            b'a', b'n', 0, 51, 4, 0, 0, 0x0e, 0x10, 54, 4, 10, 0, 2, 2, 0, 0,
        ];
        let good = reply(&req, OFFER, &opts);
        let r = parse(&good, 7, MAC).expect("offer");
        assert_eq!(r.kind, OFFER);
        assert_eq!(
            r.lease,
            Lease {
                address: Ipv4Addr::new(10, 0, 2, 15),
                prefix: 24,
                router: Some(Ipv4Addr::new(10, 0, 2, 2)),
                dns: vec![Ipv4Addr::new(10, 0, 2, 3), Ipv4Addr::new(1, 1, 1, 1)],
                domain: Some("lan".into()),
                server: Some(Ipv4Addr::new(10, 0, 2, 2)),
                lease_secs: Some(3600),
            }
        );
        assert!(parse(&good, 8, MAC).is_none(), "other transaction");
        assert!(parse(&good, 7, [0; 6]).is_none(), "other client");
        assert!(parse(&good[..100], 7, MAC).is_none(), "truncated");
        // An option running past the end must not panic.
        let mut cut = reply(&req, OFFER, &[6, 200, 1, 2]);
        cut.pop();
        assert!(parse(&cut, 7, MAC).is_none());
    }
}
