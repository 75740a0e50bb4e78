//! The disks the fix-up works on: writable raw images or block devices, with
//! where their partitions are.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cmd;
use crate::error::{Error, Result};

/// A writable disk: a raw image file or a block device holding a copy (or a
/// copy-on-write view) of one source disk. Never the source itself.
///
/// Give the disks in the source's order (the first BIOS disk, `sda`/`vda`/
/// `nvme0n1`, first): kernel names like `/dev/sdb2` in the guest's files are
/// resolved by that order, and only when the filesystem found there agrees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WritableDisk {
    pub path: PathBuf,
    /// Partitions by their number in the partition table. A disk without a
    /// partition table (a filesystem or PV on the whole disk) has one entry
    /// with number 0, offset 0 and the disk's size.
    pub partitions: Vec<Partition>,
}

/// One partition of a [`WritableDisk`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// Number in the table (`sda2` is 2).
    pub number: u32,
    /// Byte offset on the disk.
    pub offset: u64,
    /// Length in bytes.
    pub size: u64,
    /// GPT partition GUID, or `XXXXXXXX-NN` (MBR disk signature and number):
    /// what Linux calls PARTUUID.
    pub part_uuid: Option<String>,
    /// GPT partition name (PARTLABEL).
    pub part_label: Option<String>,
}

impl WritableDisk {
    /// Reads the partition table with `sfdisk --json` (MBR or GPT).
    pub fn from_partition_table(path: &Path) -> Result<WritableDisk> {
        let text = cmd::run(
            "sfdisk",
            &[std::ffi::OsStr::new("--json"), path.as_os_str()],
        )?;
        parse_sfdisk_json(path, &text)
    }
}

#[derive(Deserialize)]
struct SfdiskOutput {
    partitiontable: SfdiskTable,
}

#[derive(Deserialize)]
struct SfdiskTable {
    label: String,
    id: Option<String>,
    #[serde(default)]
    sectorsize: Option<u64>,
    #[serde(default)]
    partitions: Vec<SfdiskPartition>,
}

#[derive(Deserialize)]
struct SfdiskPartition {
    node: String,
    start: u64,
    size: u64,
    uuid: Option<String>,
    name: Option<String>,
}

fn parse_sfdisk_json(path: &Path, text: &str) -> Result<WritableDisk> {
    let bad = |reason: String| Error::Disk {
        path: path.to_path_buf(),
        reason,
    };
    let out: SfdiskOutput =
        serde_json::from_str(text).map_err(|e| bad(format!("unreadable sfdisk output: {e}")))?;
    let table = out.partitiontable;
    let sector = table.sectorsize.unwrap_or(512);
    let node = path.to_string_lossy();
    let mut partitions = Vec::new();
    for p in table.partitions {
        let number: u32 = p
            .node
            .strip_prefix(node.as_ref())
            .map(|rest| rest.trim_start_matches('p'))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad(format!("cannot tell the number of partition {}", p.node)))?;
        let part_uuid = match (table.label.as_str(), &p.uuid, &table.id) {
            ("gpt", Some(u), _) => Some(u.to_lowercase()),
            ("dos", _, Some(id)) => Some(format!(
                "{}-{number:02x}",
                id.trim_start_matches("0x").to_lowercase()
            )),
            _ => None,
        };
        partitions.push(Partition {
            number,
            offset: p
                .start
                .checked_mul(sector)
                .ok_or_else(|| bad("partition offset overflows".into()))?,
            size: p
                .size
                .checked_mul(sector)
                .ok_or_else(|| bad("partition size overflows".into()))?,
            part_uuid,
            part_label: p.name.filter(|n| !n.is_empty()),
        });
    }
    Ok(WritableDisk {
        path: path.to_path_buf(),
        partitions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mbr_and_gpt_tables() {
        let dos = r#"{"partitiontable": {"label": "dos", "id": "0x8c1d2e3f", "device": "/x/d.img", "unit": "sectors", "sectorsize": 512,
            "partitions": [{"node": "/x/d.img1", "start": 2048, "size": 4096, "type": "83", "bootable": true},
                           {"node": "/x/d.img2", "start": 6144, "size": 2048, "type": "82"}]}}"#;
        let d = parse_sfdisk_json(Path::new("/x/d.img"), dos).unwrap();
        assert_eq!(d.partitions.len(), 2);
        assert_eq!(d.partitions[1].number, 2);
        assert_eq!(d.partitions[1].offset, 6144 * 512);
        assert_eq!(d.partitions[0].part_uuid.as_deref(), Some("8c1d2e3f-01"));

        let gpt = r#"{"partitiontable": {"label": "gpt", "id": "AAAA", "device": "/dev/loop0", "unit": "sectors", "sectorsize": 512,
            "partitions": [{"node": "/dev/loop0p1", "start": 2048, "size": 131072, "type": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "uuid": "1F2E-ABCD", "name": "EFI"}]}}"#;
        let d = parse_sfdisk_json(Path::new("/dev/loop0"), gpt).unwrap();
        assert_eq!(d.partitions[0].number, 1);
        assert_eq!(d.partitions[0].part_uuid.as_deref(), Some("1f2e-abcd"));
        assert_eq!(d.partitions[0].part_label.as_deref(), Some("EFI"));
    }

    #[test]
    fn bad_sfdisk_output_is_an_error() {
        assert!(parse_sfdisk_json(Path::new("/x"), "{").is_err());
    }
}
