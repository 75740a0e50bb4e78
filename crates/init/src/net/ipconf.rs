//! The kernel's `ip=` syntax (Documentation/admin-guide/nfs/nfsroot.rst):
//! `ip=off`, `ip=dhcp`, `ip=DEVICE:dhcp` or
//! `ip=<client>:<server>:<gw>:<netmask>:<hostname>:<device>:<autoconf>:<dns0>:<dns1>:<ntp0>`.

use std::net::Ipv4Addr;

/// How the appliance gets its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetConfig {
    /// No network.
    Off,
    /// DHCP on `device`, or on every Ethernet link with a carrier.
    Dhcp { device: Option<String> },
    /// A fixed address.
    Static(StaticConfig),
}

/// A fixed IPv4 configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticConfig {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub hostname: Option<String>,
    /// The link by name; the first Ethernet link with a carrier when absent.
    pub device: Option<String>,
    pub dns: Vec<Ipv4Addr>,
}

/// What is wrong with an `ip=` value.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum IpConfError {
    #[error("{field} {value:?} is not an IPv4 address")]
    BadAddress { field: &'static str, value: String },
    #[error("netmask {0:?} is not a contiguous IPv4 mask")]
    BadMask(String),
    #[error("a static address needs a netmask (ip=CLIENT::GATEWAY:NETMASK:HOST:DEVICE:none)")]
    NoMask,
    #[error("autoconf {0:?} is not one of off, none, dhcp, on, any")]
    BadAutoconf(String),
}

pub fn parse(value: &str) -> Result<NetConfig, IpConfError> {
    match value {
        "off" | "none" => return Ok(NetConfig::Off),
        "" | "on" | "any" | "dhcp" | "bootp" | "rarp" | "both" => {
            return Ok(NetConfig::Dhcp { device: None })
        }
        _ => {}
    }
    let fields: Vec<&str> = value.split(':').collect();
    let field = |i: usize| fields.get(i).copied().unwrap_or("");
    // dracut's short form: ip=DEVICE:dhcp
    if fields.len() == 2 && is_dhcp(field(1)) {
        return Ok(NetConfig::Dhcp {
            device: Some(field(0).to_string()),
        });
    }
    let device = non_empty(field(5));
    let autoconf = field(6);
    if is_dhcp(autoconf) || (field(0).is_empty() && autoconf.is_empty()) {
        return Ok(NetConfig::Dhcp { device });
    }
    if !matches!(autoconf, "" | "off" | "none") {
        return Err(IpConfError::BadAutoconf(autoconf.into()));
    }
    let address = addr("client address", field(0))?;
    let mask = field(3);
    if mask.is_empty() {
        return Err(IpConfError::NoMask);
    }
    let prefix = mask_prefix(mask)?;
    let gateway = optional_addr("gateway", field(2))?;
    let mut dns = Vec::new();
    for i in [7, 8] {
        if let Some(a) = optional_addr("DNS server", field(i))? {
            dns.push(a);
        }
    }
    Ok(NetConfig::Static(StaticConfig {
        address,
        prefix,
        gateway,
        hostname: non_empty(field(4)),
        device,
        dns,
    }))
}

fn is_dhcp(autoconf: &str) -> bool {
    matches!(autoconf, "dhcp" | "on" | "any" | "bootp" | "both")
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn addr(field: &'static str, value: &str) -> Result<Ipv4Addr, IpConfError> {
    value.parse().map_err(|_| IpConfError::BadAddress {
        field,
        value: value.into(),
    })
}

fn optional_addr(field: &'static str, value: &str) -> Result<Option<Ipv4Addr>, IpConfError> {
    if value.is_empty() {
        Ok(None)
    } else {
        addr(field, value).map(Some)
    }
}

/// `255.255.255.0` -> 24; a bare `24` is taken too.
pub fn mask_prefix(mask: &str) -> Result<u8, IpConfError> {
    if let Ok(bits) = mask.parse::<u8>() {
        if bits <= 32 {
            return Ok(bits);
        }
    }
    let m: Ipv4Addr = mask
        .parse()
        .map_err(|_| IpConfError::BadMask(mask.into()))?;
    let bits = u32::from(m);
    let prefix = bits.leading_ones();
    if bits.checked_shl(prefix).unwrap_or(0) != 0 {
        return Err(IpConfError::BadMask(mask.into()));
    }
    Ok(prefix as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_of_ip() {
        let dhcp_any = Ok(NetConfig::Dhcp { device: None });
        let rows: Vec<(&str, Result<NetConfig, IpConfError>)> = vec![
            ("off", Ok(NetConfig::Off)),
            ("dhcp", dhcp_any.clone()),
            ("any", dhcp_any.clone()),
            (
                "eth1:dhcp",
                Ok(NetConfig::Dhcp {
                    device: Some("eth1".into()),
                }),
            ),
            (
                ":::::ens3:dhcp",
                Ok(NetConfig::Dhcp {
                    device: Some("ens3".into()),
                }),
            ),
            (
                "192.168.1.9:::255.255.0.0::::",
                Ok(NetConfig::Static(StaticConfig {
                    address: Ipv4Addr::new(192, 168, 1, 9),
                    prefix: 16,
                    gateway: None,
                    hostname: None,
                    device: None,
                    dns: vec![],
                })),
            ),
            (
                "10.1.1.1::10.1.1.254:255.255.255.0:h:eth0:off:1.1.1.1:8.8.8.8",
                Ok(NetConfig::Static(StaticConfig {
                    address: Ipv4Addr::new(10, 1, 1, 1),
                    prefix: 24,
                    gateway: Some(Ipv4Addr::new(10, 1, 1, 254)),
                    hostname: Some("h".into()),
                    device: Some("eth0".into()),
                    dns: vec![Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(8, 8, 8, 8)],
                })),
            ),
            ("10.1.1.1", Err(IpConfError::NoMask)),
            (
                "10.1.1.x:::24",
                Err(IpConfError::BadAddress {
                    field: "client address",
                    value: "10.1.1.x".into(),
                }),
            ),
            (
                "10.1.1.1:::255.0.255.0",
                Err(IpConfError::BadMask("255.0.255.0".into())),
            ),
            (
                "10.1.1.1:::24:::static",
                Err(IpConfError::BadAutoconf("static".into())),
            ),
        ];
        for (i, (value, want)) in rows.iter().enumerate() {
            assert_eq!(&parse(value), want, "row {i}: ip={value}");
        }
    }
}
