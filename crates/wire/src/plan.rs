//! Block plans: which 2 MiB blocks of a virtual disk travel, and which
//! sector ranges of each.
//!
//! A plan is kept as a sorted map of 512-aligned byte ranges, never as a list
//! of blocks: a whole 2 TiB disk is one extent, and blocks are derived from
//! the map on the fly. A full copy and a delta are the same structure; only
//! what the target holds where nothing is written differs ([`PlanKind`]).

use extents::{Extent, ExtentMap};

use crate::{BLOCK_SIZE, SECTOR};

/// What the target holds where the stream writes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanKind {
    /// A target that reads zeros where nothing is written (a new VDI, a new
    /// file). Sent VHD blocks mark every sector of the block in their
    /// bitmap, so the target holds exactly the block as hashed; all-zero
    /// blocks may be left out.
    Full,
    /// A target that already holds data (resume onto a partly written VDI
    /// that is not known to be zeroed, a fix-up, a warm pass). Only the
    /// planned ranges are written; every planned block is sent, zeros too.
    Delta,
}

/// The ordered set of blocks to send and the byte ranges inside them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockPlan {
    size: u64,
    kind: PlanKind,
    ranges: ExtentMap,
    blocks_sent: u64,
    zero_blocks_skipped: u64,
}

/// One block of a plan. `offset` and `len` are in the virtual disk; `len` is
/// short only for the last block of a disk whose size is not a multiple of
/// the block size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedBlock {
    pub index: u64,
    pub offset: u64,
    pub len: u64,
    first_extent: usize,
}

impl PlannedBlock {
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// The virtual size of a disk of `size` bytes: whole sectors.
pub(crate) fn virtual_size(size: u64) -> u64 {
    size.div_ceil(SECTOR).saturating_mul(SECTOR)
}

impl BlockPlan {
    /// Everything in `map` (a disk-relative allocation map), widened to whole
    /// sectors, onto a target that reads zeros elsewhere. Bytes of the map
    /// past the disk end are dropped; a disk size that is not a multiple of
    /// 512 is rounded up (the tail of the last sector travels as zeros).
    pub fn full(disk_size: u64, map: &ExtentMap) -> BlockPlan {
        BlockPlan::new(disk_size, PlanKind::Full, map)
    }

    /// Exactly the ranges in `ranges` (widened to whole sectors), onto a
    /// target that holds data elsewhere.
    pub fn delta(disk_size: u64, ranges: &ExtentMap) -> BlockPlan {
        BlockPlan::new(disk_size, PlanKind::Delta, ranges)
    }

    /// Whole blocks by index (in any order; duplicates and indices past the
    /// disk end are ignored), onto a target that holds data elsewhere.
    pub fn delta_blocks(disk_size: u64, blocks: impl IntoIterator<Item = u64>) -> BlockPlan {
        let map = ExtentMap::from_unsorted(
            blocks
                .into_iter()
                .filter_map(|i| i.checked_mul(BLOCK_SIZE))
                .map(|offset| Extent::new(offset, BLOCK_SIZE))
                .collect(),
        );
        BlockPlan::delta(disk_size, &map)
    }

    fn new(disk_size: u64, kind: PlanKind, map: &ExtentMap) -> BlockPlan {
        let size = virtual_size(disk_size);
        let ranges = map.aligned_out(SECTOR).clip(Extent::new(0, size));
        BlockPlan::with_ranges(size, kind, ranges, 0)
    }

    fn with_ranges(size: u64, kind: PlanKind, ranges: ExtentMap, zero_skipped: u64) -> BlockPlan {
        let mut plan = BlockPlan {
            size,
            kind,
            ranges,
            blocks_sent: 0,
            zero_blocks_skipped: zero_skipped,
        };
        plan.blocks_sent = plan.blocks().count() as u64;
        plan
    }

    /// Keeps only the bytes inside `data` (for image files: the extents that
    /// hold data, so holes are not read), widened back to whole sectors.
    pub fn restricted_to(self, data: &ExtentMap) -> BlockPlan {
        let outside = ExtentMap::single(0, self.size).subtract(data);
        let ranges = self
            .ranges
            .subtract(&outside)
            .aligned_out(SECTOR)
            .clip(Extent::new(0, self.size));
        BlockPlan::with_ranges(self.size, self.kind, ranges, self.zero_blocks_skipped)
    }

    /// Drops whole blocks (used by the zero scan). Only for full plans.
    pub(crate) fn without_block_set(self, blocks: &ExtentMap, count: u64) -> BlockPlan {
        let ranges = self.ranges.subtract(blocks);
        BlockPlan::with_ranges(
            self.size,
            self.kind,
            ranges,
            self.zero_blocks_skipped + count,
        )
    }

    /// Virtual disk size in bytes (a multiple of 512).
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn kind(&self) -> PlanKind {
        self.kind
    }

    /// The 512-aligned byte ranges that travel.
    pub fn ranges(&self) -> &ExtentMap {
        &self.ranges
    }

    /// Number of blocks of the whole virtual disk (the last may be short).
    pub fn block_count(&self) -> u64 {
        self.size.div_ceil(BLOCK_SIZE)
    }

