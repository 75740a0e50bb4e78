//! The VM to make: name, CPUs, memory, firmware, disks in order, NICs and
//! where they go. Built from the source disks and the options, then resolved
//! against the pool (SR, networks), without creating anything.

use std::fmt;
use std::path::Path;

use anyhow::Context;
use disk::{DiskKind, DiskLayout, SourceDisk};
use serde::Serialize;
use wire::{Format, VHD_MAX_SIZE};
use xapi::{Firmware, NetworkRecord, NetworkRef, SecureBoot, Session, SrRecord, SrRef};

use super::{firmware, Source, XapiArgs};
use crate::units::human;

/// Default hardware of a VM made from image files.
const DEFAULT_VCPUS: u32 = 2;
const DEFAULT_MEMORY: u64 = 2 << 30;
/// Userdevice 3 is the CD drive by XenServer convention.
const CD_USERDEVICE: u32 = 3;

#[derive(Debug, Clone, Serialize)]
pub struct VmPlan {
    pub name: String,
    pub vcpus: u32,
    pub memory_bytes: u64,
    pub firmware: Firmware,
    pub firmware_reason: String,
    /// Not known from the disks alone: off, so an unsigned loader boots.
    pub secure_boot: SecureBoot,
    /// The source machine's hostname, when the disks are this machine's.
    pub source_hostname: Option<String>,
    pub disks: Vec<DiskPlan>,
    pub nics: Vec<NicPlan>,
    pub sr: String,
    pub sr_uuid: String,
    pub sr_type: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiskPlan {
    pub source: String,
    pub serial: Option<String>,
    pub model: Option<String>,
    /// Virtual size (whole sectors).
    pub size: u64,
    pub userdevice: String,
    pub bootable: bool,
    /// Bytes to read and send (mapped, not holes, not all-zero blocks).
    pub data_bytes: u64,
    pub format: Format,
    pub format_reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NicPlan {
    /// The source interface name, when known.
    pub interface: Option<String>,
    pub mac: String,
    pub network: String,
    pub network_uuid: String,
    #[serde(skip)]
    pub network_ref: NetworkRef,
    pub mtu: u32,
}

/// A `--network NIC=NETWORK` argument.
#[derive(Debug, Clone)]
struct NetworkArg {
    nic: String,
    network: String,
}

fn parse_network_args(args: &[String]) -> anyhow::Result<Vec<NetworkArg>> {
    args.iter()
        .map(|a| {
            let (nic, network) = a
                .split_once('=')
                .filter(|(n, w)| !n.is_empty() && !w.is_empty())
                .with_context(|| {
                    format!("--network {a:?}: expected NIC=NETWORK (a source MAC or interface name, then a network name or UUID)")
                })?;
            Ok(NetworkArg {
                nic: nic.to_string(),
                network: network.to_string(),
            })
        })
        .collect()
}

pub fn is_mac(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A NIC of this machine.
#[derive(Debug, Clone)]
struct LocalNic {
    name: String,
    mac: String,
}

/// Physical NICs of this machine (those with a device behind them).
fn local_nics(sys_net: &Path) -> Vec<LocalNic> {
    let Ok(entries) = std::fs::read_dir(sys_net) else {
        return Vec::new();
    };
    let mut nics: Vec<LocalNic> = entries
        .flatten()
        .filter(|e| e.path().join("device").exists())
        .filter_map(|e| {
            let mac = std::fs::read_to_string(e.path().join("address")).ok()?;
            Some(LocalNic {
                name: e.file_name().to_string_lossy().into_owned(),
                mac: mac.trim().to_ascii_lowercase(),
            })
        })
        .filter(|n| is_mac(&n.mac) && n.mac != "00:00:00:00:00:00")
        .collect();
    nics.sort_by(|a, b| a.name.cmp(&b.name));
    nics
}

fn local_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

fn local_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    // Round up to whole MiB, as XenServer shows memory.
    Some((kib * 1024).div_ceil(1 << 20) << 20)
}

/// `4096M`, `8G`, `2048` (MiB when no unit).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => {
                    return Err(format!(
                        "{text:?}: use a unit of K, M, G or T (e.g. 4096M, 8G)"
                    ))
                }
            };
            (&t[..i], shift)
        }
        _ => (t, 20),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: expected a size such as 4096M or 8G"))?;
    n.checked_shl(shift)
        .filter(|v| *v >> shift == n && *v > 0)
        .ok_or_else(|| format!("{text:?}: out of range"))
}

/// SR types that store VHD files and take a VHD import.
const VHD_SR_TYPES: &[&str] = &["ext", "nfs", "file", "smb", "cifs", "xfs", "zfs"];
/// SR types that hold raw volumes: a VHD import onto them fails after the 200.
const RAW_SR_TYPES: &[&str] = &["lvm", "lvmoiscsi", "lvmohba", "lvmofcoe", "rawhba"];

