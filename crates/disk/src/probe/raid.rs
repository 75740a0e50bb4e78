//! Linux md RAID members: superblock 0.90 (64 KiB-aligned, at the end),
//! 1.0 (at the end), 1.1 (at the start) and 1.2 (4 KiB from the start).

use std::io;

use extents::ReadAt;

use super::raw::{self, be32, le32, le64};
use super::Signature;
use crate::content::ContentKind;

const MAGIC: u32 = 0xa92b_4efc;
const RESERVED: u64 = 0x10000;

pub fn probe(vol: &dyn ReadAt) -> io::Result<Option<Signature>> {
    let size = vol.size();
    if size > RESERVED {
        let at = (size & !(RESERVED - 1)) - RESERVED;
        if let Some(mut sig) = version0(vol, at)? {
            sig.at_end = true;
            return Ok(Some(sig));
        }
        let at = (size & !0xFFF) - 0x2000;
        if let Some(mut sig) = version1(vol, at, "1.0")? {
            sig.at_end = true;
            return Ok(Some(sig));
        }
    }
    if let Some(sig) = version1(vol, 0, "1.1")? {
        return Ok(Some(sig));
    }
    version1(vol, 0x1000, "1.2")
}

fn version0(vol: &dyn ReadAt, at: u64) -> io::Result<Option<Signature>> {
    let Some(sb) = raw::read(vol, at, 64)? else {
        return Ok(None);
    };
    // Version 0.90 is written in the host's byte order.
    let word: fn(&[u8], usize) -> Option<u32> = if le32(&sb, 0) == Some(MAGIC) {
        le32
    } else if be32(&sb, 0) == Some(MAGIC) {
        be32
    } else {
        return Ok(None);
    };
    let field = |i: usize| word(&sb, i * 4).unwrap_or(0);
    let (major, minor, patch) = (field(1), field(2), field(3));
    let used = u64::from(field(8)) << 10;
    if vol.size() < used.saturating_add(RESERVED) || at < used {
        return Ok(None);
    }
    // blkid's UUID: the four set_uuid words, each written big-endian.
    let mut uuid = [0u8; 16];
    let words = if minor >= 90 {
        [field(5), field(13), field(14), field(15)]
    } else {
        [field(5), 0, 0, 0]
    };
    for (chunk, w) in uuid.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&w.to_be_bytes());
    }
    let sig = Signature::new(ContentKind::LinuxRaid, raw::uuid(&uuid, 0), None);
    Ok(Some(sig.version(format!("{major}.{minor}.{patch}"))))
}

fn version1(vol: &dyn ReadAt, at: u64, version: &str) -> io::Result<Option<Signature>> {
    let Some(sb) = raw::read(vol, at, 256)? else {
        return Ok(None);
    };
    if le32(&sb, 0) != Some(MAGIC) || le32(&sb, 4) != Some(1) || le64(&sb, 144) != Some(at >> 9) {
        return Ok(None);
    }
    let sig = Signature::new(
        ContentKind::LinuxRaid,
        raw::uuid(&sb, 16),
        raw::label(&sb, 32, 32),
    );
    Ok(Some(sig.version(version)))
}
