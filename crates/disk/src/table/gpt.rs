//! GPT: both headers checked (signature, CRC, location, entry array CRC),
//! the backup used when the primary is damaged, and the entries decoded by
//! the `gpt` crate.
//!
//! Headers are parsed here rather than through `gpt::GptConfig`, because on
//! hostile input the crate asserts (panics) when the entry size is not 128,
//! allocates whatever entry array size the header claims, looks for the
//! backup only at the last sector, and fails the whole disk when the
//! primary's entry array is corrupt instead of falling back to the backup.

use std::io::{self, Cursor};

use extents::{ExtentBuilder, ReadAt};

use super::{Partition, PartitionRole, ProtectiveMbr, Table, TableKind};
use crate::probe::raw::{self, le32, le64};

const SIGNATURE: &[u8; 8] = b"EFI PART";
const HEADER_MIN: usize = 92;
/// Entry arrays larger than this are not believed (128 entries of 128
/// bytes is usual; 4 MiB allows 32768 of them).
const MAX_ENTRY_ARRAY: u64 = 4 << 20;

/// The outcome of looking for a GPT.
#[derive(Debug)]
pub enum Found {
    /// At least one usable header.
    Table(Box<Table>),
    /// A GPT signature was seen but no header is usable.
    Damaged(String),
    /// No GPT signature at either end.
    Nothing,
}

/// A header that passed every check, with its decoded entries.
#[derive(Debug)]
struct Header {
    lba: u64,
    alternate_lba: u64,
    first_usable: u64,
    last_usable: u64,
    disk_guid: uuid::Uuid,
    entries_lba: u64,
    entries_crc: u32,
    entries_len: u64,
    entries: Vec<Partition>,
}

/// Why a header was not usable.
#[derive(Debug)]
enum Problem {
    Missing,
    Damaged(String),
}

pub fn read(disk: &dyn ReadAt, sector: u64) -> io::Result<Found> {
    let sectors = disk.size() / sector;
    if sectors < 3 {
        return Ok(Found::Nothing);
    }
    let last = sectors - 1;
    let primary = header_at(disk, 1, sector)?;
    let mut warnings = Vec::new();
    let backup_lba = match &primary {
        Ok(h) if h.alternate_lba > 1 && h.alternate_lba <= last => h.alternate_lba,
        Ok(h) => {
            warnings.push(format!(
                "the backup GPT header at LBA {} lies past the end of the disk ({sectors} sectors); looking at the last LBA",
                h.alternate_lba
            ));
            last
        }
        Err(_) => last,
    };
    let backup = header_at(disk, backup_lba, sector)?;

    let mut doubt = None;
    let chosen = match (primary, backup) {
        (Ok(p), Ok(b)) => {
            if p.entries_crc != b.entries_crc || p.disk_guid != b.disk_guid {
                doubt = Some(
                    "the primary and backup GPT disagree (different entries or disk GUID)"
                        .to_string(),
                );
            }
            if backup_lba != last {
                warnings.push(format!(
                    "the backup GPT header is at LBA {backup_lba}, not at the last LBA {last} (was the disk grown?)"
                ));
            }
            (p, Some(b))
        }
        (Ok(p), Err(problem)) => {
            warnings.push(format!(
                "backup GPT header at LBA {backup_lba} {}; using the primary",
                describe(&problem)
            ));
            (p, None)
        }
        (Err(problem), Ok(b)) => {
            warnings.push(format!(
                "primary GPT header {}; using the backup at LBA {backup_lba}",
                describe(&problem)
            ));
            (b, None)
        }
        (Err(Problem::Missing), Err(Problem::Missing)) => return Ok(Found::Nothing),
        (Err(p), Err(b)) => {
            return Ok(Found::Damaged(format!(
                "both GPT headers are unusable: primary {}, backup {}",
                describe(&p),
                describe(&b)
            )))
        }
    };
    let (header, other) = chosen;

    let mut structures = ExtentBuilder::new();
    // Everything before the first usable LBA: protective MBR, primary
    // header and entries; everything after the last usable one: the backup.
    structures.push(
        0,
        header.first_usable.saturating_mul(sector).max(2 * sector),
    );
    let tail = header
        .last_usable
        .saturating_add(1)
        .saturating_mul(sector)
        .min(last * sector);
    structures.push(tail, disk.size() - tail);
    for h in std::iter::once(&header).chain(other.as_ref()) {
        structures.push(h.lba * sector, sector);
        structures.push(h.entries_lba.saturating_mul(sector), h.entries_len);
    }
    let mut table = Table {
        kind: TableKind::Gpt,
        uuid: Some(header.disk_guid.hyphenated().to_string()),
        protective_mbr: Some(ProtectiveMbr::Protective),
        partitions: header.entries,
        structures: structures.build(),
        warnings,
        doubt: None,
    };
    if header.last_usable > last {
        table.warnings.push(format!(
            "the GPT describes a disk of at least {} sectors, this one has {sectors} (truncated image?)",
            header.last_usable.saturating_add(2)
        ));
    }
    for p in &table.partitions {
        let first = header.first_usable.saturating_mul(sector);
        let last_byte = header.last_usable.saturating_add(1).saturating_mul(sector);
        if p.start < first || p.end() > last_byte {
            table.warnings.push(format!(
                "partition {} lies outside the GPT's usable area",
                p.number
            ));
        }
    }
    if let Some(reason) = doubt {
        table.warnings.push(reason.clone());
        table.doubt = Some(reason);
    }
    Ok(Found::Table(Box::new(table)))
}

