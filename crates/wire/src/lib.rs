//! Encodings of a sparse disk onto a byte stream: streaming dynamic VHD and
//! XAPI chunked raw, both with an exact length known before the first byte,
//! plus SHA-256 block manifests.
//!
//! The flow: a [`BlockPlan`] says which 2 MiB blocks travel and which
//! sector ranges of each; [`EncodedStream`] reads them from an
//! [`extents::ReadAt`] on a reader thread, hashes them on a second thread and
//! frames them as the chosen [`Format`] for whoever reads the stream (an
//! HTTP body, a file). This crate never opens a device: the caller hands in
//! a reader and a map.
//!
//! ```
//! use extents::ExtentMap;
//! use xenlift_wire::{BlockPlan, EncodedStream, Format};
//!
//! let disk = vec![7u8; 8 << 20]; // any extents::ReadAt: a SourceDisk, a Window...
//! let map = ExtentMap::single(0, 3 << 20); // the bytes that must travel
//! let plan = BlockPlan::full(disk.len() as u64, &map);
//! // Optional, and only onto a target that reads zeros where nothing is written:
//! let (plan, _scan) = plan.without_zero_blocks(&disk)?;
//! let mut stream = EncodedStream::start(disk, plan, Format::Vhd)?;
//! let content_length = stream.length(); // known before the first byte
//! let outcome = stream.outcome().expect("first call");
//! // Hand `stream` (a Read + Send) and `content_length` to the HTTP client.
//! let sent = std::io::copy(&mut stream, &mut std::io::sink())?;
//! assert_eq!(sent, content_length);
//! let report = outcome.wait()?; // block hashes, disk hash, counts
//! assert_eq!(report.blocks_sent, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A delta (fix-up, warm pass, resume onto data that is not known to be
//! zero) is the same stream over another plan:
//! `BlockPlan::delta_blocks(size, [3, 17, 18])` or
//! `BlockPlan::delta(size, &changed_ranges)`.

mod buffer;
mod chunked;
mod error;
mod file;
mod format;
mod framing;
mod hash;
mod manifest;
mod patch;
mod pipeline;
mod plan;
mod stream;
mod vhd;
mod zero;

pub use error::WireError;
pub use format::Format;
pub use hash::{disk_hash_from_blocks, zero_block_hash};
pub use manifest::{BlockHashes, StreamReport};
pub use patch::{patch_image, PatchReport};
pub use plan::{BlockPlan, Blocks, PlanKind, PlannedBlock};
pub use stream::{EncodedStream, StreamOutcome};
pub use vhd::VHD_MAX_SIZE;
pub use zero::ZeroScan;

/// Exact length of `plan` encoded as `format`, or why it cannot be (a VHD
/// over 2040 GiB). Cheap: walks the plan, reads nothing.
pub fn stream_length(plan: &BlockPlan, format: Format) -> Result<u64, WireError> {
    framing::stream_len(format, plan)
}

/// `(block index, stream offset just past the block)` of every sent block
/// of `plan` encoded as `format`, in stream order: a target that received
/// `n` bytes holds the blocks ending at or before `n`. Reads nothing.
pub fn block_ends(plan: &BlockPlan, format: Format) -> impl Iterator<Item = (u64, u64)> + '_ {
    framing::block_ends(format, plan)
}

/// Size of a virtual block: the VHD block size and the unit of hashing,
/// zero detection and delta plans.
pub const BLOCK_SIZE: u64 = 2 << 20;

/// Sector size: every offset and length on the wire is a multiple of it.
pub const SECTOR: u64 = extents::SECTOR;
