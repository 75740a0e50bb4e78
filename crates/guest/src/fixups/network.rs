//! Network interface names: the guest's network configuration names its
//! NICs (`eno1`, `enp0s5`, `eth0`), and new hardware gets new names. Each
//! configured name is pinned to the MAC of the source NIC it belonged to
//! (the VIF keeps that MAC), and stale persistent-net rules are dropped.

use super::Ctx;
use crate::SourceNic;

const NAME: &str = "network";
const PERSISTENT_NET: &str = "/etc/udev/rules.d/70-persistent-net.rules";

pub(super) fn run(ctx: &mut Ctx<'_>) -> crate::Result<()> {
    let names = configured_names(ctx)?;
    let rules = match ctx.fs.read(PERSISTENT_NET)? {
        Some(text) => persistent_rules(&text),
        None => Vec::new(),
    };
    let plan = plan(&names, &rules, &ctx.options.nics);
    for reason in plan.unpinned {
        ctx.skip(NAME, reason);
    }
    if !plan.pins.is_empty() {
        if let Some(version) = systemd_udevd_version(ctx)? {
            for pin in &plan.pins {
                let path = format!("/etc/systemd/network/10-xenlift-{}.link", pin.name);
                let text = link_file(&pin.name, &pin.mac, version >= 245);
                let change = ctx
                    .fs
                    .create(NAME, &path, &text, 0o644, vec![pin.why.clone()]);
                ctx.record(NAME, &path, change);
            }
        } else {
            let path = "/etc/udev/rules.d/70-xenlift-net.rules";
            let text = udev_rules(&plan.pins);
            let details = plan.pins.iter().map(|p| p.why.clone()).collect();
            let change = ctx.fs.create(NAME, path, &text, 0o644, details);
            ctx.record(NAME, path, change);
        }
    }
    if !rules.is_empty() || ctx.fs.exists(PERSISTENT_NET) {
        let change = ctx.fs.disable(
            NAME,
            PERSISTENT_NET,
            vec![
                "pins names to the source's MACs in a way that renames the new NICs unpredictably"
                    .into(),
            ],
        );
        ctx.record(NAME, PERSISTENT_NET, change);
    }
    if names.is_empty() {
        ctx.skip(NAME, "no interface named in systemd-networkd, ifupdown, NetworkManager, netplan or ifcfg configuration");
    }
    Ok(())
}

/// A name to keep, the MAC it follows, and why we believe they belong together.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pin {
    name: String,
    mac: String,
    why: String,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Plan {
    pins: Vec<Pin>,
    unpinned: Vec<String>,
}

/// Matches configured names to source NICs: by the name the agent saw, then
/// by a persistent-net rule whose MAC is a source NIC's, then one name to
/// one NIC.
fn plan(names: &[(String, String)], rules: &[(String, String)], nics: &[SourceNic]) -> Plan {
    let mut out = Plan::default();
    let norm = |m: &str| m.to_ascii_lowercase();
    for (name, file) in names {
        let by_name = nics
            .iter()
            .find(|n| n.name.as_deref() == Some(name.as_str()));
        let by_rule = rules.iter().find(|(rule_name, mac)| {
            rule_name == name && nics.iter().any(|n| norm(&n.mac) == norm(mac))
        });
        let pin = if let Some(n) = by_name {
            Some((
                n.mac.clone(),
                format!(
                    "{name} ({file}) pinned to {}: the source NIC of that name",
                    norm(&n.mac)
                ),
            ))
        } else if let Some((_, mac)) = by_rule {
            Some((
                mac.clone(),
                format!(
                    "{name} ({file}) pinned to {}: the persistent-net rule's MAC is a source NIC's",
                    norm(mac)
                ),
            ))
        } else if names.len() == 1 && nics.len() == 1 {
            let mac = &nics[0].mac;
            Some((mac.clone(), format!("{name} ({file}) pinned to {}: the only configured interface and the only source NIC", norm(mac))))
        } else {
            None
        };
        match pin {
            Some((mac, why)) => out.pins.push(Pin {
                name: name.clone(),
                mac: norm(&mac),
                why,
            }),
            None if nics.is_empty() => out.unpinned.push(format!(
                "{name} ({file}) not pinned: the source NICs' MACs are unknown (give them in the options)"
            )),
            None => out.unpinned.push(format!(
                "{name} ({file}) not pinned: cannot tell which of {} source NICs it was",
                nics.len()
            )),
        }
    }
    out
}