fn describe(problem: &Problem) -> String {
    match problem {
        Problem::Missing => "is missing".to_string(),
        Problem::Damaged(why) => format!("is damaged ({why})"),
    }
}

/// Reads and checks the header at `lba`. Only I/O errors fail.
fn header_at(disk: &dyn ReadAt, lba: u64, sector: u64) -> io::Result<Result<Header, Problem>> {
    let Some(bytes) = raw::read(disk, lba * sector, sector as usize)? else {
        return Ok(Err(Problem::Missing));
    };
    if !raw::has(&bytes, 0, SIGNATURE) {
        return Ok(Err(Problem::Missing));
    }
    let fields = match check_header(&bytes, lba, sector, disk.size() / sector) {
        Ok(f) => f,
        Err(why) => return Ok(Err(Problem::Damaged(why))),
    };
    let len = u64::from(fields.count) * u64::from(fields.entry_size);
    let Some(array) = raw::read(disk, fields.entries_lba * sector, len as usize)? else {
        return Ok(Err(Problem::Damaged(
            "its entry array lies past the end of the disk".into(),
        )));
    };
    if raw::crc32(&array) != fields.entries_crc {
        return Ok(Err(Problem::Damaged("entry array CRC mismatch".into())));
    }
    if fields.entry_size != 128 {
        return Ok(Err(Problem::Damaged(format!(
            "entry size {} is not supported",
            fields.entry_size
        ))));
    }
    let entries = match decode_entries(array, &fields, sector) {
        Ok(e) => e,
        Err(why) => return Ok(Err(Problem::Damaged(why))),
    };
    Ok(Ok(Header {
        lba,
        alternate_lba: fields.alternate_lba,
        first_usable: fields.first_usable,
        last_usable: fields.last_usable,
        disk_guid: fields.disk_guid,
        entries_lba: fields.entries_lba,
        entries_crc: fields.entries_crc,
        entries_len: len,
        entries,
    }))
}

struct Fields {
    alternate_lba: u64,
    first_usable: u64,
    last_usable: u64,
    disk_guid: uuid::Uuid,
    entries_lba: u64,
    count: u32,
    entry_size: u32,
    entries_crc: u32,
    revision: u32,
    header_size: u32,
    header_crc: u32,
}

