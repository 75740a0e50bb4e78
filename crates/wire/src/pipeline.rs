//! The reader stage: a thread that reads planned blocks ahead of their
//! consumer into a small pool of reusable buffers.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use extents::ReadAt;

use crate::buffer::BlockBuf;
use crate::plan::{BlockCursor, BlockPlan, PlannedBlock};
use crate::WireError;

/// Ranges closer than this are read with one call and the gap zeroed after:
/// one large read beats two small ones.
const COALESCE_GAP: u64 = 64 << 10;

/// A block read from the source: planned ranges hold source bytes,
/// everything else in the 2 MiB buffer is zero.
#[derive(Debug)]
pub(crate) struct Filled {
    pub block: PlannedBlock,
    pub buf: BlockBuf,
}

/// A worker thread, joined when dropped. Declare it after the channel ends
/// its thread waits on: fields drop in order, so the thread sees its channels
/// close and ends before the join.
#[derive(Debug)]
pub(crate) struct Worker<T>(Option<JoinHandle<T>>);

impl<T: Send + 'static> Worker<T> {
    pub(crate) fn spawn(
        name: &'static str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<Worker<T>, WireError> {
        thread::Builder::new()
            .name(format!("wire-{name}"))
            .spawn(f)
            .map(|h| Worker(Some(h)))
            .map_err(|source| WireError::Spawn { what: name, source })
    }
}

impl<T> Drop for Worker<T> {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.join();
        }
    }
}

/// The reader stage: the k-th block of the plan arrives on lane
/// `k % lanes.len()` (so that several consumers can share the work and the
/// order is kept by taking from the lanes in turn); buffers go back through
/// `free`.
#[derive(Debug)]
pub(crate) struct Reader {
    pub lanes: Vec<Receiver<Result<Filled, WireError>>>,
    pub free: SyncSender<BlockBuf>,
    pub worker: Worker<()>,
}

impl Reader {
    /// Starts reading with `depth` buffers (at least 2) in flight, dealt to
    /// `lanes` lanes (at least 1).
    pub(crate) fn start(
        source: Arc<dyn ReadAt>,
        plan: Arc<BlockPlan>,
        depth: usize,
        lanes: usize,
    ) -> Result<Reader, WireError> {
        let depth = depth.max(2);
        let (free_tx, free_rx) = mpsc::sync_channel::<BlockBuf>(depth);
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..lanes.max(1)).map(|_| mpsc::sync_channel(depth)).unzip();
        for _ in 0..depth {
            // The channel has room for every buffer, so this never blocks.
            let _ = free_tx.try_send(BlockBuf::new());
        }
        let worker = Worker::spawn("reader", move || {
            read_blocks(&*source, &plan, &free_rx, &senders)
        })?;
        Ok(Reader {
            lanes: receivers,
            free: free_tx,
            worker,
        })
    }
}

/// Gives a buffer back to the reader. Buffers never outnumber the channel's
/// room; a full or closed channel only means the reader is done.
pub(crate) fn recycle(free: &SyncSender<BlockBuf>, buf: BlockBuf) {
    let _ = free.try_send(buf);
}

fn read_blocks(
    source: &dyn ReadAt,
    plan: &BlockPlan,
    free: &Receiver<BlockBuf>,
    lanes: &[SyncSender<Result<Filled, WireError>>],
) {
    let mut turn = lanes.iter().cycle();
    let Some(first) = turn.next() else {
        return;
    };
    if let Err(e) = check_source(source, plan) {
        let _ = first.send(Err(e));
        return;
    }
    let mut lane = first;
    let mut cursor = BlockCursor::default();
    while let Some(block) = cursor.next(plan) {
        let Ok(mut buf) = free.recv() else {
            return; // the consumer is gone
        };
        let result = fill_block(source, plan, &block, buf.as_mut_slice());
        let msg = result.map(|()| Filled { block, buf });
        let failed = msg.is_err();
        if lane.send(msg).is_err() || failed {
            return;
        }
        lane = turn.next().unwrap_or(first);
    }
}

/// A plan may reach past the source end only by the tail of its last sector.
pub(crate) fn check_source(source: &dyn ReadAt, plan: &BlockPlan) -> Result<(), WireError> {
    if plan.size() > crate::plan::virtual_size(source.size()) {
        return Err(WireError::SourceTooSmall {
            plan_size: plan.size(),
            source_size: source.size(),
        });
    }
    Ok(())
}

/// Reads the planned ranges of `block` into `buf` and zeroes the rest.
pub(crate) fn fill_block(
    source: &dyn ReadAt,
    plan: &BlockPlan,
    block: &PlannedBlock,
    buf: &mut [u8],
) -> Result<(), WireError> {
    let mut run: Option<(u64, u64)> = None;
    for r in plan.ranges_in(block) {
        run = match run {
            Some((start, end)) if r.offset - end <= COALESCE_GAP => Some((start, r.end())),
            Some(prev) => {
                read_run(source, block, prev, buf)?;
                Some((r.offset, r.end()))
            }
            None => Some((r.offset, r.end())),
        };
    }
    if let Some(last) = run {
        read_run(source, block, last, buf)?;
    }
    // Zero everything outside the planned ranges: gaps read by coalescing,
    // stale bytes of the previous block, the tail past the disk end.
    let mut pos = 0usize;
    for r in plan.ranges_in(block) {
        let start = (r.offset - block.offset) as usize;
        buf[pos..start].fill(0);
        pos = start + r.len as usize;
    }
    buf[pos..].fill(0);
    Ok(())
}

/// Reads disk bytes `[start, end)` into their place in the block buffer.
/// Bytes past the source end (the tail of a last partial sector) are zero.
fn read_run(
    source: &dyn ReadAt,
    block: &PlannedBlock,
    (start, end): (u64, u64),
    buf: &mut [u8],
) -> Result<(), WireError> {
    let readable_end = end.min(source.size()).max(start);
    let rel = (start - block.offset) as usize;
    let n = (readable_end - start) as usize;
    source
        .read_exact_at(&mut buf[rel..rel + n], start)
        .map_err(|e| WireError::Read {
            block: block.index,
            offset: start,
            len: end - start,
            source: e,
        })?;
    buf[rel + n..(end - block.offset) as usize].fill(0);
    Ok(())
}