    /// Number of blocks that travel.
    pub fn blocks_sent(&self) -> u64 {
        self.blocks_sent
    }

    /// Bytes of disk data that travel (the planned ranges).
    pub fn data_bytes(&self) -> u64 {
        self.ranges.total_bytes()
    }

    /// Blocks inside the map that a zero scan proved all-zero and dropped.
    pub fn zero_blocks_skipped(&self) -> u64 {
        self.zero_blocks_skipped
    }

    /// Length of block `index` in the virtual disk (short for the last).
    pub fn block_len(&self, index: u64) -> u64 {
        let offset = index.saturating_mul(BLOCK_SIZE);
        self.size.saturating_sub(offset).min(BLOCK_SIZE)
    }

    /// The blocks that travel, in increasing order.
    pub fn blocks(&self) -> Blocks<'_> {
        Blocks {
            plan: self,
            cursor: BlockCursor::default(),
        }
    }

    /// The planned ranges inside `block`, clipped to it, disk-relative.
    pub fn ranges_in(&self, block: &PlannedBlock) -> impl Iterator<Item = Extent> + '_ {
        let range = Extent::new(block.offset, block.len);
        self.ranges
            .extents()
            .get(block.first_extent..)
            .unwrap_or_default()
            .iter()
            .take_while(move |e| e.offset < range.end())
            .filter_map(move |e| e.intersect(&range))
    }
}

/// Position in a plan's blocks, kept apart from the plan so that a stream
/// owning its plan can walk it without borrowing itself.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BlockCursor {
    extent: usize,
    next_block: u64,
}

impl BlockCursor {
    pub(crate) fn next(&mut self, plan: &BlockPlan) -> Option<PlannedBlock> {
        loop {
            let e = plan.ranges.extents().get(self.extent)?;
            let first = (e.offset / BLOCK_SIZE).max(self.next_block);
            let last = (e.end() - 1) / BLOCK_SIZE;
            if first > last {
                self.extent += 1;
                continue;
            }
            // Every earlier extent ends before block `first`, so the current
            // extent is the first one that overlaps it.
            self.next_block = first + 1;
            return Some(PlannedBlock {
                index: first,
                offset: first * BLOCK_SIZE,
                len: plan.block_len(first),
                first_extent: self.extent,
            });
        }
    }
}

/// Iterator over the blocks of a plan, in increasing order.
#[derive(Debug)]
pub struct Blocks<'a> {
    plan: &'a BlockPlan,
    cursor: BlockCursor,
}

impl Iterator for Blocks<'_> {
    type Item = PlannedBlock;
    fn next(&mut self) -> Option<PlannedBlock> {
        self.cursor.next(self.plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn map(v: &[(u64, u64)]) -> ExtentMap {
        ExtentMap::from_unsorted(v.iter().map(|&(o, l)| Extent::new(o, l)).collect())
    }

    fn indices(plan: &BlockPlan) -> Vec<u64> {
        plan.blocks().map(|b| b.index).collect()
    }

    #[test]
    fn blocks_follow_the_map() {
        let m = map(&[(100, 10), (3 * MIB, 2 * MIB), (9 * MIB - 512, 1024)]);
        let plan = BlockPlan::full(10 * MIB + 512, &m);
        assert_eq!(indices(&plan), vec![0, 1, 2, 4]);
        assert_eq!(plan.blocks_sent(), 4);
        assert_eq!(plan.block_count(), 6);
        let b0 = plan.blocks().next().unwrap();
        assert_eq!(
            plan.ranges_in(&b0).collect::<Vec<_>>(),
            vec![Extent::new(0, 512)]
        );
        let b4 = plan.blocks().last().unwrap();
        assert_eq!(
            plan.ranges_in(&b4).collect::<Vec<_>>(),
            vec![Extent::new(9 * MIB - 512, 1024)]
        );
    }

    #[test]
    fn size_rounds_up_to_a_sector_and_clips_the_map() {
        let plan = BlockPlan::full(1000, &map(&[(0, 1 << 40)]));
        assert_eq!(plan.size(), 1024);
        assert_eq!(plan.data_bytes(), 1024);
        assert_eq!(plan.block_len(0), 1024);
    }

    #[test]
    fn restricted_to_removes_holes_but_keeps_sectors_whole() {
        let plan = BlockPlan::full(8 * MIB, &map(&[(0, 8 * MIB)]));
        let data = map(&[(4096, 100), (5 * MIB, MIB)]);
        let plan = plan.restricted_to(&data);
        assert_eq!(
            plan.ranges().extents(),
            &[Extent::new(4096, 512), Extent::new(5 * MIB, MIB)]
        );
        assert_eq!(indices(&plan), vec![0, 2]);
    }

    #[test]
    fn delta_blocks_ignores_duplicates_and_blocks_past_the_end() {
        let plan = BlockPlan::delta_blocks(5 * MIB, [2, 0, 2, 7, u64::MAX]);
        assert_eq!(indices(&plan), vec![0, 2]);
        assert_eq!(plan.data_bytes(), 2 * MIB + MIB);
        assert_eq!(plan.kind(), PlanKind::Delta);
    }
}
