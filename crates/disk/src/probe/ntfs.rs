//! NTFS: the boot sector gives the serial number (blkid's UUID); the label
//! lives in the $Volume file, read with the `ntfs` crate.

use std::io;

use extents::ReadAt;

use super::raw::{self, le16, le64, u8_at};
use super::Signature;
use crate::content::ContentKind;
use crate::cursor::ReadAtCursor;

pub fn probe(vol: &dyn ReadAt) -> io::Result<Option<Signature>> {
    let Some(boot) = raw::read(vol, 0, 512)? else {
        return Ok(None);
    };
    let Some(serial) = parse(&boot) else {
        return Ok(None);
    };
    let uuid = (serial != 0).then(|| format!("{serial:016X}"));
    Ok(Some(Signature::new(
        ContentKind::Ntfs,
        uuid,
        volume_label(vol),
    )))
}

/// The serial number of a plausible NTFS boot sector.
pub(super) fn parse(b: &[u8]) -> Option<u64> {
    if !raw::has(b, 3, b"NTFS    ") {
        return None;
    }
    let sector = le16(b, 0x0B)?;
    let cluster = u8_at(b, 0x0D)?;
    let cluster_ok =
        cluster.is_power_of_two() || (0xF4..=0xFF).contains(&cluster) || cluster == 0x80;
    // FAT fields NTFS keeps at zero (reserved sectors, FAT count, sectors per FAT).
    let fat_fields_zero = le16(b, 0x0E)? == 0 && u8_at(b, 0x10)? == 0 && le16(b, 0x16)? == 0;
    let ok =
        sector.is_power_of_two() && (256..=4096).contains(&sector) && cluster_ok && fat_fields_zero;
    ok.then(|| le64(b, 0x48)).flatten()
}

/// The volume label, if the MFT can be read; a damaged MFT only loses the
/// label (the mapper will judge the volume).
fn volume_label(vol: &dyn ReadAt) -> Option<String> {
    let mut cursor = ReadAtCursor::new(vol);
    let fs = ntfs::Ntfs::new(&mut cursor).ok()?;
    let name = fs.volume_name(&mut cursor)?.ok()?;
    let text = name.name().to_string_lossy();
    (!text.is_empty()).then_some(text)
}
