//! Driving the real LVM tools on loop devices without device-mapper
//! (`-an -Zn --driverloaded n`, no udev, a filter that only sees our
//! devices), and reading LV layouts back from `lvs`/`pvs` to put
//! filesystems into LVs (scatter) and take them out again (gather).

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// LVM commands limited to a set of devices.
pub struct Lvm {
    devices: Vec<String>,
}

/// One contiguous run of an LV on a PV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub lv_offset: u64,
    pub pv: String,
    pub pv_offset: u64,
    pub len: u64,
}

impl Lvm {
    pub fn new(devices: &[&str]) -> Self {
        testkit::require(&[
            "lvm", "pvcreate", "vgcreate", "lvcreate", "lvs", "pvs", "vgck", "pvck",
        ]);
        Lvm {
            devices: devices.iter().map(|d| d.to_string()).collect(),
        }
    }

    fn config(&self) -> String {
        let accept: Vec<String> = self
            .devices
            .iter()
            .map(|d| format!("\"a|^{d}$|\""))
            .collect();
        let filter = format!("[{}, \"r|.*|\"]", accept.join(", "));
        format!(
            "devices {{ use_devicesfile=0 filter={filter} global_filter={filter} }} \
             backup {{ backup=0 archive=0 }} activation {{ udev_sync=0 udev_rules=0 }}"
        )
    }

    /// Runs an LVM command, panicking with its output when it fails.
    pub fn run(&self, command: &str, args: &[&str]) -> String {
        let out = self.try_run(command, args);
        match out {
            Ok(stdout) => stdout,
            Err(msg) => panic!("{msg}"),
        }
    }

