//! Partition tables: which one a disk carries (GPT, MBR or none), its
//! partitions, and the bytes its own structures occupy.
//!
//! A table that cannot be trusted (both GPT headers damaged, overlapping
//! partitions, partitions past the end, a broken EBR chain...) is reported
//! with a `doubt`: the caller then copies the whole disk and says why.

use std::io;

use extents::{ExtentBuilder, ExtentMap, ReadAt};
use serde::Serialize;

use crate::probe;

pub mod gpt;
pub mod mbr;

/// Which kind of partition table a disk carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    Gpt,
    Mbr,
    None,
}

/// What sector 0 of a GPT disk holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProtectiveMbr {
    /// One 0xEE entry: the normal case.
    Protective,
    /// 0xEE plus entries that repeat GPT partitions for old systems.
    Hybrid,
    /// No MBR at all (the GPT is used anyway, with a warning).
    Missing,
}

/// The place of a partition in its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionRole {
    /// A GPT partition or a primary MBR partition.
    Primary,
    /// The MBR container of logical partitions: its bytes are the EBRs, the
    /// logical partitions and the gaps between them.
    Extended,
    /// A partition inside the extended one, described by an EBR.
    Logical,
    /// The pseudo-partition 0 that stands for a disk without a table.
    WholeDisk,
}

/// One partition, in bytes from the start of the disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// As Linux numbers it: GPT entry index + 1; MBR slots 1-4, logicals from 5.
    pub number: u32,
    pub start: u64,
    pub size: u64,
    /// The GPT type GUID (lower-case) or the MBR type byte (`0x83`).
    #[serde(rename = "type")]
    pub type_id: Option<String>,
    /// GPT partition name.
    pub name: Option<String>,
    /// GPT partition GUID, or blkid's `<disk signature>-<number>` for MBR.
    pub uuid: Option<String>,
    pub role: PartitionRole,
}

impl Partition {
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.size)
    }

    /// Whether the partition holds data of its own (not a container).
    pub fn holds_data(&self) -> bool {
        self.role != PartitionRole::Extended
    }
}

/// A short human name for well-known partition types (for tables on a
/// console; JSON carries the raw type).
pub fn type_name(type_id: &str) -> Option<&'static str> {
    use ::gpt::partition_types as t;
    if let Some(byte) = type_id.strip_prefix("0x") {
        let name = match u8::from_str_radix(byte, 16).ok()? {
            0x01 | 0x04 | 0x06 | 0x0e => "FAT12/16",
            0x07 => "NTFS/exFAT",
            0x0b | 0x0c => "FAT32",
            0x05 | 0x0f | 0x85 => "Extended",
            0x27 => "Windows recovery",
            0x82 => "Linux swap",
            0x83 => "Linux",
            0x8e => "Linux LVM",
            0xa5 | 0xa6 | 0xa9 => "BSD",
            0xee => "GPT protective",
            0xef => "EFI System",
            0xfd => "Linux RAID",
            _ => return None,
        };
        return Some(name);
    }
    let guid = uuid::Uuid::parse_str(type_id).ok()?;
    let known = [
        (t::EFI, "EFI System"),
        (t::BIOS, "BIOS boot"),
        (t::LINUX_FS, "Linux filesystem"),
        (t::LINUX_SWAP, "Linux swap"),
        (t::LINUX_LVM, "Linux LVM"),
        (t::LINUX_RAID, "Linux RAID"),
        (t::LINUX_HOME, "Linux home"),
        (t::LINUX_ROOT_X64, "Linux root (x86-64)"),
        (t::LINUX_LUKS, "Linux LUKS"),
        (t::MICROSOFT_RESERVED, "Microsoft reserved"),
        (t::BASIC, "Microsoft basic data"),
        (t::WINDOWS_RECOVERY, "Windows recovery"),
        (t::WINDOWS_METADATA, "Windows LDM metadata"),
        (t::WINDOWS_DATA, "Windows LDM data"),
        (t::FREEBSD_BOOT, "FreeBSD boot"),
        (t::FREEBSD_UFS, "FreeBSD UFS"),
        (t::FREEBSD_ZFS, "FreeBSD ZFS"),
        (t::MACOS_APFS, "Apple APFS"),
        (t::MACOS_HFSPLUS, "Apple HFS+"),
    ];
    known
        .iter()
        .find(|(k, _)| k.guid == guid)
        .map(|(_, name)| *name)
}

/// A disk's partition table as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub kind: TableKind,
    /// GPT disk GUID, or the MBR disk signature as 8 hex digits.
    pub uuid: Option<String>,
    /// For GPT: what sector 0 holds.
    pub protective_mbr: Option<ProtectiveMbr>,
    pub partitions: Vec<Partition>,
    /// Disk bytes of the table's own structures: MBR, EBRs, GPT headers and
    /// entry arrays, the backup GPT area at the end.
    pub structures: ExtentMap,
    pub warnings: Vec<String>,
    /// Why the table cannot be trusted, when it cannot.
    pub doubt: Option<String>,
}

impl Table {
    pub fn none() -> Table {
        Table {
            kind: TableKind::None,
            uuid: None,
            protective_mbr: None,
            partitions: Vec::new(),
            structures: ExtentMap::new(),
            warnings: Vec::new(),
            doubt: None,
        }
    }

    fn doubtful(kind: TableKind, reason: String) -> Table {
        Table {
            kind,
            warnings: vec![reason.clone()],
            doubt: Some(reason),
            ..Table::none()
        }
    }
}

