//! The encoded stream: a `Read` of exact length over a plan, fed by a
//! reader thread and hasher threads through a small pool of 2 MiB buffers.
//!
//! ```text
//!                                  +-> [hasher 0] -+
//! source --read_at--> [reader] ----+               +--> stream.read()
//!    ^                 (block k to +-> [hasher 1] -+  (lanes in turn)  |
//!    |                  lane k % n)                                     |
//!    +----------------------- free buffers -----------------------------+
//! ```
//!
//! SHA-256 runs at under 2 GB/s on one core, slower than a fast NVMe disk
//! or the page cache, so each block is hashed on one of several lanes.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;

use extents::ReadAt;

use crate::buffer::BlockBuf;
use crate::framing::{framer, stream_len, Framer, Piece};
use crate::hash::{block_hash, DiskHasher, Hash};
use crate::manifest::StreamReport;
use crate::pipeline::{recycle, Filled, Reader, Worker};
use crate::plan::BlockPlan;
use crate::{Format, WireError};

/// Buffers in flight: enough to keep reader, hashers and writer busy at
/// once, 16 MiB in all. One reader thread on purpose: its reads are
/// sequential, so the kernel's readahead keeps the disk busy (two readers
/// taking alternate blocks measured twice as slow on a cold image).
const DEFAULT_BUFFERS: usize = 8;

/// Hash lanes at most: beyond the cores, more lanes only take buffers.
const MAX_HASH_LANES: usize = 4;

type Hashed = Result<(Filled, Hash), WireError>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Prefix,
    Blocks,
    Suffix,
    Done,
    Failed,
}

/// A wire encoding of a plan, of a length known before the first byte.
///
/// Read it (an HTTP body), or hand it a writer with [`EncodedStream::write_to`].
/// Dropping it early stops its threads.
pub struct EncodedStream {
    plan: Arc<BlockPlan>,
    format: Format,
    len: u64,
    pos: u64,
    progress: Arc<AtomicU64>,
    phase: Phase,
    framer: Box<dyn Framer>,
    meta: Vec<u8>,
    pieces: Vec<Piece>,
    piece: usize,
    piece_pos: usize,
    current: Option<BlockBuf>,
    blocks_seen: u64,
    last_index: Option<u64>,
    hashes: Vec<Hash>,
    disk_hasher: Option<DiskHasher>,
    outcome: Option<SyncSender<Result<StreamReport, WireError>>>,
    outcome_rx: Option<Receiver<Result<StreamReport, WireError>>>,
    report: Option<StreamReport>,
    // Channel ends before the workers: fields drop in order, so on drop the
    // threads see their channels close before they are joined.
    hashed: Vec<Receiver<Hashed>>,
    lane: usize,
    free: SyncSender<BlockBuf>,
    _hashers: Vec<Worker<()>>,
    _reader: Worker<()>,
}

impl std::fmt::Debug for EncodedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedStream")
            .field("format", &self.format)
            .field("len", &self.len)
            .field("pos", &self.pos)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

/// Receives a stream's report once its last byte was read, even after the
/// stream itself was handed to an HTTP client.
#[derive(Debug)]
pub struct StreamOutcome(Receiver<Result<StreamReport, WireError>>);

impl StreamOutcome {
    /// Waits for the stream to finish or be dropped.
    pub fn wait(self) -> Result<StreamReport, WireError> {
        self.0
            .recv()
            .unwrap_or(Err(WireError::Failed("the stream was dropped".into())))
    }
}