    pub fn try_run(&self, command: &str, args: &[&str]) -> Result<String, String> {
        let config = self.config();
        let mut all = vec!["--config", &config];
        if matches!(command, "lvcreate" | "lvextend" | "lvremove") {
            all.extend(["--driverloaded", "n"]);
        }
        all.extend(args);
        let out = Command::new(command)
            .args(&all)
            .env("LVM_SUPPRESS_FD_WARNINGS", "1")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {command}: {e} (run ci/setup)"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "{command} {args:?} failed ({}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn report(&self, command: &str, args: &[&str]) -> Vec<Vec<String>> {
        let mut all = vec![
            "--noheadings",
            "--separator",
            "|",
            "--units",
            "b",
            "--nosuffix",
        ];
        all.extend(args);
        self.run(command, &all)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.trim().split('|').map(|f| f.trim().to_string()).collect())
            .collect()
    }

    pub fn extent_bytes(&self, vg: &str) -> u64 {
        self.report("vgs", &["-o", "vg_extent_size", vg])[0][0]
            .parse()
            .unwrap()
    }

    /// pe_start of each PV, in bytes.
    pub fn pe_starts(&self) -> HashMap<String, u64> {
        self.report("pvs", &["-o", "pv_name,pe_start"])
            .into_iter()
            .map(|r| (r[0].clone(), r[1].parse().unwrap()))
            .collect()
    }

    /// The regions LVM keeps for itself on a PV, as `pvck --dump headers`
    /// lists them: metadata areas and bootloader areas, (offset, size).
    pub fn reserved(&self, dev: &str) -> Vec<(u64, u64)> {
        let out = self.run("pvck", &["--dump", "headers", dev]);
        let mut found = Vec::new();
        let mut wanted = false;
        let mut offset = None;
        for line in out.lines().map(str::trim) {
            if line.contains("disk_locn[") && line.contains(" at ") {
                wanted = line.ends_with("# location of metadata area")
                    || line.ends_with("# bootloader area");
                offset = None;
            } else if let Some(v) = line.split_once(".offset ").map(|(_, v)| v) {
                offset = Some(v.parse::<u64>().unwrap());
            } else if let (true, Some(o), Some(v)) =
                (wanted, offset, line.split_once(".size ").map(|(_, v)| v))
            {
                found.push((o, v.parse::<u64>().unwrap()));
            }
        }
        assert!(!found.is_empty(), "no metadata area in:\n{out}");
        found
    }

    /// Free extent ranges (first, count) per PV, as `pvs --segments` says.
    pub fn free_ranges(&self) -> Vec<(String, u64, u64)> {
        self.report(
            "pvs",
            &["--segments", "-o", "pv_name,pvseg_start,pvseg_size,lv_name"],
        )
        .into_iter()
        .filter(|r| r.get(3).is_none_or(|lv| lv.is_empty()))
        .map(|r| (r[0].clone(), r[1].parse().unwrap(), r[2].parse().unwrap()))
        .collect()
    }

    /// Where every byte of `vg/lv` lives, from `lvs --segments`: the
    /// independent reader our own segment map is compared with.
    pub fn pieces(&self, vg: &str, lv: &str) -> Vec<Piece> {
        let ext = self.extent_bytes(vg);
        let pe_start = self.pe_starts();
        let rows = self.report(
            "lvs",
            &[
                "--segments",
                "-o",
                "seg_start_pe,seg_size_pe,stripes,stripe_size,devices",
                "-a",
                &format!("{vg}/{lv}"),
            ],
        );
        let mut out = Vec::new();
        for r in rows {
            let start: u64 = r[0].parse().unwrap();
            let size: u64 = r[1].parse().unwrap();
            let n: u64 = r[2].parse().unwrap();
            let stripe: u64 = r[3].parse().unwrap();
            let devices: Vec<(String, u64)> = r[4]
                .split(',')
                .map(|d| {
                    let (dev, pe) = d.trim_end_matches(')').split_once('(').unwrap();
                    (dev.to_string(), pe.parse().unwrap())
                })
                .collect();
            assert_eq!(devices.len() as u64, n, "{r:?}");
            let len = size * ext;
            let seg_start = start * ext;
            if n == 1 {
                let (dev, pe) = &devices[0];
                out.push(Piece {
                    lv_offset: seg_start,
                    pv: dev.clone(),
                    pv_offset: pe_start[dev] + pe * ext,
                    len,
                });
                continue;
            }
            for chunk in 0..len / stripe {
                let (dev, pe) = &devices[(chunk % n) as usize];
                out.push(Piece {
                    lv_offset: seg_start + chunk * stripe,
                    pv: dev.clone(),
                    pv_offset: pe_start[dev] + pe * ext + (chunk / n) * stripe,
                    len: stripe,
                });
            }
        }
        out
    }
}

/// Writes the LV image `lv` onto the PV images per `pieces`; `images` maps
/// PV device names to their backing files.
pub fn scatter(lv: &Path, pieces: &[Piece], images: &HashMap<String, PathBuf>) {
    let src = std::fs::File::open(lv).unwrap();
    for p in pieces {
        let mut buf = vec![0u8; p.len as usize];
        src.read_exact_at(&mut buf, p.lv_offset).unwrap();
        let dst = std::fs::OpenOptions::new()
            .write(true)
            .open(&images[&p.pv])
            .unwrap();
        dst.write_all_at(&buf, p.pv_offset).unwrap();
    }
}

/// Reassembles an LV of `size` bytes from PV images per `pieces`.
pub fn gather(out: &Path, size: u64, pieces: &[Piece], images: &HashMap<String, PathBuf>) {
    testkit::sparse_image(out, size);
    let dst = std::fs::OpenOptions::new().write(true).open(out).unwrap();
    for p in pieces {
        let src = std::fs::File::open(&images[&p.pv]).unwrap();
        let mut buf = vec![0u8; p.len as usize];
        src.read_exact_at(&mut buf, p.pv_offset).unwrap();
        dst.write_all_at(&buf, p.lv_offset).unwrap();
    }
}

/// LVM's checksum (lvm2 lib/misc/crc.c), written here independently of
/// the crate's, for tests that rewrite metadata.
pub fn lvm_crc(bytes: &[u8]) -> u32 {
    let mut crc = 0xf597_a6cfu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// The committed metadata text of the first metadata area of a PV image
/// (mda at 4096, as pvcreate puts it), with its location.
pub fn read_metadata(img: &[u8]) -> (String, usize, usize) {
    let mda = 4096usize;
    let off = u64::from_le_bytes(img[mda + 40..mda + 48].try_into().unwrap()) as usize;
    let size = u64::from_le_bytes(img[mda + 48..mda + 56].try_into().unwrap()) as usize;
    let text = String::from_utf8_lossy(&img[mda + off..mda + off + size]).into_owned();
    (text, mda + off, size)
}

/// Replaces the committed metadata text of a PV image in place, with valid
/// checksums, as LVM would write it (no wrap: the new text must fit).
pub fn write_metadata(img: &mut [u8], text: &str) {
    let mda = 4096usize;
    let (_, at, _) = read_metadata(img);
    img[at..at + text.len()].copy_from_slice(text.as_bytes());
    img[mda + 48..mda + 56].copy_from_slice(&(text.len() as u64).to_le_bytes());
    img[mda + 56..mda + 60].copy_from_slice(&lvm_crc(text.as_bytes()).to_le_bytes());
    fix_mda_header(img);
}

/// Recomputes the checksum of the mda header at 4096.
pub fn fix_mda_header(img: &mut [u8]) {
    let mda = 4096usize;
    let crc = lvm_crc(&img[mda + 4..mda + 512]);
    img[mda..mda + 4].copy_from_slice(&crc.to_le_bytes());
}
