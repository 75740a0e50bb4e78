//! The by-block-number free-space B-tree (bnobt) of one allocation group,
//! walked depth first so its records come out sorted by start block.

use extents::ReadAt;

use super::ag::Agf;
use super::bytes::{be16, be32, be64, crc_ok};
use super::superblock::Superblock;
use crate::fs::MapError;

const MAGIC_V4: u32 = 0x4142_5442; // "ABTB"
const MAGIC_V5: u32 = 0x4142_3342; // "AB3B"
const HEADER_V4: usize = 16;
/// v5 adds blkno, lsn, uuid, owner and crc to the short-form header.
const HEADER_V5: usize = 56;
const CRC_OFF: usize = 52;
/// Records, keys: (start block, block count); pointers: AG block numbers.
const REC_LEN: usize = 8;
const PTR_LEN: usize = 4;

/// A free extent of an AG: `(start block, block count)`.
pub(super) type FreeExtent = (u64, u64);

/// Calls `free` for each record of AG `agno`'s bnobt in block order, after
/// checking every block: magic, level, record count, v5 checksum and
/// owner, and that records are sorted, disjoint and inside the AG's free
/// area.
pub(super) fn walk(
    vol: &dyn ReadAt,
    sb: &Superblock,
    agno: u64,
    agf: &Agf,
    mut free: impl FnMut(FreeExtent),
) -> Result<(), MapError> {
    let bs = sb.block_size as usize;
    let header = if sb.crc { HEADER_V5 } else { HEADER_V4 };
    let leaf_max = (bs - header) / REC_LEN;
    let node_max = (bs - header) / (REC_LEN + PTR_LEN);
    let bad = |what: String| MapError::doubt(format!("AG {agno} free-space tree: {what}"));
    // Blocks we may still read: a loop in a corrupt tree ends in doubt.
    let mut budget = agf.length;
    let mut next_free = sb.ag_header_blocks();
    let mut stack: Vec<(u64, u32)> = vec![(agf.bno_root, agf.bno_level - 1)];
    let mut block = vec![0u8; bs];
    while let Some((agbno, level)) = stack.pop() {
        if agbno < sb.ag_header_blocks() || agbno >= agf.length {
            return Err(bad(format!("block {agbno} outside the AG")));
        }
        budget = budget
            .checked_sub(1)
            .ok_or_else(|| bad("more blocks than the AG holds".into()))?;
        vol.read_exact_at(&mut block, sb.ag_byte(agno, agbno))?;
        check_block(sb, agno, agbno, &block).map_err(|w| bad(format!("block {agbno}: {w}")))?;
        let block_level = u32::from(be16(&block, 4));
        let numrecs = be16(&block, 6) as usize;
        if block_level != level {
            return Err(bad(format!(
                "block {agbno} is at level {block_level}, expected {level}"
            )));
        }
        if level == 0 {
            if numrecs > leaf_max {
                return Err(bad(format!("leaf {agbno} holds {numrecs} records")));
            }
            for i in 0..numrecs {
                let at = header + i * REC_LEN;
                let start = u64::from(be32(&block, at));
                let count = u64::from(be32(&block, at + 4));
                if count == 0 || start < next_free || start + count > agf.length {
                    return Err(bad(format!(
                        "record {start}+{count} is empty, out of order, overlapping or outside the AG"
                    )));
                }
                next_free = start + count;
                free((start, count));
            }
        } else {
            if numrecs == 0 || numrecs > node_max {
                return Err(bad(format!("node {agbno} holds {numrecs} pointers")));
            }
            let ptrs = header + node_max * REC_LEN;
            // Pushed in reverse so the leftmost child is walked first.
            for i in (0..numrecs).rev() {
                let child = u64::from(be32(&block, ptrs + i * PTR_LEN));
                stack.push((child, level - 1));
            }
        }
    }
    Ok(())
}

fn check_block(sb: &Superblock, agno: u64, agbno: u64, block: &[u8]) -> Result<(), String> {
    let magic = be32(block, 0);
    if !sb.crc {
        return if magic == MAGIC_V4 {
            Ok(())
        } else {
            Err(format!("magic {magic:#010x}"))
        };
    }
    if magic != MAGIC_V5 {
        return Err(format!("magic {magic:#010x}"));
    }
    if !crc_ok(block, CRC_OFF) {
        return Err("checksum mismatch".into());
    }
    let daddr = sb.ag_byte(agno, agbno) / 512;
    if be64(block, 16) != daddr {
        return Err(format!(
            "claims to be at sector {}, read at {daddr}",
            be64(block, 16)
        ));
    }
    if block[32..48] != sb.meta_uuid || u64::from(be32(block, 48)) != agno {
        return Err("belongs to another filesystem or AG".into());
    }
    Ok(())
}
