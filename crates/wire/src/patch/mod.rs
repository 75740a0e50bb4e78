//! Applying changed byte ranges to an image this crate wrote (a fix-up
//! delivered onto a `dir:` target): VHD blocks are rewritten in place or
//! appended; chunked raw gets more frames before its terminator.

mod chunked;
mod vhd;

use std::fs::File;
use std::io;

use extents::{Extent, ExtentMap, ReadAt};

use crate::hash::Hash;
use crate::{Format, WireError, BLOCK_SIZE, SECTOR};

/// What a patch did to the image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PatchReport {
    /// Blocks that were already in the image and were rewritten.
    pub blocks_patched: u64,
    /// Blocks the image did not hold (they read as zeros) and now does.
    pub blocks_added: u64,
    /// Bytes of disk data written (the changed ranges, sector-aligned).
    pub data_bytes: u64,
    /// Length of the image file afterwards.
    pub file_len: u64,
    /// SHA-256 of every touched block as the patched image now reads, in
    /// block order (the last block short), for the manifest.
    pub block_hashes: Vec<(u64, Hash)>,
}

/// Writes `view`'s bytes at the `changed` ranges (widened to whole sectors)
/// into `image`, a `format` stream written by [`crate::EncodedStream`] of
/// a disk of `view.size()` bytes.
pub fn patch_image(
    image: &File,
    format: Format,
    changed: &ExtentMap,
    view: &dyn ReadAt,
) -> Result<PatchReport, WireError> {
    let size = view.size();
    let changed = changed.aligned_out(SECTOR).clip(Extent::new(0, size));
    let mut report = match format {
        Format::Vhd => vhd::patch(image, size, &changed, view)?,
        Format::RawChunked => chunked::patch(image, size, &changed, view)?,
    };
    report.data_bytes = changed.total_bytes();
    image
        .sync_all()
        .map_err(|source| io_err("syncing the image", source))?;
    Ok(report)
}

/// The changed ranges grouped by block: `(block index, ranges inside it)`.
fn by_block(changed: &ExtentMap) -> Vec<(u64, Vec<Extent>)> {
    let mut out: Vec<(u64, Vec<Extent>)> = Vec::new();
    for e in changed {
        let mut at = e.offset;
        let end = e.offset + e.len;
        while at < end {
            let index = at / BLOCK_SIZE;
            let stop = ((index + 1) * BLOCK_SIZE).min(end);
            let piece = Extent::new(at, stop - at);
            match out.last_mut() {
                Some((i, v)) if *i == index => v.push(piece),
                _ => out.push((index, vec![piece])),
            }
            at = stop;
        }
    }
    out
}

fn block_len(size: u64, index: u64) -> u64 {
    (size - index * BLOCK_SIZE).min(BLOCK_SIZE)
}

fn io_err(what: impl Into<String>, source: io::Error) -> WireError {
    WireError::Patch {
        what: what.into(),
        source,
    }
}

fn read_view(view: &dyn ReadAt, r: Extent) -> Result<Vec<u8>, WireError> {
    view.read_vec(r.offset, r.len as usize)
        .map_err(|source| WireError::Read {
            block: r.offset / BLOCK_SIZE,
            offset: r.offset,
            len: r.len,
            source,
        })
}
