//! btrfs: the primary superblock at 64 KiB.

use std::io;

use extents::ReadAt;

use super::raw::{self, le16, le32, le64};
use super::Signature;
use crate::content::ContentKind;

const SUPERBLOCK: u64 = 0x10000;
const CSUM_CRC32C: u16 = 0;

pub fn probe(vol: &dyn ReadAt) -> io::Result<Option<Signature>> {
    let Some(sb) = raw::read(vol, SUPERBLOCK, 4096)? else {
        return Ok(None);
    };
    Ok(parse(&sb))
}

fn parse(sb: &[u8]) -> Option<Signature> {
    if !raw::has(sb, 0x40, b"_BHRfS_M") || le64(sb, 0x30)? != SUPERBLOCK {
        return None;
    }
    // Other checksum types (xxhash, sha256, blake2) are taken on trust.
    if le16(sb, 0xC4)? == CSUM_CRC32C
        && raw::crc32c(raw::bytes(sb, 0x20, 4096 - 0x20)?) != le32(sb, 0)?
    {
        return None;
    }
    Some(Signature::new(
        ContentKind::Btrfs,
        raw::uuid(sb, 0x20),
        raw::label(sb, 0x12B, 256),
    ))
}
