//! Discovery of local disks from sysfs: which block devices are candidates,
//! which are not (virtual devices, the medium the appliance booted from),
//! and their model and serial. Every path comes from [`SystemPaths`] so that
//! tests feed a fake tree.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::Error;

/// Where the kernel's views of the system live.
#[derive(Clone, Debug)]
pub struct SystemPaths {
    pub sysfs: PathBuf,
    pub dev: PathBuf,
    /// `/proc/self/mountinfo`: which filesystems are mounted where.
    pub mountinfo: PathBuf,
    /// `/proc/cmdline`: for the `xenlift.bootdev=` hint.
    pub cmdline: PathBuf,
    /// Prefix for mount points read from `mountinfo`.
    pub root: PathBuf,
}

impl Default for SystemPaths {
    fn default() -> Self {
        SystemPaths {
            sysfs: "/sys".into(),
            dev: "/dev".into(),
            mountinfo: "/proc/self/mountinfo".into(),
            cmdline: "/proc/cmdline".into(),
            root: "/".into(),
        }
    }
}

/// A whole-disk block device found in sysfs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlockDevice {
    /// Kernel name, such as `sda` or `nvme0n1`.
    pub name: String,
    /// Device node, such as `/dev/sda`.
    pub path: PathBuf,
    /// Size in bytes as sysfs reports it.
    pub size: u64,
    pub removable: bool,
    pub model: Option<String>,
    pub serial: Option<String>,
}

/// Why a block device is not offered for conversion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// A virtual device that holds no disk of its own (loop, ram, zram, CD).
    Virtual(&'static str),
    /// Built on other block devices (device-mapper, md): those are copied instead.
    Stacked,
    /// No medium or no bytes.
    Empty,
    /// The medium the appliance booted from.
    BootMedium(String),
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::Virtual(kind) => write!(f, "{kind}"),
            SkipReason::Stacked => f.write_str("built on other block devices"),
            SkipReason::Empty => f.write_str("empty (no medium)"),
            SkipReason::BootMedium(why) => write!(f, "the boot medium ({why})"),
        }
    }
}

/// The result of discovery: disks to convert and the devices left out.
#[derive(Clone, Debug, Default)]
pub struct Discovery {
    pub disks: Vec<BlockDevice>,
    pub skipped: Vec<(String, SkipReason)>,
}

