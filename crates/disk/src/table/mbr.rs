//! MBR: the four primary entries and the chain of extended boot records
//! (EBRs) that describes logical partitions. Sectors are decoded with
//! `mbrman::MBRHeader`; the chain is walked here, because
//! `mbrman::MBR::read_from` panics on some hostile tables (an unwrap when a
//! used entry starts at LBA 0, u32 overflows in EBR arithmetic) and has no
//! limit on chain length.

use std::collections::BTreeSet;
use std::io::{self, Cursor};

use extents::{ExtentBuilder, ReadAt};
use mbrman::{MBRHeader, MBRPartitionEntry};

use super::{Partition, PartitionRole, Table, TableKind};
use crate::probe::raw;

/// The type byte of a GPT protective entry.
pub const PROTECTIVE: u8 = 0xEE;
/// Linux reads at most this many logical partitions; so do we.
const MAX_LOGICAL: u32 = 256;

/// Decodes sector 0 as an MBR: the 0x55AA signature and sane boot flags.
pub fn parse_sector(sector: &[u8]) -> Option<MBRHeader> {
    let bytes = raw::bytes(sector, 0, 512)?;
    if !raw::has(bytes, 510, &[0x55, 0xAA]) {
        return None;
    }
    MBRHeader::read_from(&mut Cursor::new(bytes)).ok()
}

pub fn has_protective_entry(header: &MBRHeader) -> bool {
    header.iter().any(|(_, e)| e.sys == PROTECTIVE)
}

pub fn used_entries(header: &MBRHeader) -> usize {
    header.iter().filter(|(_, e)| is_used(e)).count()
}

fn is_used(e: &MBRPartitionEntry) -> bool {
    e.sys != 0 && e.sectors != 0
}

/// The partitions of an MBR disk, logical ones included.
pub fn read(disk: &dyn ReadAt, sector: u64, header: &MBRHeader) -> io::Result<Table> {
    let signature = u32::from_le_bytes(header.disk_signature);
    let uuid = (signature != 0).then(|| format!("{signature:08x}"));
    let mut table = Table {
        kind: TableKind::Mbr,
        uuid,
        ..Table::none()
    };
    let mut structures = ExtentBuilder::new();
    structures.push(0, sector.max(512));
    let partition_uuid = |n: u32| (signature != 0).then(|| format!("{signature:08x}-{n:02x}"));

    let mut extended = Vec::new();
    for (slot, entry) in header.iter() {
        if !is_used(entry) {
            continue;
        }
        let number = slot as u32;
        let role = if entry.is_extended() {
            PartitionRole::Extended
        } else {
            PartitionRole::Primary
        };
        let p = Partition {
            number,
            start: u64::from(entry.starting_lba) * sector,
            size: u64::from(entry.sectors) * sector,
            type_id: Some(format!("{:#x}", entry.sys)),
            name: None,
            uuid: partition_uuid(number),
            role,
        };
        if role == PartitionRole::Extended {
            extended.push(p.clone());
        }
        table.partitions.push(p);
    }

    match extended.as_slice() {
        [] => {}
        [container] => {
            let chain = walk_chain(disk, sector, container)?;
            for ebr in &chain.ebrs {
                structures.push(*ebr, sector);
            }
            for (i, (start, size, sys)) in chain.logicals.into_iter().enumerate() {
                let number = 5 + i as u32;
                table.partitions.push(Partition {
                    number,
                    start,
                    size,
                    type_id: Some(format!("{sys:#x}")),
                    name: None,
                    uuid: partition_uuid(number),
                    role: PartitionRole::Logical,
                });
            }
            if let Some(reason) = chain.broken {
                table.warnings.push(reason.clone());
                table.doubt = Some(reason);
            }
        }
        _ => {
            let reason = "more than one extended partition".to_string();
            table.warnings.push(reason.clone());
            table.doubt = Some(reason);
        }
    }
    table.structures = structures.build();
    Ok(table)
}

/// What the EBR chain holds.
#[derive(Debug, Default)]
struct Chain {
    /// Byte offsets of the EBRs.
    ebrs: Vec<u64>,
    /// (start, size, type) of each logical partition, in bytes.
    logicals: Vec<(u64, u64, u8)>,
    /// Why the chain could not be followed to its end.
    broken: Option<String>,
}

fn walk_chain(disk: &dyn ReadAt, sector: u64, container: &Partition) -> io::Result<Chain> {
    let mut chain = Chain::default();
    let first = container.start / sector;
    let end = container.end() / sector;
    let mut visited = BTreeSet::new();
    let mut next_relative = 0u64;
    for _ in 0..MAX_LOGICAL {
        let lba = first + next_relative;
        if lba >= end {
            chain.broken = Some(format!(
                "an EBR link points to LBA {lba}, outside the extended partition"
            ));
            return Ok(chain);
        }
        if !visited.insert(lba) {
            chain.broken = Some(format!("the EBR chain loops back to LBA {lba}"));
            return Ok(chain);
        }
        let Some(bytes) = raw::read(disk, lba * sector, 512)? else {
            chain.broken = Some(format!(
                "the EBR at LBA {lba} lies past the end of the disk"
            ));
            return Ok(chain);
        };
        let ebr = match parse_sector(&bytes) {
            Some(h) => h,
            // An extended partition without any logical one needs no EBR.
            None if next_relative == 0 => return Ok(chain),
            None => {
                chain.broken = Some(format!("the EBR at LBA {lba} is damaged"));
                return Ok(chain);
            }
        };
        chain.ebrs.push(lba * sector);
        let logical = &ebr.partition_1;
        if is_used(logical) {
            let start = (lba + u64::from(logical.starting_lba)) * sector;
            chain
                .logicals
                .push((start, u64::from(logical.sectors) * sector, logical.sys));
        }
        let link = &ebr.partition_2;
        if !is_used(link) || link.starting_lba == 0 {
            return Ok(chain);
        }
        if !link.is_extended() {
            chain.broken = Some(format!(
                "the EBR at LBA {lba} links with type {:#x}",
                link.sys
            ));
            return Ok(chain);
        }
        next_relative = u64::from(link.starting_lba);
    }
    chain.broken = Some(format!("more than {MAX_LOGICAL} logical partitions"));
    Ok(chain)
}
