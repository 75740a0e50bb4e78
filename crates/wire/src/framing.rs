//! What every wire format provides: bytes before the first block, the
//! framing of each block, bytes after the last, and the exact total length.

use std::ops::Range;
use std::sync::Arc;

use crate::plan::{BlockPlan, PlannedBlock};
use crate::{chunked, vhd, Format, WireError};

/// One piece of a block on the wire: bytes from the framer's metadata
/// buffer, or a range of the block's data buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    Meta(Range<usize>),
    Data(Range<usize>),
}

/// Frames a plan's blocks as one wire format. Metadata is appended to a
/// buffer the caller reuses, so framing allocates nothing per block.
pub(crate) trait Framer: Send {
    /// Appends the next part of what comes before the first block; returns
    /// false, appending nothing, once that is all out.
    fn prefix(&mut self, meta: &mut Vec<u8>) -> bool;

    /// Appends the pieces of `block` (whose data buffer holds the planned
    /// ranges, zeros elsewhere) in wire order.
    fn block(&mut self, block: &PlannedBlock, meta: &mut Vec<u8>, pieces: &mut Vec<Piece>);

    /// Appends what comes after the last block.
    fn suffix(&mut self, meta: &mut Vec<u8>);
}

/// A framer for `format`, or why the plan cannot travel in it.
pub(crate) fn framer(format: Format, plan: Arc<BlockPlan>) -> Result<Box<dyn Framer>, WireError> {
    Ok(match format {
        Format::Vhd => Box::new(vhd::VhdFramer::new(plan)?),
        Format::RawChunked => Box::new(chunked::ChunkedFramer::new(plan)),
    })
}

/// Exact stream length of `plan` in `format`.
pub(crate) fn stream_len(format: Format, plan: &BlockPlan) -> Result<u64, WireError> {
    match format {
        Format::Vhd => vhd::stream_len(plan),
        Format::RawChunked => Ok(chunked::stream_len(plan)),
    }
}

/// `(block index, stream offset just past the block's last byte)` of every
/// sent block, in stream order. A receiver that took `n` bytes holds every
/// block whose end is at most `n` (resume continues after them).
pub(crate) fn block_ends(
    format: Format,
    plan: &BlockPlan,
) -> impl Iterator<Item = (u64, u64)> + '_ {
    let mut at = match format {
        Format::Vhd => vhd::blocks_start(plan),
        Format::RawChunked => 0,
    };
    plan.blocks().map(move |b| {
        at += match format {
            Format::Vhd => vhd::BLOCK_ON_WIRE,
            Format::RawChunked => plan
                .ranges_in(&b)
                .map(|r| chunked::FRAME_HEADER + r.len)
                .sum(),
        };
        (b.index, at)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use extents::{Extent, ExtentMap};

    #[test]
    fn block_ends_stop_where_the_suffix_starts() {
        const MIB: u64 = 1 << 20;
        let map = ExtentMap::from_unsorted(vec![
            Extent::new(0, 4096),
            Extent::new(3 * MIB, 3 * MIB),
            Extent::new(9 * MIB + 512, 512),
        ]);
        let plan = BlockPlan::full(11 * MIB, &map);
        for (format, suffix) in [(Format::Vhd, 512), (Format::RawChunked, 12)] {
            let ends: Vec<_> = block_ends(format, &plan).collect();
            assert_eq!(
                ends.iter().map(|e| e.0).collect::<Vec<_>>(),
                vec![0, 1, 2, 4]
            );
            assert!(ends.windows(2).all(|w| w[0].1 < w[1].1));
            let last = ends.last().unwrap().1;
            assert_eq!(
                last + suffix,
                stream_len(format, &plan).unwrap(),
                "{format}"
            );
        }
    }
}
