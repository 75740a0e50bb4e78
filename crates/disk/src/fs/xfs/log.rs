//! Is the internal log clean? A dirty log holds allocations that the
//! free-space trees on disk do not show yet, so mapping from them could drop
//! data. The log is clean when its last record ends at the head and is a
//! lone unmount record, the test the kernel applies at mount.
//!
//! Every 512-byte log block starts with the cycle (pass) number it was
//! written in, except record headers, which start with a magic number and
//! carry the cycle next. The head is where the cycle number drops.

use extents::ReadAt;

use super::bytes::{be32, be64};
use super::superblock::Superblock;
use crate::fs::MapError;

const BB: u64 = 512;
const HEADER_MAGIC: u32 = 0xFEED_BABE;
const UNMOUNT_TRANS: u8 = 0x20;
/// Cycle data of one header block covers this many bytes of a record.
const HEADER_CYCLE_SIZE: u64 = 32 * 1024;
/// A record is at most 256 KiB plus its header blocks: search that far back.
const MAX_RECORD_BLOCKS: u64 = (256 * 1024 + 8 * BB) / BB + 1;

/// Ok when the log is clean, Doubt saying why otherwise.
pub(super) fn check_clean(vol: &dyn ReadAt, sb: &Superblock) -> Result<(), MapError> {
    let (start, end) = sb.log_byte_range();
    let log = Log {
        vol,
        start,
        blocks: (end - start) / BB,
    };
    let dirty = |why: String| {
        MapError::doubt(format!(
            "the log is not clean ({why}): the free-space trees may be stale; mount and unmount \
             the filesystem (or run xfs_repair) on the source first"
        ))
    };
    if log.blocks < 2 {
        return Err(dirty("log too small".into()));
    }
    let head = log.find_head()?;
    // Walk back from the head to the last record header.
    let mut found = None;
    for back in 1..=MAX_RECORD_BLOCKS.min(log.blocks) {
        let blk = (head + log.blocks - back) % log.blocks;
        let b = log.block(blk)?;
        if be32(&b, 0) == HEADER_MAGIC {
            found = Some((blk, b));
            break;
        }
    }
    let Some((hdr_blk, hdr)) = found else {
        return Err(dirty("no record header before the head".into()));
    };
    let cycle = u64::from(be32(&hdr, 4));
    let version = be32(&hdr, 8);
    let len = u64::from(be32(&hdr, 12));
    let lsn = be64(&hdr, 16);
    let num_ops = be32(&hdr, 40);
    let iclog_size = u64::from(be32(&hdr, 320));
    if lsn != (cycle << 32 | hdr_blk) {
        return Err(dirty(format!(
            "record at block {hdr_blk} claims lsn {lsn:#x}"
        )));
    }
    let header_blocks = if version & 2 != 0 && iclog_size > HEADER_CYCLE_SIZE {
        iclog_size.div_ceil(HEADER_CYCLE_SIZE)
    } else {
        1
    };
    let record_end = (hdr_blk + header_blocks + len.div_ceil(BB)) % log.blocks;
    if record_end != head % log.blocks {
        return Err(dirty(format!(
            "last record at block {hdr_blk} ends at {record_end}, the head is at {head}"
        )));
    }
    let data = log.block((hdr_blk + header_blocks) % log.blocks)?;
    // oh_flags is byte 9 of the first operation header.
    if num_ops != 1 || data[9] & UNMOUNT_TRANS == 0 {
        return Err(dirty("the last record is not an unmount record".into()));
    }
    Ok(())
}

struct Log<'a> {
    vol: &'a dyn ReadAt,
    start: u64,
    blocks: u64,
}

impl Log<'_> {
    fn block(&self, blk: u64) -> Result<[u8; BB as usize], MapError> {
        let mut b = [0u8; BB as usize];
        self.vol.read_exact_at(&mut b, self.start + blk * BB)?;
        Ok(b)
    }

    fn cycle(&self, blk: u64) -> Result<u32, MapError> {
        let b = self.block(blk)?;
        Ok(if be32(&b, 0) == HEADER_MAGIC {
            be32(&b, 4)
        } else {
            be32(&b, 0)
        })
    }

    /// The block after the last one written: where the cycle number drops
    /// by one, or the end of the log when it never does.
    fn find_head(&self) -> Result<u64, MapError> {
        let first = self.cycle(0)?;
        let last = self.cycle(self.blocks - 1)?;
        if first == last {
            return Ok(self.blocks);
        }
        if last.wrapping_add(1) != first {
            return Err(MapError::doubt(format!(
                "log cycles {first} at the start and {last} at the end are not consecutive"
            )));
        }
        let (mut lo, mut hi) = (0, self.blocks - 1);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.cycle(mid)? == first {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(hi)
    }
}
