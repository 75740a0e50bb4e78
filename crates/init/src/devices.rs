//! Block devices as sysfs shows them, and the wait until the hardware has
//! settled: drivers bound, disks and links present, no uevent for a while.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::modules::{uevent::Listener, Loader};

/// A whole block device (not a partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDevice {
    pub name: String,
    pub bytes: u64,
    pub removable: bool,
    pub read_only: bool,
    /// sr*: an optical drive.
    pub optical: bool,
}

/// Whole block devices under `sys_class_block`, sorted; RAM disks, loop
/// and zram devices are left out.
pub fn block_devices(sys_class_block: &Path) -> Vec<BlockDevice> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(sys_class_block) else {
        return out;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        if dir.join("partition").exists()
            || ["loop", "ram", "zram", "nbd", "dm-", "md"]
                .iter()
                .any(|p| name.starts_with(p))
        {
            continue;
        }
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        let sectors: u64 = read("size").trim().parse().unwrap_or(0);
        out.push(BlockDevice {
            optical: name.starts_with("sr"),
            bytes: sectors * 512,
            removable: read("removable").trim() == "1",
            read_only: read("ro").trim() == "1",
            name,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Disks a conversion could read: whole devices with media, not optical.
pub fn disks(all: &[BlockDevice]) -> Vec<BlockDevice> {
    all.iter()
        .filter(|d| !d.optical && d.bytes > 0)
        .cloned()
        .collect()
}

/// Serves uevents (loading drivers for new devices) until no event came
/// for `quiet` and a disk is present, or until `limit` passes.
pub fn settle(
    loader: &mut Loader,
    listener: Option<&Listener>,
    seen: &mut BTreeSet<String>,
    quiet: Duration,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    let mut last_event = Instant::now();
    loop {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        let have_disk = !disks(&block_devices(Path::new("/sys/class/block"))).is_empty();
        if have_disk && now.duration_since(last_event) >= quiet {
            return;
        }
        let wait = Duration::from_millis(250);
        let event = match listener {
            Some(l) => l.next(wait),
            None => {
                std::thread::sleep(wait);
                None
            }
        };
        if let Some(ev) = event {
            last_event = Instant::now();
            if loader.debug && !ev.action.is_empty() {
                crate::console::say(&format!("uevent {} {}", ev.action, ev.devpath));
            }
            if ev.action == "add" {
                if let Some(alias) = ev.modalias {
                    if seen.insert(alias.clone()) {
                        loader.load_alias(&alias);
                    }
                }
            }
        }
    }
}

/// `64 MiB`, `1.5 GiB`: sizes for people.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_devices_from_a_fake_sysfs() {
        let dir = tempfile::tempdir().unwrap();
        let mk = |name: &str, size: &str, partition: bool, removable: &str| {
            let d = dir.path().join(name);
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("size"), size).unwrap();
            std::fs::write(d.join("removable"), removable).unwrap();
            std::fs::write(d.join("ro"), "0\n").unwrap();
            if partition {
                std::fs::write(d.join("partition"), "1\n").unwrap();
            }
        };
        mk("vda", "131072\n", false, "0\n");
        mk("vda1", "100000\n", true, "0\n");
        mk("sr0", "90000\n", false, "1\n");
        mk("loop0", "0\n", false, "0\n");
        mk("sdb", "0\n", false, "1\n");
        let all = block_devices(dir.path());
        let names: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["sdb", "sr0", "vda"]);
        let disks = disks(&all);
        assert_eq!(disks.len(), 1);
        assert_eq!(disks[0].bytes, 64 << 20);
        assert_eq!(human(disks[0].bytes), "64 MiB");
        assert_eq!(human(1536 << 20), "1.5 GiB");
    }
}
