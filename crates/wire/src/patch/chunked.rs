//! Patching chunked raw: the changed ranges become frames appended before
//! the terminator; a later frame wins, as it does when XAPI applies them.

use std::fs::File;
use std::os::unix::fs::FileExt;

use extents::{Extent, ExtentMap, ReadAt};

use super::{block_len, by_block, io_err, read_view, PatchReport};
use crate::chunked::FRAME_HEADER;
use crate::hash::block_hash;
use crate::{WireError, BLOCK_SIZE};

/// Touched blocks rebuilt per pass over the frames (128 MiB of buffers).
const BATCH: usize = 64;

fn bad(reason: impl Into<String>) -> WireError {
    WireError::BadImage {
        format: "chunked raw",
        reason: reason.into(),
    }
}

fn header(offset: u64, len: u32) -> [u8; FRAME_HEADER as usize] {
    let mut h = [0u8; FRAME_HEADER as usize];
    h[..8].copy_from_slice(&offset.to_le_bytes());
    h[8..].copy_from_slice(&len.to_le_bytes());
    h
}

pub(super) fn patch(
    f: &File,
    size: u64,
    changed: &ExtentMap,
    view: &dyn ReadAt,
) -> Result<PatchReport, WireError> {
    let len = f
        .metadata()
        .map_err(|e| io_err("reading the image's length", e))?
        .len();
    let mut tail = [0u8; FRAME_HEADER as usize];
    if len < FRAME_HEADER {
        return Err(bad("shorter than a terminator"));
    }
    f.read_exact_at(&mut tail, len - FRAME_HEADER)
        .map_err(|e| io_err("reading the terminator", e))?;
    if tail.iter().any(|&b| b != 0) {
        return Err(bad(
            "it does not end with a terminator (an unfinished stream?)",
        ));
    }
    let blocks = by_block(changed);
    let mut at = len - FRAME_HEADER;
    for (_, ranges) in &blocks {
        for r in ranges {
            let data = read_view(view, *r)?;
            // Inside one block: at most 2 MiB.
            f.write_all_at(&header(r.offset, r.len as u32), at)
                .and_then(|()| f.write_all_at(&data, at + FRAME_HEADER))
                .map_err(|e| io_err(format!("appending a frame at byte {at}"), e))?;
            at += FRAME_HEADER + r.len;
        }
    }
    f.write_all_at(&header(0, 0), at)
        .map_err(|e| io_err("writing the terminator", e))?;
    let file_len = at + FRAME_HEADER;
    f.set_len(file_len)
        .map_err(|e| io_err("setting the image's length", e))?;

    let indices: Vec<u64> = blocks.iter().map(|(i, _)| *i).collect();
    let mut block_hashes = Vec::new();
    for batch in indices.chunks(BATCH) {
        block_hashes.extend(rebuild(f, size, batch, file_len)?);
    }
    Ok(PatchReport {
        blocks_patched: indices.len() as u64,
        file_len,
        block_hashes,
        ..PatchReport::default()
    })
}

/// The blocks' contents after applying every frame in order, hashed.
fn rebuild(
    f: &File,
    size: u64,
    blocks: &[u64],
    file_len: u64,
) -> Result<Vec<(u64, [u8; 32])>, WireError> {
    let mut bufs: Vec<Vec<u8>> = blocks
        .iter()
        .map(|&i| vec![0u8; block_len(size, i) as usize])
        .collect();
    let mut at = 0u64;
    loop {
        let mut h = [0u8; FRAME_HEADER as usize];
        f.read_exact_at(&mut h, at)
            .map_err(|e| io_err(format!("reading the frame header at byte {at}"), e))?;
        let offset = u64::from_le_bytes(h[..8].try_into().unwrap_or_default());
        let len = u64::from(u32::from_le_bytes(h[8..].try_into().unwrap_or_default()));
        if len == 0 && offset == 0 {
            break;
        }
        let data_at = at + FRAME_HEADER;
        if data_at + len > file_len {
            return Err(bad(format!("the frame at byte {at} runs past the end")));
        }
        let frame = Extent::new(offset, len);
        for (k, &i) in blocks.iter().enumerate() {
            let block = Extent::new(i * BLOCK_SIZE, bufs[k].len() as u64);
            if let Some(x) = frame.intersect(&block) {
                let rel = (x.offset - block.offset) as usize;
                f.read_exact_at(
                    &mut bufs[k][rel..rel + x.len as usize],
                    data_at + (x.offset - offset),
                )
                .map_err(|e| io_err(format!("reading the frame at byte {at}"), e))?;
            }
        }
        at = data_at + len;
    }
    Ok(blocks
        .iter()
        .zip(&bufs)
        .map(|(&i, b)| (i, block_hash(b)))
        .collect())
}