/// The rule for device names that never hold a disk to convert.
pub fn skip_by_name(name: &str) -> Option<SkipReason> {
    const VIRTUAL: [(&str, &str); 6] = [
        ("loop", "loop device"),
        ("ram", "RAM disk"),
        ("zram", "compressed RAM disk"),
        ("sr", "optical drive"),
        ("fd", "floppy drive"),
        ("nbd", "network block device"),
    ];
    VIRTUAL
        .iter()
        .find(|(prefix, _)| {
            name.strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .map(|(_, kind)| SkipReason::Virtual(kind))
}

/// Every whole disk of the system, minus virtual, stacked and boot devices.
pub fn discover(paths: &SystemPaths) -> Result<Discovery, Error> {
    let block_dir = paths.sysfs.join("block");
    let entries = fs::read_dir(&block_dir).map_err(|io| Error::Sysfs {
        path: block_dir.clone(),
        io,
    })?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();

    let boot = boot_media(paths);
    let mut found = Discovery::default();
    for name in names {
        let dir = block_dir.join(&name);
        let reason = skip_by_name(&name)
            .or_else(|| has_entries(&dir.join("slaves")).then_some(SkipReason::Stacked))
            .or_else(|| {
                boot.get(&name)
                    .map(|why| SkipReason::BootMedium(why.clone()))
            });
        if let Some(reason) = reason {
            found.skipped.push((name, reason));
            continue;
        }
        let sectors = read_trimmed(&dir.join("size"))
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        if sectors == 0 {
            found.skipped.push((name, SkipReason::Empty));
            continue;
        }
        let (model, serial) = identity(&dir);
        found.disks.push(BlockDevice {
            path: paths.dev.join(name.replace('!', "/")),
            size: sectors.saturating_mul(512),
            removable: read_trimmed(&dir.join("removable")).as_deref() == Some("1"),
            model,
            serial,
            name,
        });
    }
    Ok(found)
}

/// Model and serial of the disk whose sysfs directory is `dir`.
pub fn identity(dir: &Path) -> (Option<String>, Option<String>) {
    let model = read_trimmed(&dir.join("device/model"));
    let serial =
        read_trimmed(&dir.join("device/serial")).or_else(|| read_trimmed(&dir.join("serial")));
    (model, serial)
}

/// Model and serial of the block device numbered `major:minor`.
pub fn identity_of_device(
    sysfs: &Path,
    major: u64,
    minor: u64,
) -> (Option<String>, Option<String>) {
    identity(&sysfs.join(format!("dev/block/{major}:{minor}")))
}

/// Whole-disk names of the boot medium, each with how it was recognized.
pub fn boot_media(paths: &SystemPaths) -> BTreeMap<String, String> {
    let disks = device_numbers(&paths.sysfs);
    let mut boot = BTreeMap::new();
    let cmdline = fs::read_to_string(&paths.cmdline).unwrap_or_default();
    for hint in bootdev_hints(&cmdline) {
        if let Some(disk) = resolve_hint(paths, &disks, &hint) {
            boot.insert(disk, format!("xenlift.bootdev={hint}"));
        }
    }
    let mountinfo = fs::read_to_string(&paths.mountinfo).unwrap_or_default();
    for (number, mount_point) in mounts(&mountinfo) {
        let Some(disk) = disks.get(&number) else {
            continue;
        };
        let marker = paths
            .root
            .join(mount_point.trim_start_matches('/'))
            .join(".disk/id");
        if has_entries(&marker) {
            boot.entry(disk.clone())
                .or_insert_with(|| format!("{mount_point}/.disk/id"));
        }
    }
    boot
}

/// The values of every `xenlift.bootdev=` option, split on commas.
pub fn bootdev_hints(cmdline: &str) -> Vec<String> {
    cmdline
        .split_whitespace()
        .filter_map(|opt| opt.strip_prefix("xenlift.bootdev="))
        .flat_map(|v| v.split(','))
        .map(|v| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// `(major:minor, mount point)` for each line of a mountinfo file.
pub fn mounts(mountinfo: &str) -> Vec<(String, String)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let number = fields.nth(2)?;
            let mount_point = fields.nth(1)?;
            Some((number.to_string(), unescape_octal(mount_point)))
        })
        .collect()
}

/// Mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes.get(i) == Some(&b'\\') && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match octal {
            Some(c) => {
                out.push(c);
                i += 4;
            }
            None => {
                out.extend(bytes.get(i).copied());
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The whole disk a hint names: `sdb`, `/dev/sdb`, a partition of it, or a
/// symlink to it such as `/dev/disk/by-id/...`.
fn resolve_hint(
    paths: &SystemPaths,
    disks: &BTreeMap<String, String>,
    hint: &str,
) -> Option<String> {
    let mut name = hint.strip_prefix("/dev/").unwrap_or(hint).to_string();
    if name.contains('/') {
        let target = fs::canonicalize(paths.dev.join(&name)).ok()?;
        name = target.file_name()?.to_str()?.to_string();
    }
    let whole: BTreeSet<&String> = disks.values().collect();
    if whole.contains(&name) {
        return Some(name);
    }
    // A partition: its sysfs directory sits inside its disk's.
    whole
        .into_iter()
        .find(|disk| paths.sysfs.join("block").join(disk).join(&name).is_dir())
        .cloned()
}

/// Maps every `major:minor` of a disk or partition to its whole-disk name.
fn device_numbers(sysfs: &Path) -> BTreeMap<String, String> {
    let mut numbers = BTreeMap::new();
    let Ok(disks) = fs::read_dir(sysfs.join("block")) else {
        return numbers;
    };
    for disk in disks.filter_map(|e| e.ok()) {
        let Ok(name) = disk.file_name().into_string() else {
            continue;
        };
        let dir = disk.path();
        if let Some(n) = read_trimmed(&dir.join("dev")) {
            numbers.insert(n, name.clone());
        }
        for part in fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
        {
            let p = part.path();
            if p.join("partition").is_file() {
                if let Some(n) = read_trimmed(&p.join("dev")) {
                    numbers.insert(n, name.clone());
                }
            }
        }
    }
    numbers
}

fn has_entries(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

fn read_trimmed(path: &Path) -> Option<String> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            String::from_utf8_lossy(&fs::read(path).ok()?).into_owned()
        }
        Err(_) => return None,
    };
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake sysfs + /dev + mount tree in a temporary directory.
    struct FakeSystem {
        dir: tempfile::TempDir,
    }

    impl FakeSystem {
        fn new() -> Self {
            let s = FakeSystem {
                dir: tempfile::tempdir().unwrap(),
            };
            fs::create_dir_all(s.dir.path().join("sys/block")).unwrap();
            fs::create_dir_all(s.dir.path().join("dev")).unwrap();
            s.write("proc/cmdline", "BOOT_IMAGE=/vmlinuz quiet\n");
            s.write("proc/mountinfo", "");
            s
        }

        fn paths(&self) -> SystemPaths {
            let root = self.dir.path();
            SystemPaths {
                sysfs: root.join("sys"),
                dev: root.join("dev"),
                mountinfo: root.join("proc/mountinfo"),
                cmdline: root.join("proc/cmdline"),
                root: root.join("mnt-root"),
            }
        }

        fn write(&self, rel: &str, text: &str) {
            let p = self.dir.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }

        fn disk(&self, name: &str, number: &str, sectors: u64) {
            let d = format!("sys/block/{name}");
            self.write(&format!("{d}/size"), &format!("{sectors}\n"));
            self.write(&format!("{d}/dev"), &format!("{number}\n"));
            self.write(&format!("{d}/removable"), "0\n");
            fs::create_dir_all(self.dir.path().join(&d).join("slaves")).unwrap();
        }

        fn partition(&self, disk: &str, name: &str, number: &str) {
            let d = format!("sys/block/{disk}/{name}");
            self.write(&format!("{d}/partition"), "1\n");
            self.write(&format!("{d}/dev"), &format!("{number}\n"));
        }
    }

    fn names(d: &Discovery) -> Vec<&str> {
        d.disks.iter().map(|b| b.name.as_str()).collect()
    }

    #[test]
    fn name_rule() {
        let table = [
            ("loop0", true),
            ("ram15", true),
            ("zram0", true),
            ("sr0", true),
            ("fd0", true),
            ("sda", false),
            ("vda", false),
            ("nvme0n1", false),
            ("srv", false),
            ("loopy", false),
            ("xvda", false),
        ];
        for (i, (name, skipped)) in table.into_iter().enumerate() {
            assert_eq!(skip_by_name(name).is_some(), skipped, "test[{i}]: {name}");
        }
    }

    #[test]
    fn discovers_disks_with_identity_and_skips_virtual_ones() {
        let sys = FakeSystem::new();
        sys.disk("sda", "8:0", 2048);
        sys.write("sys/block/sda/device/model", "QEMU HARDDISK   \n");
        sys.write("sys/block/sda/device/serial", " QM00001\n");
        sys.disk("vdb", "254:16", 4096);
        sys.write("sys/block/vdb/serial", "virtio-serial\n");
        sys.disk("loop0", "7:0", 100);
        sys.disk("zram0", "252:0", 100);
        sys.disk("sr0", "11:0", 100);
        sys.disk("sdc", "8:32", 0);
        sys.disk("dm-0", "253:0", 100);
        sys.write("sys/block/dm-0/slaves/sda", "");
        sys.disk("cciss!c0d0", "104:0", 8);

        let d = discover(&sys.paths()).unwrap();
        assert_eq!(names(&d), ["cciss!c0d0", "sda", "vdb"]);
        let sda = &d.disks[1];
        assert_eq!(sda.size, 2048 * 512);
        assert_eq!(sda.model.as_deref(), Some("QEMU HARDDISK"));
        assert_eq!(sda.serial.as_deref(), Some("QM00001"));
        assert_eq!(sda.path, sys.paths().dev.join("sda"));
        assert_eq!(d.disks[2].serial.as_deref(), Some("virtio-serial"));
        assert_eq!(d.disks[0].path, sys.paths().dev.join("cciss/c0d0"));
        let skipped: BTreeMap<_, _> = d.skipped.iter().cloned().collect();
        assert_eq!(skipped["loop0"], SkipReason::Virtual("loop device"));
        assert_eq!(skipped["sdc"], SkipReason::Empty);
        assert_eq!(skipped["dm-0"], SkipReason::Stacked);
        assert_eq!(skipped.len(), 5);
    }

    #[test]
    fn boot_medium_found_by_marker_on_a_mounted_partition() {
        let sys = FakeSystem::new();
        sys.disk("sda", "8:0", 2048);
        sys.disk("sdb", "8:16", 2048);
        sys.partition("sdb", "sdb1", "8:17");
        sys.write(
            "proc/mountinfo",
            "22 1 0:21 / /proc rw - proc proc rw\n\
             30 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
             31 1 8:17 / /run/boot\\040medium ro - iso9660 /dev/sdb1 ro\n",
        );
        sys.write("mnt-root/run/boot medium/.disk/id/1234-5678", "");
        let d = discover(&sys.paths()).unwrap();
        assert_eq!(names(&d), ["sda"]);
        assert_eq!(
            d.skipped,
            vec![(
                "sdb".to_string(),
                SkipReason::BootMedium("/run/boot medium/.disk/id".into())
            )]
        );
    }

    #[test]
    fn marker_missing_or_empty_means_not_the_boot_medium() {
        let sys = FakeSystem::new();
        sys.disk("sdb", "8:16", 2048);
        sys.write(
            "proc/mountinfo",
            "31 1 8:16 / /media ro - vfat /dev/sdb ro\n",
        );
        fs::create_dir_all(sys.dir.path().join("mnt-root/media/.disk/id")).unwrap();
        assert_eq!(names(&discover(&sys.paths()).unwrap()), ["sdb"]);
    }

    #[test]
    fn boot_medium_named_on_the_command_line() {
        let table = [
            ("xenlift.bootdev=sdb", vec!["sda"]),
            ("quiet xenlift.bootdev=/dev/sdb", vec!["sda"]),
            ("xenlift.bootdev=sdb1", vec!["sda"]),
            ("xenlift.bootdev=/dev/disk/by-id/usb-stick", vec!["sda"]),
            ("xenlift.bootdev=sda,sdb", vec![]),
            ("xenlift.bootdev=sdz", vec!["sda", "sdb"]),
            ("xenlift.bootdev=", vec!["sda", "sdb"]),
        ];
        for (i, (cmdline, want)) in table.into_iter().enumerate() {
            let sys = FakeSystem::new();
            sys.disk("sda", "8:0", 2048);
            sys.disk("sdb", "8:16", 2048);
            sys.partition("sdb", "sdb1", "8:17");
            fs::write(sys.dir.path().join("dev/sdb"), "").unwrap();
            fs::create_dir_all(sys.dir.path().join("dev/disk/by-id")).unwrap();
            std::os::unix::fs::symlink(
                "../../sdb",
                sys.dir.path().join("dev/disk/by-id/usb-stick"),
            )
            .unwrap();
            sys.write("proc/cmdline", cmdline);
            let d = discover(&sys.paths()).unwrap();
            assert_eq!(names(&d), want, "test[{i}]: {cmdline}");
        }
    }

    #[test]
    fn missing_sysfs_is_a_clear_error() {
        let paths = SystemPaths {
            sysfs: "/nonexistent-sysfs".into(),
            ..SystemPaths::default()
        };
        let e = discover(&paths).unwrap_err().to_string();
        assert!(e.contains("/nonexistent-sysfs/block"), "{e}");
    }

    #[test]
    fn octal_escapes() {
        assert_eq!(unescape_octal("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape_octal("/x\\04"), "/x\\04");
    }
}
