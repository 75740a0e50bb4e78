//! XFS: the primary superblock at byte 0, checked like the kernel's
//! verifier (geometry, and the CRC of version 5 superblocks).

use std::io;

use extents::ReadAt;

use super::raw::{self, be16, be32, be64, u8_at};
use super::Signature;
use crate::content::ContentKind;

pub fn probe(vol: &dyn ReadAt) -> io::Result<Option<Signature>> {
    let Some(head) = raw::read(vol, 0, 512)? else {
        return Ok(None);
    };
    if !raw::has(&head, 0, b"XFSB") {
        return Ok(None);
    }
    let sector = usize::from(be16(&head, 102).unwrap_or(0));
    if !sector.is_power_of_two() || !(512..=32768).contains(&sector) {
        return Ok(None);
    }
    let Some(sb) = raw::read(vol, 0, sector)? else {
        return Ok(None);
    };
    Ok(parse(&sb, sector))
}

fn parse(sb: &[u8], sector: usize) -> Option<Signature> {
    let block = be32(sb, 4)?;
    let inode = be16(sb, 104)?;
    let sane = block.is_power_of_two()
        && (512..=65536).contains(&block)
        && be64(sb, 8)? > 0
        && be32(sb, 88)? > 0
        && (256..=2048).contains(&inode)
        && 1u32.checked_shl(u32::from(u8_at(sb, 120)?)) == Some(block)
        && u8_at(sb, 126)? == 0; // mkfs finished
    if !sane {
        return None;
    }
    let version = be16(sb, 100)? & 0xF;
    if version == 5 {
        let mut copy = raw::bytes(sb, 0, sector)?.to_vec();
        let want = u32::from_le_bytes(raw::bytes(sb, 224, 4)?.try_into().ok()?);
        copy.get_mut(224..228)?.fill(0);
        if raw::crc32c(&copy) != want {
            return None;
        }
    }
    Some(Signature::new(
        ContentKind::Xfs,
        raw::uuid(sb, 32),
        raw::label(sb, 108, 12),
    ))
}
