//! XAPI chunked raw: frames of a 12-byte little-endian header
//! `{u64 offset, u32 length}` followed by `length` bytes, ended by a header
//! of all zeros. One frame per planned range inside each block, so frames
//! never exceed 2 MiB and come in increasing offset.

use std::sync::Arc;

use crate::framing::{Framer, Piece};
use crate::plan::{BlockPlan, PlannedBlock};

/// Size of a frame header.
pub(crate) const FRAME_HEADER: u64 = 12;

pub(crate) struct ChunkedFramer {
    plan: Arc<BlockPlan>,
}

impl ChunkedFramer {
    pub(crate) fn new(plan: Arc<BlockPlan>) -> ChunkedFramer {
        ChunkedFramer { plan }
    }
}

fn header(offset: u64, len: u32) -> [u8; FRAME_HEADER as usize] {
    let mut h = [0u8; FRAME_HEADER as usize];
    h[..8].copy_from_slice(&offset.to_le_bytes());
    h[8..].copy_from_slice(&len.to_le_bytes());
    h
}

impl Framer for ChunkedFramer {
    fn prefix(&mut self, _meta: &mut Vec<u8>) -> bool {
        false
    }

    fn block(&mut self, block: &PlannedBlock, meta: &mut Vec<u8>, pieces: &mut Vec<Piece>) {
        for r in self.plan.ranges_in(block) {
            // A range inside one block is at most 2 MiB: it fits in a u32.
            let len = r.len as u32;
            let at = meta.len();
            meta.extend_from_slice(&header(r.offset, len));
            pieces.push(Piece::Meta(at..meta.len()));
            let rel = (r.offset - block.offset) as usize;
            pieces.push(Piece::Data(rel..rel + len as usize));
        }
    }

    fn suffix(&mut self, meta: &mut Vec<u8>) {
        meta.extend_from_slice(&header(0, 0));
    }
}

/// Every frame's header and data, plus the terminator.
pub(crate) fn stream_len(plan: &BlockPlan) -> u64 {
    let frames: u64 = plan
        .blocks()
        .map(|b| plan.ranges_in(&b).count() as u64)
        .sum();
    frames * FRAME_HEADER + plan.data_bytes() + FRAME_HEADER
}
