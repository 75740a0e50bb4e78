//! BitLocker volumes (Vista, Windows 7 and later, To Go): a boot sector
//! with the "-FVE-FS-" or "MSWIN4.1" OEM id pointing at FVE metadata.
//! Nothing here can create one, so the tests build the documented layout.

use std::io;

use extents::ReadAt;

use super::raw::{self, le16, le64};
use super::Signature;
use crate::content::ContentKind;

pub(super) const VISTA: &[u8; 11] = b"\xeb\x52\x90-FVE-FS-";
pub(super) const WIN7: &[u8; 11] = b"\xeb\x58\x90-FVE-FS-";
pub(super) const TO_GO: &[u8; 11] = b"\xeb\x58\x90MSWIN4.1";

pub fn probe(vol: &dyn ReadAt) -> io::Result<Option<Signature>> {
    let Some(boot) = raw::read(vol, 0, 512)? else {
        return Ok(None);
    };
    if raw::has(&boot, 0, VISTA) {
        return Ok(Some(Signature::new(ContentKind::Bitlocker, None, None)));
    }
    let metadata_at = if raw::has(&boot, 0, WIN7) {
        le64(&boot, 176)
    } else if raw::has(&boot, 0, TO_GO) {
        le64(&boot, 440)
    } else {
        None
    };
    let Some(at) = metadata_at.filter(|&at| at != 0) else {
        return Ok(None);
    };
    let Some(fve) = raw::read(vol, at, 12)? else {
        return Ok(None);
    };
    if !raw::has(&fve, 0, b"-FVE-FS-") {
        return Ok(None);
    }
    // No UUID: the boot sector's serial is always zero, and blkid 2.38
    // reports none either.
    let mut sig = Signature::new(ContentKind::Bitlocker, None, None);
    sig.version = le16(&fve, 10).map(|v| v.to_string());
    Ok(Some(sig))
}
