//! LUKS1 and LUKS2 headers, read with `blkid-rs`.

use std::io::{self, Cursor};

use blkid_rs::{Luks2Header, LuksHeader, LuksVersionedHeader};
use extents::ReadAt;

use super::raw;
use super::Signature;
use crate::content::ContentKind;

pub fn probe(vol: &dyn ReadAt) -> io::Result<Option<Signature>> {
    let Some(head) = raw::read(vol, 0, 1024)? else {
        return Ok(None);
    };
    if !raw::has(&head, 0, b"LUKS\xba\xbe") {
        return Ok(None);
    }
    let sig = match LuksHeader::read(Cursor::new(head)) {
        Ok(LuksHeader::Luks1(h)) => Signature::new(
            ContentKind::Luks1,
            h.uuid().ok().map(|u| u.to_string()),
            None,
        )
        .version("1"),
        Ok(LuksHeader::Luks2(h)) => {
            let label = h
                .label()
                .ok()
                .flatten()
                .and_then(|l| raw::label(l.as_bytes(), 0, l.len()));
            Signature::new(
                ContentKind::Luks2,
                h.uuid().ok().map(|u| u.to_string()),
                label,
            )
            .version("2")
        }
        Err(e) => {
            tracing::debug!(error = %e, "LUKS magic with an unreadable header");
            return Ok(None);
        }
    };
    Ok(Some(sig))
}
