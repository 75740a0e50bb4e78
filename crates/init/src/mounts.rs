//! The file systems PID 1 needs, as a table. Mounting tolerates what the
//! kernel (or an earlier run) already mounted: EBUSY is success.

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};

struct Mount {
    source: &'static str,
    target: &'static str,
    fstype: &'static str,
    flags: MsFlags,
    data: Option<&'static str>,
}

const NOSUID_NODEV_NOEXEC: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

const TABLE: &[Mount] = &[
    Mount {
        source: "devtmpfs",
        target: "/dev",
        fstype: "devtmpfs",
        flags: MsFlags::MS_NOSUID,
        data: Some("mode=0755"),
    },
    Mount {
        source: "proc",
        target: "/proc",
        fstype: "proc",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
    },
    Mount {
        source: "sysfs",
        target: "/sys",
        fstype: "sysfs",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
    },
    Mount {
        source: "devpts",
        target: "/dev/pts",
        fstype: "devpts",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
        data: Some("gid=5,mode=620,ptmxmode=666"),
    },
    Mount {
        source: "tmpfs",
        target: "/run",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: Some("mode=0755"),
    },
    Mount {
        source: "tmpfs",
        target: "/tmp",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: Some("mode=1777"),
    },
];

/// Mounts the table in order; returns one message per failure.
pub fn mount_all() -> Vec<String> {
    let mut problems = Vec::new();
    for m in TABLE {
        if let Err(e) = std::fs::create_dir_all(m.target) {
            problems.push(format!("creating {}: {e}", m.target));
            continue;
        }
        match mount(Some(m.source), m.target, Some(m.fstype), m.flags, m.data) {
            Ok(()) | Err(Errno::EBUSY) => {}
            Err(e) => problems.push(format!("mounting {} on {}: {e}", m.fstype, m.target)),
        }
    }
    problems
}

/// efivarfs, once its module is loaded (UEFI machines only): it tells
/// whether Secure Boot is on.
pub fn mount_efivars() -> Option<String> {
    let target = "/sys/firmware/efi/efivars";
    if !std::path::Path::new(target).exists() {
        return None;
    }
    match mount(
        Some("efivarfs"),
        target,
        Some("efivarfs"),
        NOSUID_NODEV_NOEXEC | MsFlags::MS_RDONLY,
        None::<&str>,
    ) {
        Ok(()) | Err(Errno::EBUSY) => None,
        Err(e) => Some(format!("mounting efivarfs: {e}")),
    }
}

/// "BIOS", "UEFI" or "UEFI, Secure Boot on", from sysfs and efivarfs.
pub fn firmware() -> &'static str {
    if !std::path::Path::new("/sys/firmware/efi").exists() {
        return "BIOS";
    }
    // SecureBoot-<EFI global variable GUID>: 4 bytes of attributes, then 1 = on.
    let var = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";
    match std::fs::read(var) {
        Ok(v) if v.get(4) == Some(&1) => "UEFI, Secure Boot on",
        _ => "UEFI",
    }
}
