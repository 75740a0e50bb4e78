//! Block group descriptors: read, checksummed and range-checked.

use extents::ReadAt;

use super::bytes::{le16, le32};
use super::csum::{crc16, crc32c};
use super::superblock::Superblock;
use crate::fs::MapError;

// bg_flags bits.
pub(super) const BLOCK_UNINIT: u16 = 0x2;

/// Offset of bg_checksum inside a descriptor.
const CSUM_OFF: usize = 0x1E;
/// A descriptor at least this long stores the high half of the bitmap checksum.
const BLOCK_BITMAP_CSUM_HI_END: u64 = 0x3C;

/// What the mapper keeps of one group descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct GroupDesc {
    pub block_bitmap: u64,
    pub inode_bitmap: u64,
    pub inode_table: u64,
    /// At most 8 × 64 Ki clusters per group: fits.
    pub free_clusters: u32,
    pub flags: u16,
    pub block_bitmap_csum: u32,
}

/// Reads every group descriptor, verifying its checksum when the filesystem
/// has one and that its metadata lies inside the filesystem.
pub(super) fn read_all(vol: &dyn ReadAt, sb: &Superblock) -> Result<Vec<GroupDesc>, MapError> {
    let bs = sb.block_size as usize;
    let dpb = sb.descs_per_block();
    let desc_size = sb.desc_size as usize;
    let mut out = Vec::with_capacity(usize::try_from(sb.group_count).unwrap_or(0));
    let mut block = vec![0u8; bs];
    for nr in 0..sb.gdt_blocks() {
        let at = sb.descriptor_block(nr);
        if at >= sb.blocks_count {
            return Err(MapError::doubt(format!(
                "descriptor block {nr} would be at block {at}, past the end of the filesystem"
            )));
        }
        vol.read_exact_at(&mut block, at * sb.block_size)?;
        for i in 0..dpb {
            let g = nr * dpb + i;
            if g >= sb.group_count {
                break;
            }
            let off = (i as usize) * desc_size;
            let raw = &block[off..off + desc_size];
            verify_checksum(sb, g, raw)?;
            let desc = parse(sb, raw);
            check_ranges(sb, g, &desc)?;
            out.push(desc);
        }
    }
    Ok(out)
}

fn parse(sb: &Superblock, raw: &[u8]) -> GroupDesc {
    let wide = sb.desc_size >= 64;
    let hi32 = |off: usize| {
        if wide {
            u64::from(le32(raw, off)) << 32
        } else {
            0
        }
    };
    let hi16 = |off: usize| {
        if wide {
            u64::from(le16(raw, off)) << 16
        } else {
            0
        }
    };
    let csum_hi = if sb.desc_size >= BLOCK_BITMAP_CSUM_HI_END {
        u32::from(le16(raw, 0x38)) << 16
    } else {
        0
    };
    GroupDesc {
        block_bitmap: u64::from(le32(raw, 0x0)) | hi32(0x20),
        inode_bitmap: u64::from(le32(raw, 0x4)) | hi32(0x24),
        inode_table: u64::from(le32(raw, 0x8)) | hi32(0x28),
        free_clusters: (u64::from(le16(raw, 0xC)) | hi16(0x2C)) as u32,
        flags: le16(raw, 0x12),
        block_bitmap_csum: u32::from(le16(raw, 0x18)) | csum_hi,
    }
}

fn verify_checksum(sb: &Superblock, g: u64, raw: &[u8]) -> Result<(), MapError> {
    let stored = le16(raw, CSUM_OFF);
    let group = (g as u32).to_le_bytes();
    let head = &raw[..CSUM_OFF];
    let tail = &raw[CSUM_OFF + 2..];
    let computed = if sb.metadata_csum() {
        (crc32c(sb.csum_seed, &[&group, head, &[0, 0], tail]) & 0xFFFF) as u16
    } else if sb.gdt_csum() {
        // The crc16 covers the 64-bit tail only on 64-bit filesystems; the
        // descriptor is then desc_size long, otherwise 32 bytes.
        crc16(&[&sb.uuid, &group, head, tail])
    } else {
        return Ok(());
    };
    if stored != computed {
        return Err(MapError::doubt(format!(
            "group {g} descriptor checksum mismatch (stored {stored:#06x}, computed {computed:#06x})"
        )));
    }
    Ok(())
}

fn check_ranges(sb: &Superblock, g: u64, d: &GroupDesc) -> Result<(), MapError> {
    let inside =
        |b: u64, n: u64| b >= sb.first_data_block && b.saturating_add(n) <= sb.blocks_count;
    let itable = sb.inode_table_blocks();
    let bad = if !inside(d.block_bitmap, 1) {
        Some(("block bitmap", d.block_bitmap))
    } else if !inside(d.inode_bitmap, 1) {
        Some(("inode bitmap", d.inode_bitmap))
    } else if !inside(d.inode_table, itable) {
        Some(("inode table", d.inode_table))
    } else {
        None
    };
    if let Some((what, at)) = bad {
        return Err(MapError::doubt(format!(
            "group {g} {what} at block {at} lies outside the filesystem ({} blocks)",
            sb.blocks_count
        )));
    }
    if u64::from(d.free_clusters) > sb.group_clusters(g) {
        return Err(MapError::doubt(format!(
            "group {g} claims {} free clusters of {}",
            d.free_clusters,
            sb.group_clusters(g)
        )));
    }
    Ok(())
}