/// Interface names that look like physical NICs.
fn physical(name: &str) -> bool {
    const VIRTUAL: &[&str] = &[
        "lo", "bond", "br", "team", "virbr", "docker", "veth", "tun", "tap", "wg", "vlan", "dummy",
        "ppp",
    ];
    !name.is_empty()
        && !name.contains([':', '.', '*', '?', '[', ' ', '/'])
        && !VIRTUAL.iter().any(|v| name.starts_with(v))
}

/// Interface names configured in the guest, with the file that names them.
fn configured_names(ctx: &Ctx<'_>) -> crate::Result<Vec<(String, String)>> {
    let mut found: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, file: &str| {
        if physical(name) && !found.iter().any(|(n, _)| n == name) {
            found.push((name.to_string(), file.to_string()));
        }
    };
    for f in ctx.fs.list("/etc/systemd/network")? {
        if f.ends_with(".network") {
            let path = format!("/etc/systemd/network/{f}");
            for name in networkd_names(&ctx.fs.read(&path)?.unwrap_or_default()) {
                add(&name, &path);
            }
        }
    }
    let mut ifupdown = vec!["/etc/network/interfaces".to_string()];
    ifupdown.extend(
        ctx.fs
            .list("/etc/network/interfaces.d")?
            .into_iter()
            .map(|f| format!("/etc/network/interfaces.d/{f}")),
    );
    for path in ifupdown {
        for name in ifupdown_names(&ctx.fs.read(&path)?.unwrap_or_default()) {
            add(&name, &path);
        }
    }
    for f in ctx.fs.list("/etc/NetworkManager/system-connections")? {
        let path = format!("/etc/NetworkManager/system-connections/{f}");
        for name in key_values(&ctx.fs.read(&path)?.unwrap_or_default(), "interface-name") {
            add(&name, &path);
        }
    }
    for f in ctx.fs.list("/etc/sysconfig/network-scripts")? {
        if f.starts_with("ifcfg-") {
            let path = format!("/etc/sysconfig/network-scripts/{f}");
            for name in key_values(&ctx.fs.read(&path)?.unwrap_or_default(), "DEVICE") {
                add(&name, &path);
            }
        }
    }
    for f in ctx.fs.list("/etc/netplan")? {
        if f.ends_with(".yaml") || f.ends_with(".yml") {
            let path = format!("/etc/netplan/{f}");
            for name in netplan_names(&ctx.fs.read(&path)?.unwrap_or_default()) {
                add(&name, &path);
            }
        }
    }
    Ok(found)
}

fn networkd_names(text: &str) -> Vec<String> {
    let mut in_match = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_match = line == "[Match]";
        } else if let (true, Some(v)) = (in_match, line.strip_prefix("Name=")) {
            out.extend(v.split_whitespace().map(str::to_string));
        }
    }
    out
}

fn ifupdown_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("auto" | "allow-hotplug") => out.extend(words.map(str::to_string)),
            Some("iface") => out.extend(words.next().map(str::to_string)),
            _ => {}
        }
    }
    out
}

/// `KEY=value` lines (ifcfg, NetworkManager keyfiles), quotes removed.
fn key_values(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
        .collect()
}