impl EncodedStream {
    /// Starts reading `plan` from `source` and encoding it as `format`.
    /// Fails before reading anything if the plan cannot travel in that
    /// format (a VHD over 2040 GiB).
    pub fn start<S: ReadAt + 'static>(
        source: S,
        plan: BlockPlan,
        format: Format,
    ) -> Result<EncodedStream, WireError> {
        EncodedStream::start_with_buffers(source, plan, format, DEFAULT_BUFFERS)
    }

    /// As [`EncodedStream::start`], with `buffers` 2 MiB buffers (at least 3).
    pub fn start_with_buffers<S: ReadAt + 'static>(
        source: S,
        plan: BlockPlan,
        format: Format,
        buffers: usize,
    ) -> Result<EncodedStream, WireError> {
        let plan = Arc::new(plan);
        let len = stream_len(format, &plan)?;
        let framer = framer(format, plan.clone())?;
        let source: Arc<dyn ReadAt> = Arc::new(source);
        let lanes = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_HASH_LANES);
        let reader = Reader::start(source, plan.clone(), buffers.max(3), lanes)?;
        let Reader {
            lanes: filled,
            free,
            worker: reader_worker,
        } = reader;
        let mut hashed = Vec::with_capacity(filled.len());
        let mut hashers = Vec::with_capacity(filled.len());
        for lane in filled {
            // As deep as the pool: a consumer that stalls for a moment (a
            // busy machine, a slow socket) finds blocks ready when it comes back.
            let (tx, rx) = mpsc::sync_channel(buffers.max(3));
            hashers.push(Worker::spawn("hasher", move || hash_blocks(&lane, &tx))?);
            hashed.push(rx);
        }
        let (outcome_tx, outcome_rx) = mpsc::sync_channel(1);
        // Reserved once: no allocation per block.
        let hashes = Vec::with_capacity(plan.blocks_sent() as usize);
        let disk_hasher = DiskHasher::new(plan.size());
        Ok(EncodedStream {
            plan,
            format,
            len,
            pos: 0,
            progress: Arc::new(AtomicU64::new(0)),
            phase: Phase::Prefix,
            framer,
            meta: Vec::with_capacity(64 << 10),
            pieces: Vec::with_capacity(16),
            piece: 0,
            piece_pos: 0,
            current: None,
            blocks_seen: 0,
            last_index: None,
            hashes,
            disk_hasher: Some(disk_hasher),
            outcome: Some(outcome_tx),
            outcome_rx: Some(outcome_rx),
            report: None,
            hashed,
            lane: 0,
            free,
            _hashers: hashers,
            _reader: reader_worker,
        })
    }

    /// Exact length in bytes (the upload's Content-Length).
    pub fn length(&self) -> u64 {
        self.len
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn plan(&self) -> &BlockPlan {
        &self.plan
    }

    /// Bytes handed out so far, readable from another thread (progress).
    pub fn progress(&self) -> Arc<AtomicU64> {
        self.progress.clone()
    }

    /// The receiver of the final report; call before handing the stream to
    /// an HTTP client. Only the first call returns it.
    pub fn outcome(&mut self) -> Option<StreamOutcome> {
        self.outcome_rx.take().map(StreamOutcome)
    }

    /// Writes the whole stream to `out`, block pieces straight from the
    /// buffers, and returns the report.
    pub fn write_to(mut self, out: &mut dyn Write) -> Result<StreamReport, WireError> {
        loop {
            let chunk = self.chunk();
            if !chunk.is_empty() {
                let n = chunk.len();
                out.write_all(chunk).map_err(|source| WireError::Write {
                    written: self.pos,
                    source,
                })?;
                self.consume(n);
                continue;
            }
            if !self.advance_or_fail()? {
                break;
            }
        }
        out.flush().map_err(|source| WireError::Write {
            written: self.pos,
            source,
        })?;
        self.report.take().ok_or(WireError::Failed(
            "the stream ended without a report".into(),
        ))
    }

    /// The unread rest of the current piece.
    fn chunk(&self) -> &[u8] {
        let bytes = match self.pieces.get(self.piece) {
            Some(Piece::Meta(r)) => self.meta.get(r.clone()),
            Some(Piece::Data(r)) => self
                .current
                .as_ref()
                .and_then(|b| b.as_slice().get(r.clone())),
            None => None,
        };
        bytes
            .and_then(|b| b.get(self.piece_pos..))
            .unwrap_or_default()
    }

    fn consume(&mut self, n: usize) {
        self.piece_pos += n;
        self.pos += n as u64;
        self.progress.store(self.pos, Ordering::Relaxed);
    }

    /// Like `advance`, but remembers a failure and tells the outcome.
    fn advance_or_fail(&mut self) -> Result<bool, WireError> {
        if self.phase == Phase::Failed {
            return Err(WireError::Failed("an earlier read failed".into()));
        }
        self.advance().inspect_err(|e| {
            self.phase = Phase::Failed;
            if let Some(tx) = self.outcome.take() {
                let _ = tx.try_send(Err(WireError::Failed(e.to_string())));
            }
        })
    }

    /// Loads the next pieces; false once the stream is complete.
    fn advance(&mut self) -> Result<bool, WireError> {
        self.piece += 1;
        self.piece_pos = 0;
        if self.piece < self.pieces.len() {
            return Ok(true);
        }
        self.meta.clear();
        self.pieces.clear();
        self.piece = 0;
        if let Some(buf) = self.current.take() {
            recycle(&self.free, buf);
        }
        loop {
            match self.phase {
                Phase::Prefix => {
                    if self.framer.prefix(&mut self.meta) {
                        self.pieces.push(Piece::Meta(0..self.meta.len()));
                        return Ok(true);
                    }
                    self.phase = Phase::Blocks;
                }
                Phase::Blocks => match self.next_hashed() {
                    Ok(hashed) => {
                        let (Filled { block, buf }, hash) = hashed?;
                        if self.last_index.is_some_and(|last| block.index <= last) {
                            return Err(WireError::WorkerLost("reader"));
                        }
                        self.last_index = Some(block.index);
                        self.blocks_seen += 1;
                        if let Some(disk) = &mut self.disk_hasher {
                            disk.add(block.index, &hash);
                        }
                        self.hashes.push(hash);
                        self.framer.block(&block, &mut self.meta, &mut self.pieces);
                        self.current = Some(buf);
                        return Ok(true);
                    }
                    Err(_) if self.blocks_seen == self.plan.blocks_sent() => {
                        self.phase = Phase::Suffix;
                    }
                    Err(_) => return Err(WireError::WorkerLost("reader or hasher")),
                },
                Phase::Suffix => {
                    self.framer.suffix(&mut self.meta);
                    self.pieces.push(Piece::Meta(0..self.meta.len()));
                    self.phase = Phase::Done;
                    return Ok(true);
                }
                Phase::Done => {
                    self.finish()?;
                    return Ok(false);
                }
                Phase::Failed => return Err(WireError::Failed("an earlier read failed".into())),
            }
        }
    }

    /// The next block in plan order: lanes are taken in turn, as the reader
    /// dealt them.
    fn next_hashed(&mut self) -> Result<Hashed, mpsc::RecvError> {
        let rx = self.hashed.get(self.lane).ok_or(mpsc::RecvError)?;
        let msg = rx.recv()?;
        self.lane = (self.lane + 1) % self.hashed.len();
        Ok(msg)
    }

    /// Checks the length promise and makes the report (once).
    fn finish(&mut self) -> Result<(), WireError> {
        if self.report.is_some() || self.outcome.is_none() {
            return Ok(());
        }
        if self.pos != self.len {
            return Err(WireError::Failed(format!(
                "encoded {} bytes but promised {}; this is a bug in xenlift",
                self.pos, self.len
            )));
        }
        let disk = self
            .disk_hasher
            .take()
            .ok_or(WireError::WorkerLost("hasher"))?
            .finish();
        let report = StreamReport::new(
            self.format,
            self.plan.clone(),
            self.len,
            std::mem::take(&mut self.hashes),
            disk,
        );
        if let Some(tx) = self.outcome.take() {
            let _ = tx.try_send(Ok(report.clone()));
        }
        self.report = Some(report);
        Ok(())
    }
}

impl Read for EncodedStream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            let chunk = self.chunk();
            if !chunk.is_empty() {
                let n = chunk.len().min(out.len());
                out[..n].copy_from_slice(&chunk[..n]);
                self.consume(n);
                return Ok(n);
            }
            if !self.advance_or_fail().map_err(WireError::into_io)? {
                return Ok(0);
            }
        }
    }
}

impl Drop for EncodedStream {
    fn drop(&mut self) {
        if let Some(tx) = self.outcome.take() {
            let _ = tx.try_send(Err(WireError::Unfinished {
                read: self.pos,
                len: self.len,
            }));
        }
    }
}

/// A hasher lane: hashes each block it is dealt as it passes to the consumer.
fn hash_blocks(filled: &Receiver<Result<Filled, WireError>>, hashed: &SyncSender<Hashed>) {
    for msg in filled {
        let msg = msg.map(|f| {
            let h = block_hash(&f.buf.as_slice()[..f.block.len as usize]);
            (f, h)
        });
        let failed = msg.is_err();
        if hashed.send(msg).is_err() || failed {
            break;
        }
    }
}