fn check_header(b: &[u8], lba: u64, sector: u64, sectors: u64) -> Result<Fields, String> {
    let field32 = |at| le32(b, at).ok_or("short header");
    let field64 = |at| le64(b, at).ok_or("short header");
    let header_size = field32(12)?;
    let size = header_size as usize;
    if size < HEADER_MIN || size as u64 > sector {
        return Err(format!("header size {header_size}"));
    }
    let header_crc = field32(16)?;
    let mut copy = raw::bytes(b, 0, size).ok_or("short header")?.to_vec();
    copy.get_mut(16..20).ok_or("short header")?.fill(0);
    if raw::crc32(&copy) != header_crc {
        return Err("header CRC mismatch".into());
    }
    let my_lba = field64(24)?;
    if my_lba != lba {
        return Err(format!("it says it is at LBA {my_lba}"));
    }
    let guid: [u8; 16] = raw::bytes(b, 56, 16)
        .and_then(|g| g.try_into().ok())
        .ok_or("short header")?;
    let fields = Fields {
        alternate_lba: field64(32)?,
        first_usable: field64(40)?,
        last_usable: field64(48)?,
        disk_guid: uuid::Uuid::from_bytes_le(guid),
        entries_lba: field64(72)?,
        count: field32(80)?,
        entry_size: field32(84)?,
        entries_crc: field32(88)?,
        revision: field32(8)?,
        header_size,
        header_crc,
    };
    let len = u64::from(fields.count) * u64::from(fields.entry_size);
    if fields.entry_size < 128 || !fields.entry_size.is_power_of_two() || len > MAX_ENTRY_ARRAY {
        return Err(format!(
            "{} entries of {} bytes",
            fields.count, fields.entry_size
        ));
    }
    // A last usable LBA past the end is left to the partition checks: the
    // header is sound, the disk (or image) is shorter than it was.
    if fields.first_usable > fields.last_usable.saturating_add(1) {
        return Err(format!(
            "usable LBAs {}-{} on a disk of {sectors} sectors",
            fields.first_usable, fields.last_usable
        ));
    }
    if fields.entries_lba == 0 || fields.entries_lba >= sectors {
        // (An entry array that starts past the end cannot be read at all.)
        return Err(format!("entry array at LBA {}", fields.entries_lba));
    }
    Ok(fields)
}

/// Decodes the used entries of a checked 128-byte entry array.
fn decode_entries(array: Vec<u8>, f: &Fields, sector: u64) -> Result<Vec<Partition>, String> {
    // The crate reads the array from the position the header names; give it
    // a header whose array starts at byte 0 of a buffer holding only the array.
    let header = gpt::header::Header {
        signature: "EFI PART".into(),
        revision: ((f.revision >> 16) as u16, f.revision as u16),
        header_size_le: f.header_size,
        crc32: f.header_crc,
        reserved: 0,
        current_lba: 1,
        backup_lba: f.alternate_lba,
        first_usable: f.first_usable,
        last_usable: f.last_usable,
        disk_guid: f.disk_guid,
        part_start: 0,
        num_parts: f.count,
        part_size: 128,
        crc32_parts: f.entries_crc,
    };
    let decoded = gpt::partition::file_read_partitions(
        &mut Cursor::new(array),
        &header,
        gpt::disk::LogicalBlockSize::Lb512,
    )
    .map_err(|e| format!("entries: {e}"))?;
    let mut out = Vec::new();
    for (number, entry) in decoded {
        if entry.part_type_guid.guid.is_nil() {
            continue;
        }
        if entry.last_lba < entry.first_lba {
            return Err(format!("partition {number} ends before it starts"));
        }
        let start = entry.first_lba.checked_mul(sector);
        let size = (entry.last_lba - entry.first_lba + 1).checked_mul(sector);
        let (Some(start), Some(size)) = (start, size) else {
            return Err(format!("partition {number} lies beyond 2^64 bytes"));
        };
        let name = entry.name.trim_end_matches('\0').to_string();
        out.push(Partition {
            number,
            start,
            size,
            type_id: Some(entry.part_type_guid.guid.hyphenated().to_string()),
            name: (!name.is_empty()).then_some(name),
            uuid: Some(entry.part_guid.hyphenated().to_string()),
            role: PartitionRole::Primary,
        });
    }
    Ok(out)
}
