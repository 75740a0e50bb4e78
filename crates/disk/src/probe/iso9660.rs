//! ISO 9660 (with Joliet): label from the primary volume descriptor, or the
//! Joliet one when it says more; blkid's UUID is the modification date.

use std::io;

use extents::ReadAt;

use super::raw::{self, u8_at};
use super::Signature;
use crate::content::ContentKind;

const FIRST_DESCRIPTOR: u64 = 0x8000;
const DESCRIPTOR: usize = 2048;
const MAX_DESCRIPTORS: u64 = 16;

pub fn probe(vol: &dyn ReadAt) -> io::Result<Option<Signature>> {
    let Some(pvd) = raw::read(vol, FIRST_DESCRIPTOR, DESCRIPTOR)? else {
        return Ok(None);
    };
    if !raw::has(&pvd, 1, b"CD001") {
        return Ok(None);
    }
    let uuid = date_uuid(&pvd, 830).or_else(|| date_uuid(&pvd, 813));
    let plain = raw::bytes(&pvd, 40, 32).unwrap_or_default().to_vec();
    let mut label = raw::label(&plain, 0, 32);
    for i in 1..MAX_DESCRIPTORS {
        let Some(vd) = raw::read(vol, FIRST_DESCRIPTOR + i * DESCRIPTOR as u64, DESCRIPTOR)? else {
            break;
        };
        match u8_at(&vd, 0) {
            Some(0xFF) | None => break,
            Some(2) if is_joliet(&vd) => {
                let joliet = raw::bytes(&vd, 40, 32).unwrap_or_default();
                if !same_text(&plain, joliet) {
                    label = raw::label_utf16(&vd, 40, 16, true);
                }
                break;
            }
            _ => {}
        }
    }
    Ok(Some(Signature::new(ContentKind::Iso9660, uuid, label)))
}

fn is_joliet(vd: &[u8]) -> bool {
    [b"%/@", b"%/C", b"%/E"]
        .iter()
        .any(|esc| raw::has(vd, 88, *esc))
}

/// Whether the UTF-16BE `utf16` spells the start of `ascii`.
fn same_text(ascii: &[u8], utf16: &[u8]) -> bool {
    utf16
        .chunks_exact(2)
        .zip(ascii)
        .all(|(pair, &a)| pair.first() == Some(&0) && pair.get(1) == Some(&a))
}

/// `YYYY-MM-DD-HH-MM-SS-CC` from a 17-byte volume date, unless it is unset.
fn date_uuid(vd: &[u8], offset: usize) -> Option<String> {
    let date = raw::bytes(vd, offset, 17)?;
    let digits = date.get(..16)?;
    if digits.iter().all(|&c| c == b'0') && date.get(16) == Some(&0) {
        return None;
    }
    let text = String::from_utf8_lossy(digits);
    let parts = [0..4, 4..6, 6..8, 8..10, 10..12, 12..14, 14..16];
    let fields: Vec<&str> = parts.into_iter().filter_map(|r| text.get(r)).collect();
    (fields.len() == 7).then(|| fields.join("-"))
}
