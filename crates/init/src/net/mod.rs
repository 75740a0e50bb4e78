//! Network bring-up: links from /sys/class/net, a carrier wait, then DHCP
//! (every Ethernet link with a carrier, in parallel) or a static `ip=`
//! configuration, the default route and /etc/resolv.conf.

pub mod dhcp;
pub mod ipconf;
pub mod netlink;

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::console::say;
use ipconf::NetConfig;
use netlink::Netlink;

/// An Ethernet link.
#[derive(Debug, Clone)]
pub struct Link {
    pub name: String,
    pub index: u32,
    pub mac: [u8; 6],
}

/// A configured link.
#[derive(Debug, Clone)]
pub struct Configured {
    pub link: Link,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<String>,
}

/// `52:54:00:12:34:56` -> bytes.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.trim().split(':');
    for byte in mac.iter_mut() {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

pub fn format_mac(mac: [u8; 6]) -> String {
    let mut s = String::new();
    for (i, b) in mac.iter().enumerate() {
        let _ = write!(s, "{}{b:02x}", if i == 0 { "" } else { ":" });
    }
    s
}

/// Ethernet links (ARPHRD_ETHER), sorted by name.
pub fn ethernet_links(sys_class_net: &Path) -> Vec<Link> {
    let mut links = Vec::new();
    let Ok(entries) = std::fs::read_dir(sys_class_net) else {
        return links;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        if read("type").trim() != "1" {
            continue;
        }
        let (Ok(index), Some(mac)) = (read("ifindex").trim().parse(), parse_mac(&read("address")))
        else {
            continue;
        };
        links.push(Link {
            name: entry.file_name().to_string_lossy().into_owned(),
            index,
            mac,
        });
    }
    links.sort_by(|a, b| a.name.cmp(&b.name));
    links
}

fn has_carrier(link: &Link) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{}/carrier", link.name))
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}

/// Brings the network up as configured; returns the configured links, the
/// preferred one (BOOTIF, else the first) first.
pub fn bring_up(
    config: &NetConfig,
    bootif: Option<[u8; 6]>,
    wait: Duration,
) -> Result<Vec<Configured>, String> {
    let mut nl = Netlink::open().map_err(|e| format!("opening rtnetlink: {e}"))?;
    if let Ok(lo) = std::fs::read_to_string("/sys/class/net/lo/ifindex") {
        if let Ok(index) = lo.trim().parse() {
            let _ = nl.link_up(index);
        }
    }
    if *config == NetConfig::Off {
        return Ok(Vec::new());
    }
    let wanted_device = match config {
        NetConfig::Dhcp { device } => device.clone(),
        NetConfig::Static(s) => s.device.clone(),
        NetConfig::Off => None,
    };
    let mut links: Vec<Link> = ethernet_links(Path::new("/sys/class/net"))
        .into_iter()
        .filter(|l| wanted_device.as_ref().is_none_or(|d| *d == l.name))
        .collect();
    if links.is_empty() {
        return Err(match wanted_device {
            Some(d) => format!("no network link named {d} (ip= names a device this machine lacks)"),
            None => "no Ethernet link found (is the NIC driver in the appliance?)".into(),
        });
    }
    if let Some(mac) = bootif {
        links.sort_by_key(|l| l.mac != mac);
    }
    for link in &links {
        nl.link_up(link.index)
            .map_err(|e| format!("setting {} up: {e}", link.name))?;
    }
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline && !links.iter().any(has_carrier) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let up: Vec<Link> = links.iter().filter(|l| has_carrier(l)).cloned().collect();
    if up.is_empty() {
        return Err(format!(
            "no carrier on {} within {}s (cable plugged in? switch port up?)",
            names(&links),
            wait.as_secs()
        ));
    }
    let configured = match config {
        NetConfig::Static(s) => {
            let link = up[0].clone();
            nl.add_address(link.index, s.address, s.prefix)
                .map_err(|e| format!("adding {}/{} to {}: {e}", s.address, s.prefix, link.name))?;
            vec![Configured {
                link,
                address: s.address,
                prefix: s.prefix,
                gateway: s.gateway,
                dns: s.dns.clone(),
                domain: None,
            }]
        }
        _ => dhcp_all(
            &mut nl,
            &up,
            deadline.max(Instant::now() + Duration::from_secs(20)),
        )?,
    };
    if let Some(first) = configured.iter().find(|c| c.gateway.is_some()) {
        if let Some(gw) = first.gateway {
            nl.add_default_route(first.link.index, gw)
                .map_err(|e| format!("adding the default route via {gw}: {e}"))?;
        }
    }
    write_resolv_conf(&configured);
    Ok(configured)
}

fn dhcp_all(nl: &mut Netlink, up: &[Link], deadline: Instant) -> Result<Vec<Configured>, String> {
    let handles: Vec<_> = up
        .iter()
        .cloned()
        .map(|link| {
            std::thread::spawn(move || {
                let lease = dhcp::acquire(&link.name, link.mac, deadline);
                (link, lease)
            })
        })
        .collect();
    let mut configured = Vec::new();
    let mut errors = Vec::new();
    for h in handles {
        let Ok((link, lease)) = h.join() else {
            errors.push("a DHCP thread failed".to_string());
            continue;
        };
        match lease {
            Ok(l) => {
                nl.add_address(link.index, l.address, l.prefix)
                    .map_err(|e| {
                        format!("adding {}/{} to {}: {e}", l.address, l.prefix, link.name)
                    })?;
                configured.push(Configured {
                    link,
                    address: l.address,
                    prefix: l.prefix,
                    gateway: l.router,
                    dns: l.dns,
                    domain: l.domain,
                });
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if configured.is_empty() {
        return Err(errors.join("; "));
    }
    for e in errors {
        say(&format!("network: {e}"));
    }
    Ok(configured)
}

fn names(links: &[Link]) -> String {
    links
        .iter()
        .map(|l| l.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn write_resolv_conf(configured: &[Configured]) {
    let mut text = String::new();
    if let Some(domain) = configured.iter().find_map(|c| c.domain.as_ref()) {
        let _ = writeln!(text, "search {domain}");
    }
    let mut seen = Vec::new();
    for dns in configured.iter().flat_map(|c| c.dns.iter()) {
        if !seen.contains(dns) {
            seen.push(*dns);
            let _ = writeln!(text, "nameserver {dns}");
        }
    }
    if let Err(e) = std::fs::write("/etc/resolv.conf", text) {
        say(&format!(
            "network: writing /etc/resolv.conf: {e} (names will not resolve)"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_and_print() {
        let rows = [
            ("52:54:00:12:34:56", Some([0x52, 0x54, 0, 0x12, 0x34, 0x56])),
            (
                "52:54:00:12:34:56\n",
                Some([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
            ),
            ("52:54:00:12:34", None),
            ("52:54:00:12:34:56:78", None),
            ("zz:54:00:12:34:56", None),
        ];
        for (i, (text, want)) in rows.iter().enumerate() {
            assert_eq!(parse_mac(text), *want, "row {i}: {text:?}");
        }
        assert_eq!(
            format_mac([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
            "52:54:00:12:34:56"
        );
    }
}