pub fn sr_takes_vhd(sr_type: &str) -> Option<bool> {
    if VHD_SR_TYPES.contains(&sr_type) {
        Some(true)
    } else if RAW_SR_TYPES.contains(&sr_type) {
        Some(false)
    } else {
        None
    }
}

/// The pool objects the plan names.
pub struct Resolved {
    pub sr: SrRef,
}

/// Builds the plan from the disks, the options and the pool.
pub fn build(
    session: &Session,
    args: &XapiArgs,
    format: Option<Format>,
    sources: &[Source],
) -> anyhow::Result<(VmPlan, Resolved)> {
    let disks: Vec<(&SourceDisk, &DiskLayout, u64)> = sources
        .iter()
        .map(|s| (&*s.disk, &s.layout, s.plan.data_bytes()))
        .collect();
    let local = disks
        .iter()
        .all(|(d, _, _)| d.info().kind == DiskKind::BlockDevice);
    let hostname = if local { local_hostname() } else { None };
    let name = match &args.name {
        Some(n) => n.clone(),
        None => hostname.clone().unwrap_or_else(|| {
            disks
                .first()
                .and_then(|(d, _, _)| d.path().file_stem())
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "xenlift".into())
        }),
    };
    let vcpus = args.vcpus.unwrap_or_else(|| {
        if local {
            std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(DEFAULT_VCPUS)
        } else {
            DEFAULT_VCPUS
        }
    });
    anyhow::ensure!(vcpus > 0, "--vcpus must be at least 1");
    let memory_bytes = args.memory.unwrap_or_else(|| {
        if local {
            local_memory().unwrap_or(DEFAULT_MEMORY)
        } else {
            DEFAULT_MEMORY
        }
    });
    let readers: Vec<(&dyn extents::ReadAt, &DiskLayout)> = disks
        .iter()
        .map(|(d, l, _)| (*d as &dyn extents::ReadAt, *l))
        .collect();
    let (firmware, firmware_reason) = firmware::detect(&readers);

    // The SR.
    let sr = match &args.sr {
        Some(key) => session
            .sr_lookup(key)
            .with_context(|| format!("finding the SR {key:?} (--sr)"))?,
        None => session
            .pool_default_sr()
            .context("reading the pool's default SR")?
            .context("the pool has no default SR: name one with --sr NAME|UUID")?,
    };
    let sr_record: SrRecord = session.sr_record(&sr).context("reading the SR")?;
    let takes_vhd = sr_takes_vhd(&sr_record.kind);

    let mut planned_disks = Vec::new();
    let mut userdevice = 0;
    for (i, (d, _, data_bytes)) in disks.iter().enumerate() {
        let size = d.info().size.div_ceil(512) * 512;
        let (fmt, reason) = match format {
            Some(Format::Vhd) if size > VHD_MAX_SIZE => anyhow::bail!(
                "{} is {} bytes, over the 2040 GiB a VHD can carry: use --format raw-chunked",
                d.path().display(),
                size
            ),
            Some(f) => (f, "asked with --format".to_string()),
            None if size > VHD_MAX_SIZE => (
                Format::RawChunked,
                "over 2040 GiB, the VHD limit".to_string(),
            ),
            None if takes_vhd == Some(false) => (
                Format::RawChunked,
                format!("the SR type {} cannot take VHD", sr_record.kind),
            ),
            None => (Format::Vhd, "default".to_string()),
        };
        if userdevice == CD_USERDEVICE {
            userdevice += 1;
        }
        planned_disks.push(DiskPlan {
            source: d.path().display().to_string(),
            serial: d.info().serial.clone(),
            model: d.info().model.clone(),
            size,
            userdevice: userdevice.to_string(),
            bootable: i == 0,
            data_bytes: *data_bytes,
            format: fmt,
            format_reason: reason,
        });
        userdevice += 1;
    }

    let nics = plan_nics(session, args, local)?;
    Ok((
        VmPlan {
            name,
            vcpus,
            memory_bytes,
            firmware,
            firmware_reason,
            secure_boot: SecureBoot::Off,
            source_hostname: hostname,
            disks: planned_disks,
            nics,
            sr: sr_record.name_label.clone(),
            sr_uuid: sr_record.uuid.clone(),
            sr_type: sr_record.kind.clone(),
        },
        Resolved { sr },
    ))
}