/// Reads the partition table of `disk`, whose logical sectors are
/// `sector_size` bytes. Only I/O errors fail.
pub fn read(disk: &dyn ReadAt, sector_size: u32) -> io::Result<Table> {
    let sector = u64::from(sector_size);
    if disk.size() < 512 {
        return Ok(Table::none());
    }
    let sector0 = disk.read_vec(0, 512)?;
    let mbr_header = mbr::parse_sector(&sector0);
    let protective = mbr_header.as_ref().is_some_and(mbr::has_protective_entry);
    let used_mbr = mbr_header
        .as_ref()
        .is_some_and(|h| mbr::used_entries(h) > 0);
    let gpt = gpt::read(disk, sector)?;

    let mut table = match (gpt, protective) {
        (gpt::Found::Table(t), true) => {
            let header = mbr_header.as_ref();
            let mut t = *t;
            if let Some(h) = header.filter(|h| mbr::used_entries(h) > 1) {
                t.protective_mbr = Some(ProtectiveMbr::Hybrid);
                check_hybrid(&mut t, h, sector);
            }
            t
        }
        (gpt::Found::Damaged(reason), true) => Table::doubtful(TableKind::Gpt, reason),
        (gpt::Found::Nothing, true) => Table::doubtful(
            TableKind::Gpt,
            "protective MBR (type 0xee) but no GPT header at either end of the disk".into(),
        ),
        (gpt::Found::Table(_), false) if used_mbr => Table::doubtful(
            TableKind::Mbr,
            "an MBR with partitions and a valid GPT without protective MBR: cannot tell which one is current".into(),
        ),
        (gpt::Found::Table(t), false) => {
            let mut t = *t;
            t.protective_mbr = Some(ProtectiveMbr::Missing);
            t.warnings.push("no protective MBR in sector 0; the GPT is used".into());
            t
        }
        (gpt::Found::Damaged(reason), false) if !used_mbr => Table::doubtful(TableKind::Gpt, reason),
        (found, false) => match mbr_header {
            Some(h) if probe::boot_sector_filesystem(&sector0).is_none() => {
                let mut t = mbr::read(disk, sector, &h)?;
                if let gpt::Found::Damaged(reason) = found {
                    t.warnings.push(format!("stale GPT signature ignored ({reason})"));
                }
                t
            }
            _ => Table::none(),
        },
    };
    validate(&mut table, disk.size(), sector);
    Ok(table)
}

/// Hybrid MBR entries should repeat GPT partitions; an entry covering other
/// bytes is copied whole, since some system may use it.
fn check_hybrid(table: &mut Table, header: &mbrman::MBRHeader, sector: u64) {
    let mut extra = ExtentBuilder::new();
    for (slot, entry) in header.iter() {
        if entry.sys == 0 || entry.sys == mbr::PROTECTIVE || entry.sectors == 0 {
            continue;
        }
        let start = u64::from(entry.starting_lba) * sector;
        let end = start + u64::from(entry.sectors) * sector;
        let inside = table
            .partitions
            .iter()
            .any(|p| p.start <= start && end <= p.end());
        if !inside {
            table.warnings.push(format!(
                "hybrid MBR entry {slot} (type {:#x}) covers bytes {start}-{end} outside every GPT partition: copied whole",
                entry.sys
            ));
            extra.push(start, end - start);
        }
    }
    table.warnings.push(
        "hybrid MBR: some GPT partitions are also listed in sector 0; the GPT is used".into(),
    );
    table.structures = table.structures.union(&extra.build());
}

/// The checks every table gets, whatever its kind: partitions inside the
/// disk, not overlapping each other or the table itself.
fn validate(table: &mut Table, disk_size: u64, sector: u64) {
    if table.doubt.is_some() {
        return;
    }
    let mut data: Vec<&Partition> = table.partitions.iter().filter(|p| p.holds_data()).collect();
    let containers: Vec<&Partition> = table
        .partitions
        .iter()
        .filter(|p| !p.holds_data())
        .collect();
    let mut doubt = None;
    for p in table.partitions.iter() {
        if p.end() > disk_size {
            doubt = Some(format!(
                "partition {} ends at byte {}, past the end of the disk ({disk_size} bytes)",
                p.number,
                p.end()
            ));
            break;
        }
        if p.start < sector.max(512)
            || (table.kind == TableKind::Gpt
                && table
                    .structures
                    .bytes_in(extents::Extent::new(p.start, p.size))
                    > 0)
        {
            doubt = Some(format!(
                "partition {} overlaps the partition table",
                p.number
            ));
            break;
        }
    }
    // Primaries and logicals must not overlap; the container only holds logicals.
    data.sort_by_key(|p| (p.start, p.number));
    if doubt.is_none() {
        doubt = data
            .windows(2)
            .find(|w| matches!(w, [a, b] if b.start < a.end()))
            .and_then(|w| match w {
                [a, b] => Some(format!("partitions {} and {} overlap", a.number, b.number)),
                _ => None,
            });
    }
    if doubt.is_none() {
        for c in &containers {
            let primary_inside = data.iter().find(|p| {
                p.role == PartitionRole::Primary && p.start < c.end() && c.start < p.end()
            });
            if let Some(p) = primary_inside {
                doubt = Some(format!(
                    "partition {} overlaps the extended partition {}",
                    p.number, c.number
                ));
            }
        }
    }
    if let Some(reason) = doubt {
        table.warnings.push(reason.clone());
        table.doubt = Some(reason);
    }
}
