//! Small independent decoders for the tests: they read streams the way the
//! receivers do (XAPI's VHD and chunked readers), checking every structural
//! promise on the way. They share no code with the encoder.
#![allow(dead_code, clippy::unwrap_used)]

use sha2::{Digest, Sha256};

const MIB2: usize = 2 << 20;

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}
fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}
fn sum_complement(b: &[u8], field: usize) -> u32 {
    let mut s = 0u32;
    for (i, &x) in b.iter().enumerate() {
        if !(field..field + 4).contains(&i) {
            s = s.wrapping_add(x as u32);
        }
    }
    !s
}

/// Applies a dynamic VHD stream onto `target` (whose length must be the
/// VHD's size) as XAPI does: only sectors whose bitmap bit is set are
/// written. Panics on any broken promise. Returns the sent block indices.
pub fn apply_vhd(stream: &[u8], target: &mut [u8]) -> Vec<u64> {
    assert!(stream.len() >= 1536 + 512, "stream too short");
    let footer = &stream[..512];
    assert_eq!(&footer[..8], b"conectix");
    assert_eq!(
        be32(footer, 64),
        sum_complement(footer, 64),
        "footer checksum"
    );
    assert_eq!(be32(footer, 12), 0x0001_0000, "format version");
    assert_eq!(be32(footer, 60), 3, "dynamic");
    assert_eq!(&footer[28..32], b"tap\0");
    let size = be64(footer, 48);
    assert_eq!(size, be64(footer, 40));
    assert_eq!(size % 512, 0);
    assert_eq!(size as usize, target.len(), "virtual size");
    let trailer = &stream[stream.len() - 512..];
    assert_eq!(trailer, footer, "trailing footer equals the first");

    let header_at = be64(footer, 16) as usize;
    let header = &stream[header_at..header_at + 1024];
    assert_eq!(&header[..8], b"cxsparse");
    assert_eq!(
        be32(header, 36),
        sum_complement(header, 36),
        "header checksum"
    );
    let table = be64(header, 16) as usize;
    let entries = be32(header, 28) as usize;
    assert_eq!(be32(header, 32) as usize, MIB2);
    assert_eq!(entries as u64, size.div_ceil(MIB2 as u64));
    let bat_len = (entries * 4).div_ceil(512) * 512;
    assert!(stream[table + entries * 4..table + bat_len]
        .iter()
        .all(|&b| b == 0xff));

    let mut present: Vec<(u64, usize)> = (0..entries)
        .map(|i| (be32(stream, table + 4 * i), i))
        .filter(|&(s, _)| s != u32::MAX)
        .map(|(s, i)| (s as u64 * 512, i))
        .collect();
    present.sort();
    let mut next_free = (table + bat_len) as u64;
    let mut last_index = None;
    for &(at, index) in &present {
        assert!(
            at >= next_free,
            "block {index} overlaps the one before or the BAT"
        );
        assert!(
            last_index < Some(index),
            "blocks in increasing virtual order"
        );
        last_index = Some(index);
        next_free = at + 512 + MIB2 as u64;
        let at = at as usize;
        let bitmap = &stream[at..at + 512];
        let data = &stream[at + 512..at + 512 + MIB2];
        let block_start = index * MIB2;
        let block_len = (target.len() - block_start).min(MIB2);
        for s in 0..MIB2 / 512 {
            let bit = bitmap[s / 8] & (0x80 >> (s % 8)) != 0;
            let sector = &data[s * 512..(s + 1) * 512];
            if s * 512 >= block_len {
                assert!(!bit, "bit set past the disk end");
            }
            if bit {
                target[block_start + s * 512..block_start + (s + 1) * 512].copy_from_slice(sector);
            } else {
                assert!(sector.iter().all(|&b| b == 0), "unmarked sector holds data");
            }
        }
    }
    assert_eq!(
        next_free.max((table + bat_len) as u64) + 512,
        stream.len() as u64,
        "nothing between the last block and the footer"
    );
    present.iter().map(|&(_, i)| i as u64).collect()
}

/// Applies an XAPI chunked raw stream onto `target`. Panics on broken
/// promises. Returns the frames as (offset, length).
pub fn apply_chunked(stream: &[u8], target: &mut [u8]) -> Vec<(u64, u32)> {
    let mut pos = 0usize;
    let mut frames = Vec::new();
    let mut next_min = 0u64;
    loop {
        let header = &stream[pos..pos + 12];
        pos += 12;
        let offset = u64::from_le_bytes(header[..8].try_into().unwrap());
        let len = u32::from_le_bytes(header[8..].try_into().unwrap());
        if offset == 0 && len == 0 {
            break;
        }
        assert!(len > 0, "empty frame");
        assert_eq!(offset % 512, 0, "frame offset aligned");
        assert_eq!(len % 512, 0, "frame length aligned");
        assert!(offset >= next_min, "frames increase and do not overlap");
        let end = offset as usize + len as usize;
        assert!(end <= target.len(), "frame past the disk end");
        target[offset as usize..end].copy_from_slice(&stream[pos..pos + len as usize]);
        pos += len as usize;
        next_min = end as u64;
        frames.push((offset, len));
    }
    assert_eq!(pos, stream.len(), "nothing after the terminator");
    frames
}

/// The disk hash as the README defines it, straight from an image.
pub fn disk_hash(image: &[u8]) -> [u8; 32] {
    let mut outer = Sha256::new();
    for block in image.chunks(MIB2) {
        outer.update(Sha256::digest(block));
    }
    outer.finalize().into()
}