/// One NIC per source NIC (this machine's, or those `--network` names by MAC
/// for image files), each mapped to a network.
fn plan_nics(session: &Session, args: &XapiArgs, local: bool) -> anyhow::Result<Vec<NicPlan>> {
    let wanted = parse_network_args(&args.networks)?;
    let mut nics: Vec<(Option<String>, String)> = if local {
        local_nics(Path::new("/sys/class/net"))
            .into_iter()
            .map(|n| (Some(n.name), n.mac))
            .collect()
    } else {
        Vec::new()
    };
    for w in &wanted {
        let known = nics.iter().any(|(name, mac)| {
            name.as_deref() == Some(w.nic.as_str()) || mac.eq_ignore_ascii_case(&w.nic)
        });
        if known {
            continue;
        }
        anyhow::ensure!(
            is_mac(&w.nic),
            "--network {}={}: the source has no interface named {:?}; for disk images name the NIC by its MAC address (aa:bb:cc:dd:ee:ff)",
            w.nic,
            w.network,
            w.nic
        );
        nics.push((None, w.nic.to_ascii_lowercase()));
    }
    if nics.is_empty() {
        return Ok(Vec::new());
    }
    let mut default: Option<(NetworkRef, NetworkRecord)> = None;
    let mut out = Vec::new();
    for (name, mac) in nics {
        let spec = wanted
            .iter()
            .find(|w| name.as_deref() == Some(w.nic.as_str()) || mac.eq_ignore_ascii_case(&w.nic));
        let (net, record) = match spec {
            Some(w) => {
                let r = session
                    .network_lookup(&w.network)
                    .with_context(|| format!("finding the network {:?} (--network)", w.network))?;
                let rec = session.network_record(&r).context("reading a network")?;
                (r, rec)
            }
            None => {
                if default.is_none() {
                    default = Some(default_network(session)?);
                }
                default.clone().context("no default network")?
            }
        };
        out.push(NicPlan {
            interface: name,
            mac,
            network: record.name_label.clone(),
            network_uuid: record.uuid.clone(),
            network_ref: net,
            mtu: u32::try_from(record.mtu)
                .ok()
                .filter(|m| *m > 0)
                .unwrap_or(1500),
        });
    }
    Ok(out)
}

/// The pool's first network that is not host-internal.
fn default_network(session: &Session) -> anyhow::Result<(NetworkRef, NetworkRecord)> {
    let all = session
        .all_records::<NetworkRecord>("network")
        .context("listing the pool's networks")?;
    all.into_iter()
        .find(|(_, n)| {
            let flag = |k: &str| n.other_config.get(k).is_some_and(|v| v == "true");
            !flag("is_host_internal_management_network") && !flag("is_guest_installer_network")
        })
        .map(|(r, n)| (NetworkRef(r), n))
        .context("the pool has no network for guests: name one with --network NIC=NETWORK")
}

impl fmt::Display for VmPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "VM {:?}", self.name)?;
        writeln!(
            f,
            "  {} vCPUs, {} memory, firmware {} ({})",
            self.vcpus,
            human(self.memory_bytes),
            self.firmware.as_str(),
            self.firmware_reason
        )?;
        writeln!(
            f,
            "  SR {:?} ({}, type {})",
            self.sr, self.sr_uuid, self.sr_type
        )?;
        for d in &self.disks {
            writeln!(
                f,
                "  disk userdevice {}{}: {} ({}, {} to send) as {} ({})",
                d.userdevice,
                if d.bootable { " (boot)" } else { "" },
                d.source,
                human(d.size),
                human(d.data_bytes),
                d.format,
                d.format_reason
            )?;
        }
        if self.nics.is_empty() {
            writeln!(f, "  no network interfaces")?;
        }
        for (i, n) in self.nics.iter().enumerate() {
            writeln!(
                f,
                "  VIF {i}: MAC {}{} on network {:?}",
                n.mac,
                n.interface
                    .as_deref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default(),
                n.network
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096M"), Ok(4096 << 20));
        assert_eq!(parse_size("8G"), Ok(8 << 30));
        assert_eq!(parse_size("2048"), Ok(2048 << 20));
        assert!(parse_size("8X").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("G").is_err());
    }

    #[test]
    fn macs_and_network_args() {
        assert!(is_mac("aa:BB:cc:00:11:22"));
        assert!(!is_mac("eth0"));
        assert!(!is_mac("aa:bb:cc:00:11"));
        let args = parse_network_args(&["eth0=net".into()]).unwrap();
        assert_eq!(
            (args[0].nic.as_str(), args[0].network.as_str()),
            ("eth0", "net")
        );
        assert!(parse_network_args(&["eth0".into()]).is_err());
        assert!(parse_network_args(&["=x".into()]).is_err());
    }

    #[test]
    fn sr_types() {
        assert_eq!(sr_takes_vhd("ext"), Some(true));
        assert_eq!(sr_takes_vhd("lvm"), Some(false));
        assert_eq!(sr_takes_vhd("somethingnew"), None);
    }
}
