//! Patching a dynamic VHD: changed sectors go into the block's data and
//! its sector bitmap; a block the image lacks is appended where the footer
//! was (BAT entry set), and the footer moves behind it.

use std::fs::File;
use std::os::unix::fs::FileExt;

use extents::{ExtentMap, ReadAt};

use super::{block_len, by_block, io_err, read_view, PatchReport};
use crate::hash::block_hash;
use crate::{WireError, BLOCK_SIZE, SECTOR};

const FOOTER: u64 = 512;
const BITMAP: u64 = 512;
const ABSENT: u32 = u32::MAX;

fn bad(reason: impl Into<String>) -> WireError {
    WireError::BadImage {
        format: "VHD",
        reason: reason.into(),
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

fn read(f: &File, at: u64, len: u64, what: &str) -> Result<Vec<u8>, WireError> {
    let mut buf = vec![0u8; len as usize];
    f.read_exact_at(&mut buf, at)
        .map_err(|e| io_err(format!("reading the {what} at byte {at}"), e))?;
    Ok(buf)
}

fn write(f: &File, at: u64, data: &[u8], what: &str) -> Result<(), WireError> {
    f.write_all_at(data, at)
        .map_err(|e| io_err(format!("writing the {what} at byte {at}"), e))
}

struct Layout {
    footer: Vec<u8>,
    table: u64,
    bat: Vec<u32>,
}

fn layout(f: &File, size: u64) -> Result<(Layout, u64), WireError> {
    let len = f
        .metadata()
        .map_err(|e| io_err("reading the image's length", e))?
        .len();
    if len < 3 * FOOTER || len % SECTOR != 0 {
        return Err(bad(format!("{len} bytes is not a dynamic VHD's length")));
    }
    let footer = read(f, len - FOOTER, FOOTER, "footer")?;
    if &footer[..8] != b"conectix" || be32(&footer, 60) != 3 {
        return Err(bad("no dynamic VHD footer at the end"));
    }
    if be64(&footer, 48) != size {
        return Err(bad(format!(
            "the VHD holds {} bytes, the disk {size}",
            be64(&footer, 48)
        )));
    }
    let header = read(f, be64(&footer, 16), 1024, "dynamic header")?;
    if &header[..8] != b"cxsparse" || u64::from(be32(&header, 32)) != BLOCK_SIZE {
        return Err(bad("no dynamic header with 2 MiB blocks"));
    }
    let table = be64(&header, 16);
    let entries = u64::from(be32(&header, 28));
    if entries != size.div_ceil(BLOCK_SIZE) {
        return Err(bad(format!("{entries} BAT entries for {size} bytes")));
    }
    let raw = read(f, table, entries * 4, "BAT")?;
    let bat = raw.chunks_exact(4).map(|c| be32(c, 0)).collect();
    Ok((Layout { footer, table, bat }, len))
}

pub(super) fn patch(
    f: &File,
    size: u64,
    changed: &ExtentMap,
    view: &dyn ReadAt,
) -> Result<PatchReport, WireError> {
    let (mut vhd, len) = layout(f, size)?;
    let mut end = len - FOOTER;
    let mut report = PatchReport::default();
    for (index, ranges) in by_block(changed) {
        let start = index * BLOCK_SIZE;
        let entry = vhd.bat[index as usize];
        let at = if entry == ABSENT {
            // Zeros up to the block's end (sparse), then data and bitmap.
            f.set_len(end + BITMAP + BLOCK_SIZE)
                .map_err(|e| io_err("extending the image", e))?;
            write(f, end, &[0u8; BITMAP as usize], "sector bitmap")?;
            let sector = u32::try_from(end / SECTOR)
                .ok()
                .filter(|&s| s != ABSENT)
                .ok_or_else(|| bad("the image would outgrow the BAT's sector numbers"))?;
            vhd.bat[index as usize] = sector;
            report.blocks_added += 1;
            let at = end;
            end += BITMAP + BLOCK_SIZE;
            at
        } else {
            report.blocks_patched += 1;
            u64::from(entry) * SECTOR
        };
        let mut bitmap = read(f, at, BITMAP, "sector bitmap")?;
        for r in &ranges {
            let data = read_view(view, *r)?;
            write(f, at + BITMAP + (r.offset - start), &data, "block data")?;
            for s in (r.offset - start) / SECTOR..(r.offset - start + r.len) / SECTOR {
                bitmap[(s / 8) as usize] |= 0x80 >> (s % 8);
            }
        }
        write(f, at, &bitmap, "sector bitmap")?;
        if entry == ABSENT {
            let e = vhd.bat[index as usize].to_be_bytes();
            write(f, vhd.table + index * 4, &e, "BAT entry")?;
        }
        report
            .block_hashes
            .push((index, hash_block(f, at, block_len(size, index))?));
    }
    if end != len - FOOTER {
        write(f, end, &vhd.footer, "footer")?;
        f.set_len(end + FOOTER)
            .map_err(|e| io_err("setting the image's length", e))?;
    }
    report.file_len = end + FOOTER;
    Ok(report)
}

/// The block as a reader of the image sees it: sectors without their
/// bitmap bit read as zeros.
fn hash_block(f: &File, at: u64, len: u64) -> Result<[u8; 32], WireError> {
    let bitmap = read(f, at, BITMAP, "sector bitmap")?;
    let mut data = read(f, at + BITMAP, len, "block data")?;
    for (s, sector) in data.chunks_mut(SECTOR as usize).enumerate() {
        if bitmap[s / 8] & (0x80 >> (s % 8)) == 0 {
            sector.fill(0);
        }
    }
    Ok(block_hash(&data))
}