/// Interface ids under `ethernets:`, or their `set-name:` when they match by other means.
fn netplan_names(text: &str) -> Vec<String> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut out = Vec::new();
    let mut section: Option<usize> = None;
    let mut id_indent: Option<usize> = None;
    let mut current: Option<(String, bool)> = None;
    let flush = |current: &mut Option<(String, bool)>, out: &mut Vec<String>| {
        if let Some((id, matched)) = current.take() {
            if !matched {
                out.push(id);
            }
        }
    };
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let n = indent(line);
        match section {
            Some(s) if n > s => {
                let level = *id_indent.get_or_insert(n);
                if n == level {
                    flush(&mut current, &mut out);
                    current = t
                        .strip_suffix(':')
                        .map(|id| (id.trim_matches('"').to_string(), false));
                } else if let Some((_, matched)) = current.as_mut() {
                    if t.starts_with("match:") {
                        *matched = true;
                    } else if let Some(name) = t.strip_prefix("set-name:") {
                        out.push(name.trim().trim_matches('"').to_string());
                    }
                }
            }
            _ => {
                flush(&mut current, &mut out);
                section = (t == "ethernets:").then_some(n);
                id_indent = None;
            }
        }
    }
    flush(&mut current, &mut out);
    out
}

/// `(NAME, MAC)` pairs from a persistent-net rules file.
fn persistent_rules(text: &str) -> Vec<(String, String)> {
    let value = |line: &str, key: &str| -> Option<String> {
        let at = line.find(key)? + key.len();
        let rest = line[at..].trim_start_matches(['=', '"']);
        Some(rest[..rest.find('"')?].to_string())
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| Some((value(l, "NAME=")?, value(l, "ATTR{address}==")?)))
        .collect()
}

/// The guest's systemd-udevd version, or None when it has no systemd-udevd.
fn systemd_udevd_version(ctx: &Ctx<'_>) -> crate::Result<Option<u32>> {
    let has_udevd = [
        "/lib/systemd/systemd-udevd",
        "/usr/lib/systemd/systemd-udevd",
    ]
    .iter()
    .any(|p| ctx.fs.exists(p));
    if !has_udevd {
        return Ok(None);
    }
    for dir in [
        "/usr/lib/systemd",
        "/lib/systemd",
        "/usr/lib/x86_64-linux-gnu/systemd",
        "/usr/lib64/systemd",
    ] {
        for f in ctx.fs.list(dir)? {
            if let Some(v) = f
                .strip_prefix("libsystemd-shared-")
                .and_then(|r| r.split(['.', '-']).next())
            {
                if let Ok(v) = v.parse() {
                    return Ok(Some(v));
                }
            }
        }
    }
    // Unknown version: assume old, whose matching every systemd understands.
    Ok(Some(0))
}

fn link_file(name: &str, mac: &str, permanent: bool) -> String {
    // The permanent address leaves out bridges and VLANs that borrow the MAC.
    let key = if permanent {
        "PermanentMACAddress"
    } else {
        "MACAddress"
    };
    format!(
        "# Written by xenlift: keeps the name this NIC had on the source machine.\n[Match]\n{key}={mac}\n\n[Link]\nName={name}\n"
    )
}

