//! Streaming dynamic VHD: footer copy, dynamic header, BAT, then the sent
//! blocks (sector bitmap + 2 MiB) in increasing virtual and file order, then
//! the footer. The BAT is generated piece by piece from the plan, so even a
//! 2040 GiB disk needs no 4 MiB table in memory.

mod footer;

use std::sync::Arc;

use crate::framing::{Framer, Piece};
use crate::plan::{BlockCursor, BlockPlan, PlanKind, PlannedBlock};
use crate::{WireError, BLOCK_SIZE, SECTOR};

use footer::{dynamic_header, Identity, FOOTER_LEN, TABLE_OFFSET};

/// Largest disk a dynamic VHD carries here: qemu refuses more and XAPI caps
/// VHD export there.
pub const VHD_MAX_SIZE: u64 = 2040 << 30;

const BITMAP_LEN: u64 = 512;
/// A block on the wire: its sector bitmap, then its data.
pub(crate) const BLOCK_ON_WIRE: u64 = BITMAP_LEN + BLOCK_SIZE;
/// BAT entries produced per `prefix` call (64 KiB of table).
const BAT_CHUNK: u64 = 16 << 10;
const ABSENT: u32 = u32::MAX;

fn bat_bytes(entries: u64) -> u64 {
    (entries * 4).div_ceil(SECTOR) * SECTOR
}

fn first_block_sector(plan: &BlockPlan) -> u64 {
    (TABLE_OFFSET + bat_bytes(plan.block_count())) / SECTOR
}

/// The size limit, and the BAT's 32-bit sector numbers (which the limit
/// implies, but a dropped block must be impossible, not just unlikely).
fn check_size(plan: &BlockPlan) -> Result<(), WireError> {
    let too_large = WireError::TooLargeForVhd {
        size: plan.size(),
        max: VHD_MAX_SIZE,
    };
    let last_sector =
        first_block_sector(plan) + plan.blocks_sent().saturating_sub(1) * (BLOCK_ON_WIRE / SECTOR);
    match plan.size() {
        0 => Err(WireError::EmptyDisk),
        size if size > VHD_MAX_SIZE => Err(too_large),
        _ if last_sector >= u64::from(ABSENT) => Err(too_large),
        _ => Ok(()),
    }
}

/// Stream offset of the first block: footer copy, header and BAT.
pub(crate) fn blocks_start(plan: &BlockPlan) -> u64 {
    TABLE_OFFSET + bat_bytes(plan.block_count())
}

/// 512 + 1024 + roundup512(4 N) + K (512 + 2 MiB) + 512.
pub(crate) fn stream_len(plan: &BlockPlan) -> Result<u64, WireError> {
    check_size(plan)?;
    Ok(TABLE_OFFSET
        + bat_bytes(plan.block_count())
        + plan.blocks_sent() * BLOCK_ON_WIRE
        + FOOTER_LEN as u64)
}

enum Stage {
    Headers,
    Table,
    Blocks,
}

pub(crate) struct VhdFramer {
    plan: Arc<BlockPlan>,
    footer: [u8; FOOTER_LEN],
    stage: Stage,
    /// Next BAT entry to write.
    entry: u64,
    /// The next sent block at or after `entry`, and how many came before it.
    cursor: BlockCursor,
    pending: Option<PlannedBlock>,
    ordinal: u64,
    first_block_sector: u64,
}

impl VhdFramer {
    pub(crate) fn new(plan: Arc<BlockPlan>) -> Result<VhdFramer, WireError> {
        check_size(&plan)?;
        let footer = footer::footer(plan.size(), &Identity::now());
        let first_block_sector = first_block_sector(&plan);
        let mut cursor = BlockCursor::default();
        let pending = cursor.next(&plan);
        Ok(VhdFramer {
            plan,
            footer,
            stage: Stage::Headers,
            entry: 0,
            cursor,
            pending,
            ordinal: 0,
            first_block_sector,
        })
    }

