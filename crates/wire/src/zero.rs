//! The optional zero scan: reads every planned block once before encoding
//! and drops those whose planned bytes are all zero. It has to be a pass of
//! its own because the stream length is fixed before the first byte.

use std::sync::mpsc;
use std::thread;

use extents::{ExtentBuilder, ReadAt};
use serde::Serialize;

use crate::buffer::BlockBuf;
use crate::pipeline::{check_source, fill_block, recycle};
use crate::plan::{BlockCursor, BlockPlan, PlanKind};
use crate::WireError;

/// Buffers in flight between the scan's reader and its checker.
const SCAN_DEPTH: usize = 4;

/// What a zero scan read and found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ZeroScan {
    pub blocks_scanned: u64,
    pub bytes_read: u64,
    pub zero_blocks: u64,
}

impl BlockPlan {
    /// Reads every planned block from `source` and returns the plan without
    /// the blocks whose planned bytes are all zero.
    ///
    /// Only for [`PlanKind::Full`] plans: a skipped block is left to read as
    /// zeros on the target, which holds for a new file or a new VDI on a
    /// thin SR, but not for a thick LVM SR (whose new VDIs hold old bytes)
    /// nor for a delta onto existing data.
    pub fn without_zero_blocks(
        self,
        source: &dyn ReadAt,
    ) -> Result<(BlockPlan, ZeroScan), WireError> {
        if self.kind() != PlanKind::Full {
            return Err(WireError::ZeroSkipOnDelta);
        }
        let (free_tx, free_rx) = mpsc::sync_channel::<BlockBuf>(SCAN_DEPTH);
        let (filled_tx, filled_rx) = mpsc::sync_channel(SCAN_DEPTH);
        for _ in 0..SCAN_DEPTH {
            let _ = free_tx.try_send(BlockBuf::new());
        }
        let plan = &self;
        let mut scan = ZeroScan::default();
        let mut zero = ExtentBuilder::new();
        check_source(source, plan)?;
        let result = thread::scope(|s| {
            // Owned by this closure, so both ends close when it returns
            // (early too) and the reader stops before the scope joins it.
            let (free_tx, filled_rx) = (free_tx, filled_rx);
            s.spawn(move || {
                let mut cursor = BlockCursor::default();
                while let Some(block) = cursor.next(plan) {
                    let Ok(mut buf) = free_rx.recv() else { return };
                    let msg =
                        fill_block(source, plan, &block, buf.as_mut_slice()).map(|()| (block, buf));
                    let failed = msg.is_err();
                    if filled_tx.send(msg).is_err() || failed {
                        return;
                    }
                }
            });
            for msg in &filled_rx {
                let (block, buf) = msg?;
                scan.blocks_scanned += 1;
                scan.bytes_read += plan.ranges_in(&block).map(|r| r.len).sum::<u64>();
                if is_zero(&buf.as_slice()[..block.len as usize]) {
                    scan.zero_blocks += 1;
                    zero.push(block.offset, block.len);
                }
                recycle(&free_tx, buf);
            }
            Ok::<(), WireError>(())
        });
        result?;
        if scan.blocks_scanned != self.blocks_sent() {
            return Err(WireError::WorkerLost("zero scan reader"));
        }
        let count = scan.zero_blocks;
        Ok((self.without_block_set(&zero.build(), count), scan))
    }
}

/// Whether every byte is zero; ORs 4 KiB at a time, which vectorises.
pub(crate) fn is_zero(buf: &[u8]) -> bool {
    buf.chunks(4096)
        .all(|c| c.iter().fold(0u8, |acc, &b| acc | b) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BLOCK_SIZE;
    use extents::{Extent, ExtentMap};

    #[test]
    fn drops_only_all_zero_blocks() {
        let b = BLOCK_SIZE as usize;
        let mut disk = vec![0u8; 4 * b + 1024];
        disk[b + 100] = 1; // block 1: data
        disk[3 * b - 1] = 1; // block 2: data at its last byte
        disk[4 * b + 100] = 5; // block 4 (short): data, but outside the map
        disk[3 * b + 10] = 7; // block 3: data, but outside the map
        let map = ExtentMap::from_unsorted(vec![
            Extent::new(0, 4 * BLOCK_SIZE + 1024 - 512 * 3),
            Extent::new(4 * BLOCK_SIZE + 512, 512),
        ])
        .subtract(&ExtentMap::single(3 * BLOCK_SIZE, 512));
        let plan = BlockPlan::full(disk.len() as u64, &map);
        assert_eq!(plan.blocks_sent(), 5);
        let (plan, scan) = plan.without_zero_blocks(&disk).unwrap();
        assert_eq!(scan.blocks_scanned, 5);
        assert_eq!(scan.zero_blocks, 3, "blocks 0, 3 (byte outside map) and 4");
        let sent: Vec<u64> = plan.blocks().map(|b| b.index).collect();
        assert_eq!(sent, vec![1, 2]);
        assert_eq!(plan.zero_blocks_skipped(), 3);
    }

    #[test]
    fn refuses_delta_plans() {
        let disk = vec![0u8; 4096];
        let plan = BlockPlan::delta(4096, &ExtentMap::single(0, 4096));
        assert!(matches!(
            plan.without_zero_blocks(&disk),
            Err(WireError::ZeroSkipOnDelta)
        ));
    }

    struct Failing;
    impl ReadAt for Failing {
        fn read_at(&self, _: &mut [u8], offset: u64) -> std::io::Result<usize> {
            if offset >= 2 * BLOCK_SIZE {
                return Err(std::io::Error::other("medium error"));
            }
            Ok(0)
        }
        fn size(&self) -> u64 {
            8 * BLOCK_SIZE
        }
    }

    #[test]
    fn read_errors_and_short_sources_are_reported() {
        let plan = BlockPlan::full(
            8 * BLOCK_SIZE,
            &ExtentMap::single(2 * BLOCK_SIZE, 6 * BLOCK_SIZE),
        );
        let err = plan.clone().without_zero_blocks(&Failing).unwrap_err();
        assert!(matches!(err, WireError::Read { block: 2, .. }), "{err}");
        assert!(err.to_string().contains("medium error"));
        let small = vec![1u8; 1000];
        let err = plan.without_zero_blocks(&small).unwrap_err();
        assert!(matches!(err, WireError::SourceTooSmall { .. }), "{err}");
    }

    #[test]
    fn is_zero_sees_the_last_byte() {
        let mut v = vec![0u8; 10_000];
        assert!(is_zero(&v));
        v[9_999] = 1;
        assert!(!is_zero(&v));
    }
}
