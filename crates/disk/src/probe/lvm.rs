//! LVM2 physical volumes: a "LABELONE" label in one of the first four
//! sectors, pointing at the PV header that holds the PV UUID.

use std::io;

use extents::ReadAt;

use super::raw::{self, le32, le64};
use super::Signature;
use crate::content::ContentKind;

const LABEL_SECTORS: u64 = 4;
const SECTOR: usize = 512;

pub fn probe(vol: &dyn ReadAt) -> io::Result<Option<Signature>> {
    let Some(head) = raw::read(vol, 0, SECTOR * LABEL_SECTORS as usize)? else {
        return Ok(None);
    };
    for sector in 0..LABEL_SECTORS {
        let at = sector as usize * SECTOR;
        if let Some(uuid) = raw::bytes(&head, at, SECTOR).and_then(|label| parse(label, sector)) {
            return Ok(Some(
                Signature::new(ContentKind::LvmPv, Some(uuid), None).version("LVM2 001"),
            ));
        }
    }
    Ok(None)
}

/// The PV UUID of a valid label found in `sector`.
fn parse(label: &[u8], sector: u64) -> Option<String> {
    if !raw::has(label, 0, b"LABELONE") || !raw::has(label, 24, b"LVM2 001") {
        return None;
    }
    if le64(label, 8)? != sector || lvm_crc(raw::bytes(label, 20, SECTOR - 20)?) != le32(label, 16)?
    {
        return None;
    }
    let header = usize::try_from(le32(label, 20)?).ok()?;
    let id = raw::bytes(label, header, 32)?;
    if !id.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    // LVM prints its 32-character ids in groups of 6-4-4-4-4-4-6.
    let groups = [6, 4, 4, 4, 4, 4, 6];
    let mut out = String::with_capacity(38);
    let mut pos = 0;
    for (i, len) in groups.into_iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        out.push_str(&String::from_utf8_lossy(raw::bytes(id, pos, len)?));
        pos += len;
    }
    Some(out)
}

/// LVM's label checksum: a reflected CRC-32 seeded with 0xf597a6cf and no
/// final inversion.
fn lvm_crc(data: &[u8]) -> u32 {
    let mut crc: u32 = 0xf597_a6cf;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    crc
}
