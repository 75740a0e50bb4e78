//! Linux swap (version 1 header) and the hibernation images that reuse a
//! swap area: those must be copied whole, or resuming would read garbage.

use std::io;

use extents::ReadAt;

use super::raw::{self, le32};
use super::Signature;
use crate::content::ContentKind;

const PAGE_SIZES: [u64; 5] = [4096, 8192, 16384, 32768, 65536];
const SUSPEND_MAGICS: [&[u8]; 5] = [
    b"S1SUSPEND",
    b"S2SUSPEND",
    b"ULSUSPEND",
    b"\xed\xc3\x02\xe9\x98\x56\xe5\x0c",
    b"LINHIB0001",
];

/// The signature area at the end of the first page, for each page size.
fn page_tails(vol: &dyn ReadAt) -> io::Result<Vec<Vec<u8>>> {
    let mut tails = Vec::new();
    for page in PAGE_SIZES {
        match raw::read(vol, page - 10, 10)? {
            Some(t) => tails.push(t),
            None => break,
        }
    }
    Ok(tails)
}

pub fn probe(vol: &dyn ReadAt) -> io::Result<Option<Signature>> {
    let tails = page_tails(vol)?;
    if tails.iter().any(|t| t.as_slice() == b"SWAP-SPACE") {
        return Ok(Some(
            Signature::new(ContentKind::Swap, None, None).version("0"),
        ));
    }
    if !tails.iter().any(|t| t.as_slice() == b"SWAPSPACE2") {
        return Ok(None);
    }
    let Some(header) = raw::read(vol, 1024, 48)? else {
        return Ok(None);
    };
    // The version is native-endian: accept a header from a big-endian host.
    let version = le32(&header, 0).unwrap_or(0);
    if version != 1 && version.swap_bytes() != 1 {
        return Ok(None);
    }
    let sig = Signature::new(
        ContentKind::Swap,
        raw::uuid(&header, 12),
        raw::label(&header, 28, 16),
    );
    Ok(Some(sig.version("1")))
}

pub fn probe_suspend(vol: &dyn ReadAt) -> io::Result<Option<Signature>> {
    for page in PAGE_SIZES {
        let Some(tail) = raw::read(vol, page - 10, 10)? else {
            break;
        };
        let hit = SUSPEND_MAGICS
            .iter()
            .any(|m| tail.get(..m.len()) == Some(m));
        if hit {
            let header = raw::read(vol, 1024, 48)?.unwrap_or_default();
            let mut sig = Signature::new(
                ContentKind::Unknown,
                raw::uuid(&header, 12),
                raw::label(&header, 28, 16),
            );
            sig.name = Some("hibernation image in swap (swsuspend)");
            return Ok(Some(sig));
        }
    }
    Ok(None)
}