fn udev_rules(pins: &[Pin]) -> String {
    let mut out =
        String::from("# Written by xenlift: keeps the names NICs had on the source machine.\n");
    for p in pins {
        out.push_str(&format!(
            "SUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"?*\", ATTR{{address}}==\"{}\", ATTR{{type}}==\"1\", NAME=\"{}\"\n",
            p.mac, p.name
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic(mac: &str, name: Option<&str>) -> SourceNic {
        SourceNic {
            mac: mac.into(),
            name: name.map(str::to_string),
        }
    }

    #[test]
    fn reads_names_from_each_configuration_style() {
        assert_eq!(
            networkd_names("[Match]\nName=enp0s5 eno1\n[Network]\nName=x\nDHCP=yes\n"),
            ["enp0s5", "eno1"]
        );
        assert_eq!(
            ifupdown_names("auto lo\niface lo inet loopback\n\nallow-hotplug ens3\niface ens3 inet dhcp\n# iface old0 inet dhcp\n"),
            ["lo", "lo", "ens3", "ens3"]
        );
        assert_eq!(
            key_values("DEVICE=\"eth0\"\nHWADDR=00:11\n", "DEVICE"),
            ["eth0"]
        );
        assert_eq!(
            key_values("[connection]\ninterface-name=eno2\n", "interface-name"),
            ["eno2"]
        );
        let netplan = "network:\n  version: 2\n  ethernets:\n    eno1:\n      dhcp4: true\n    lan:\n      match:\n        macaddress: 00:11:22:33:44:55\n      set-name: lan0\n    \"enp3s0\":\n      addresses: [10.0.0.2/24]\n  bridges:\n    br0:\n      interfaces: [eno1]\n";
        assert_eq!(netplan_names(netplan), ["eno1", "lan0", "enp3s0"]);
        assert!(physical("enp0s5") && physical("eth0") && physical("eno1"));
        assert!(
            !physical("lo")
                && !physical("br0")
                && !physical("eth0.100")
                && !physical("en*")
                && !physical("eth0:1")
        );
    }

    #[test]
    fn reads_persistent_net_rules() {
        let text = "# PCI device 0x8086:0x100e (e1000)\nSUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"?*\", ATTR{address}==\"52:54:00:0a:0b:0c\", ATTR{dev_id}==\"0x0\", ATTR{type}==\"1\", KERNEL==\"eth*\", NAME=\"eth0\"\n";
        assert_eq!(
            persistent_rules(text),
            [("eth0".to_string(), "52:54:00:0a:0b:0c".to_string())]
        );
    }

    #[test]
    fn plans_pins_from_the_best_evidence() {
        let names = vec![
            ("eth0".to_string(), "ifcfg-eth0".to_string()),
            ("eno2".to_string(), "n".to_string()),
        ];
        let rules = vec![("eth0".to_string(), "AA:BB:00:00:00:01".to_string())];
        let nics = [
            nic("aa:bb:00:00:00:01", None),
            nic("aa:bb:00:00:00:02", Some("eno2")),
        ];
        let p = plan(&names, &rules, &nics);
        assert_eq!(p.pins.len(), 2, "{p:?}");
        assert_eq!(
            (p.pins[0].name.as_str(), p.pins[0].mac.as_str()),
            ("eth0", "aa:bb:00:00:00:01")
        );
        assert_eq!(
            (p.pins[1].name.as_str(), p.pins[1].mac.as_str()),
            ("eno2", "aa:bb:00:00:00:02")
        );

        // One name, one NIC: they belong together; a stale rule's MAC is ignored.
        let one = vec![("enp0s5".to_string(), "50-wired.network".to_string())];
        let stale = vec![("eth0".to_string(), "52:54:00:0a:0b:0c".to_string())];
        let p = plan(&one, &stale, &[nic("52:54:00:12:34:56", None)]);
        assert_eq!(p.pins[0].mac, "52:54:00:12:34:56");
        assert!(p.unpinned.is_empty());

        // Nothing known: said so.
        let p = plan(&one, &[], &[]);
        assert!(p.pins.is_empty());
        assert!(p.unpinned[0].contains("unknown"));
        let p = plan(&one, &[], &nics);
        assert!(p.unpinned[0].contains("which of 2"));
    }

    #[test]
    fn writes_link_files_and_udev_rules() {
        let link = link_file("enp0s5", "52:54:00:12:34:56", true);
        assert!(link.contains("[Match]\nPermanentMACAddress=52:54:00:12:34:56\n"));
        assert!(link.contains("[Link]\nName=enp0s5\n"));
        assert!(link_file("eth0", "aa", false).contains("\nMACAddress=aa\n"));
        let rules = udev_rules(&[Pin {
            name: "eth0".into(),
            mac: "aa:bb".into(),
            why: String::new(),
        }]);
        assert!(rules.contains("ATTR{address}==\"aa:bb\", ATTR{type}==\"1\", NAME=\"eth0\"\n"));
    }
}