    fn bat_entry(&mut self) -> u32 {
        let present = self.pending.is_some_and(|b| b.index == self.entry);
        if !present {
            return ABSENT;
        }
        let sector = self.first_block_sector + self.ordinal * (BLOCK_ON_WIRE / SECTOR);
        self.ordinal += 1;
        self.pending = self.cursor.next(&self.plan);
        // `check_size` proved every block's sector below ABSENT.
        u32::try_from(sector).unwrap_or(ABSENT)
    }

    fn bitmap(&self, block: &PlannedBlock, meta: &mut Vec<u8>) {
        let at = meta.len();
        meta.resize(at + BITMAP_LEN as usize, 0);
        let bits = &mut meta[at..];
        let mut mark = |first: u64, count: u64| {
            for s in first..first + count {
                bits[(s / 8) as usize] |= 0x80 >> (s % 8);
            }
        };
        match self.plan.kind() {
            // The target holds exactly the block as hashed: every sector
            // inside the disk, zeros where the map had nothing.
            PlanKind::Full => mark(0, block.len / SECTOR),
            PlanKind::Delta => {
                for r in self.plan.ranges_in(block) {
                    mark((r.offset - block.offset) / SECTOR, r.len / SECTOR);
                }
            }
        }
    }
}

impl Framer for VhdFramer {
    fn prefix(&mut self, meta: &mut Vec<u8>) -> bool {
        match self.stage {
            Stage::Headers => {
                meta.extend_from_slice(&self.footer);
                let entries = self.plan.block_count() as u32; // <= 1044480 by check_size
                meta.extend_from_slice(&dynamic_header(entries));
                self.stage = Stage::Table;
                true
            }
            Stage::Table => {
                let total = self.plan.block_count();
                let end = (self.entry + BAT_CHUNK).min(total);
                while self.entry < end {
                    let e = self.bat_entry();
                    meta.extend_from_slice(&e.to_be_bytes());
                    self.entry += 1;
                }
                if self.entry == total {
                    let padded = bat_bytes(total) - total * 4;
                    meta.resize(meta.len() + padded as usize, 0xff);
                    self.stage = Stage::Blocks;
                }
                true
            }
            Stage::Blocks => false,
        }
    }

    fn block(&mut self, block: &PlannedBlock, meta: &mut Vec<u8>, pieces: &mut Vec<Piece>) {
        let at = meta.len();
        self.bitmap(block, meta);
        pieces.push(Piece::Meta(at..meta.len()));
        pieces.push(Piece::Data(0..BLOCK_SIZE as usize));
    }

    fn suffix(&mut self, meta: &mut Vec<u8>) {
        meta.extend_from_slice(&self.footer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use extents::ExtentMap;

    #[test]
    fn largest_disk_fits_the_bat() {
        let plan = BlockPlan::full(VHD_MAX_SIZE, &ExtentMap::single(0, VHD_MAX_SIZE));
        let first = first_block_sector(&plan);
        let last = first + (plan.blocks_sent() - 1) * (BLOCK_ON_WIRE / SECTOR);
        assert!(last <= u64::from(u32::MAX - 1));
        assert_eq!(stream_len(&plan).unwrap(), {
            TABLE_OFFSET + bat_bytes(1_044_480) + 1_044_480 * BLOCK_ON_WIRE + 512
        });
    }

    #[test]
    fn refuses_sizes_it_cannot_describe() {
        let over = BlockPlan::full(VHD_MAX_SIZE + 512, &ExtentMap::new());
        let err = stream_len(&over).unwrap_err();
        assert!(matches!(err, WireError::TooLargeForVhd { .. }));
        assert!(err.to_string().contains("raw-chunked"));
        let empty = BlockPlan::full(0, &ExtentMap::new());
        assert!(matches!(stream_len(&empty), Err(WireError::EmptyDisk)));
    }
}
