//! FAT12, FAT16 and FAT32 (blkid's "vfat"). The label is the volume-label
//! entry of the root directory when there is one, else the boot sector's.

use std::io;

use extents::ReadAt;

use super::raw::{self, le16, le32, u8_at};
use super::Signature;
use crate::content::ContentKind;

const FAT12_MAX: u64 = 0xFF4;
const FAT16_MAX: u64 = 0xFFF4;
const FAT32_MAX: u64 = 0x0FFF_FFF6;
const NO_NAME: &[u8; 11] = b"NO NAME    ";
/// How many root directory clusters of a FAT32 volume to search for the label.
const MAX_ROOT_CLUSTERS: u32 = 100;

/// The boot sector fields the probe needs.
#[derive(Debug)]
pub(super) struct Bpb {
    sector_size: u64,
    cluster_sectors: u64,
    reserved: u64,
    fat_sectors: u64,
    root_entries: u64,
    clusters: u64,
    fat32: bool,
}

pub fn probe(vol: &dyn ReadAt) -> io::Result<Option<Signature>> {
    let Some(boot) = raw::read(vol, 0, 512)? else {
        return Ok(None);
    };
    let Some(bpb) = parse(&boot) else {
        return Ok(None);
    };
    let (serial_at, label_at) = if bpb.fat32 {
        (0x43, 0x47)
    } else {
        (0x27, 0x2B)
    };
    let dir_label = if bpb.fat32 {
        fat32_root_label(vol, &bpb)?
    } else {
        let start = (bpb.reserved + bpb.fat_sectors) * bpb.sector_size;
        search_label(vol, start, bpb.root_entries)?
    };
    let label = match dir_label.filter(|l| l != NO_NAME) {
        Some(l) => raw::label(&l, 0, 11),
        None => raw::bytes(&boot, label_at, 11)
            .filter(|l| l != NO_NAME)
            .and_then(|_| raw::label(&boot, label_at, 11)),
    };
    let uuid = raw::bytes(&boot, serial_at, 4).and_then(|s| {
        Some(format!(
            "{:02X}{:02X}-{:02X}{:02X}",
            s.get(3)?,
            s.get(2)?,
            s.get(1)?,
            s.first()?
        ))
    });
    let version = if bpb.fat32 {
        "FAT32"
    } else if bpb.clusters < FAT12_MAX {
        "FAT12"
    } else {
        "FAT16"
    };
    Ok(Some(
        Signature::new(ContentKind::Vfat, uuid, label).version(version),
    ))
}

pub(super) fn parse(b: &[u8]) -> Option<Bpb> {
    let magic = raw::has(b, 0x52, b"MSWIN")
        || raw::has(b, 0x52, b"FAT32   ")
        || raw::has(b, 0x36, b"MSDOS")
        || raw::has(b, 0x36, b"FAT16   ")
        || raw::has(b, 0x36, b"FAT12   ")
        || raw::has(b, 0x36, b"FAT     ");
    let jump = matches!(u8_at(b, 0)?, 0xEB | 0xE9) && raw::has(b, 0x1FE, &[0x55, 0xAA]);
    if !magic && !jump {
        return None;
    }
    // Other formats that leave a FAT-like header in place.
    if raw::has(b, 0x36, b"JFS     ") || raw::has(b, 0x36, b"HPFS    ") {
        return None;
    }
    let fats = u64::from(u8_at(b, 0x10)?);
    let reserved = u64::from(le16(b, 0x0E)?);
    let media = u8_at(b, 0x15)?;
    let cluster_sectors = u64::from(u8_at(b, 0x0D)?);
    let sector_size = u64::from(le16(b, 0x0B)?);
    if fats == 0
        || reserved == 0
        || !(media >= 0xF8 || media == 0xF0)
        || !cluster_sectors.is_power_of_two()
        || !sector_size.is_power_of_two()
        || !(512..=4096).contains(&sector_size)
    {
        return None;
    }
    let root_entries = u64::from(le16(b, 0x11)?);
    let total = match le16(b, 0x13)? {
        0 => u64::from(le32(b, 0x20)?),
        n => u64::from(n),
    };
    let fat16_length = u64::from(le16(b, 0x16)?);
    let fat32_length = u64::from(le32(b, 0x24)?);
    let fat32 = fat16_length == 0 && fat32_length != 0;
    let fat_sectors = if fat16_length != 0 {
        fat16_length
    } else {
        fat32_length
    } * fats;
    let root_sectors = (root_entries * 32).div_ceil(sector_size);
    let clusters = total.checked_sub(reserved + fat_sectors + root_sectors)? / cluster_sectors;
    let max = if fat32 {
        FAT32_MAX
    } else if clusters > FAT12_MAX {
        FAT16_MAX
    } else {
        FAT12_MAX
    };
    (clusters <= max).then_some(Bpb {
        sector_size,
        cluster_sectors,
        reserved,
        fat_sectors,
        root_entries,
        clusters,
        fat32,
    })
}

/// The 11-byte name of the first volume-label entry among `entries`
/// directory entries at `offset`.
fn search_label(vol: &dyn ReadAt, offset: u64, entries: u64) -> io::Result<Option<Vec<u8>>> {
    let len = entries.min(65536) as usize * 32;
    let Some(dir) = raw::read(vol, offset, len)? else {
        return Ok(None);
    };
    for entry in dir.chunks_exact(32) {
        let first = entry.first().copied().unwrap_or(0);
        if first == 0 {
            break;
        }
        let attr = entry.get(11).copied().unwrap_or(0);
        let cluster = le16(entry, 20).unwrap_or(0) | le16(entry, 26).unwrap_or(0);
        if first == 0xE5 || cluster != 0 || attr & 0x3F == 0x0F {
            continue;
        }
        if attr & (0x08 | 0x10) == 0x08 {
            return Ok(raw::bytes(entry, 0, 11).map(<[u8]>::to_vec));
        }
    }
    Ok(None)
}

/// Follows the FAT32 root directory's cluster chain looking for the label.
fn fat32_root_label(vol: &dyn ReadAt, bpb: &Bpb) -> io::Result<Option<Vec<u8>>> {
    let Some(boot) = raw::read(vol, 0, 512)? else {
        return Ok(None);
    };
    let fat_entries = bpb.fat_sectors * bpb.sector_size / 4;
    let data_start = (bpb.reserved + bpb.fat_sectors) * bpb.sector_size;
    let cluster_bytes = bpb.cluster_sectors * bpb.sector_size;
    let mut next = u64::from(le32(&boot, 0x2C).unwrap_or(0));
    for _ in 0..MAX_ROOT_CLUSTERS {
        if next < 2 || next >= fat_entries {
            break;
        }
        let offset = data_start + (next - 2) * cluster_bytes;
        if let Some(label) = search_label(vol, offset, cluster_bytes / 32)? {
            return Ok(Some(label));
        }
        let Some(entry) = raw::read(vol, bpb.reserved * bpb.sector_size + next * 4, 4)? else {
            break;
        };
        next = u64::from(le32(&entry, 0).unwrap_or(0) & 0x0FFF_FFFF);
    }
    Ok(None)
}
