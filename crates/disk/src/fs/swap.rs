//! Used-block map for Linux swap: only the header page.
//!
//! Swap contents are disposable, so only the first page is copied: it holds
//! the signature, the version-1 header (size, UUID, label) and the list of
//! bad pages. The page size is whichever of 4, 8, 16 or 64 KiB ends with a
//! known signature.
//!
//! Doubt (whole copy): a hibernation image (the kernel's "S1SUSPEND" and
//! relatives, userspace and TuxOnIce images) is a saved machine living in
//! swap; the old version-0 format and headers that contradict the volume
//! are not understood well enough to drop anything.

use extents::{ExtentMap, ReadAt};

use super::le::u32_at;
use super::MapError;

const PAGE_SIZES: [u64; 4] = [4096, 8192, 16384, 65536];
const MAGIC_LEN: usize = 10;
/// Offsets inside the version-1 header page.
const VERSION: usize = 1024;
const LAST_PAGE: usize = 1028;
const NR_BADPAGES: usize = 1032;
const BADPAGES: u64 = 1536;
/// TuxOnIce writes its own header at the start of the device.
const TUXONICE_MAGIC: [u8; 8] = [0xed, 0xc3, 0x02, 0xe9, 0x98, 0x56, 0xe5, 0x0c];

/// What the signature at the end of a page says.
#[derive(Debug, PartialEq, Eq)]
enum Signature {
    SwapV1,
    SwapV0,
    Hibernation(String),
}

fn signature(magic: &[u8]) -> Option<Signature> {
    const HIBERNATION: [&[u8]; 4] = [b"S1SUSPEND", b"S2SUSPEND", b"ULSUSPEND", b"LINHIB0001"];
    if magic == b"SWAPSPACE2" {
        return Some(Signature::SwapV1);
    }
    if magic == b"SWAP-SPACE" {
        return Some(Signature::SwapV0);
    }
    HIBERNATION
        .iter()
        .find(|h| magic.starts_with(h))
        .map(|h| Signature::Hibernation(String::from_utf8_lossy(h).into_owned()))
}

/// Extents of `vol` that hold data or metadata, relative to its start.
pub fn map(vol: &dyn ReadAt) -> Result<ExtentMap, MapError> {
    let head = vol.read_vec(0, TUXONICE_MAGIC.len())?;
    if head == TUXONICE_MAGIC {
        return Err(hibernated("TuxOnIce"));
    }
    for page in PAGE_SIZES.into_iter().filter(|&p| p <= vol.size()) {
        let magic = vol.read_vec(page - MAGIC_LEN as u64, MAGIC_LEN)?;
        match signature(&magic) {
            Some(Signature::SwapV1) => return map_v1(vol, page),
            Some(Signature::SwapV0) => {
                return Err(MapError::doubt(
                    "old version-0 swap (\"SWAP-SPACE\"): its bitmap header is not read",
                ))
            }
            Some(Signature::Hibernation(sig)) => return Err(hibernated(&sig)),
            None => {}
        }
    }
    Err(MapError::doubt(
        "no swap signature at the end of a 4, 8, 16 or 64 KiB page",
    ))
}

fn hibernated(signature: &str) -> MapError {
    MapError::Doubt(format!(
        "swap holds a hibernation image ({signature}): a suspended system lives in it, \
         copying it whole"
    ))
}

fn map_v1(vol: &dyn ReadAt, page: u64) -> Result<ExtentMap, MapError> {
    let header = vol.read_vec(0, page as usize)?;
    let version = u32_at(&header, VERSION);
    if version != 1 {
        return Err(MapError::Doubt(format!(
            "swap header version {version} (other byte order?)"
        )));
    }
    let max_bad = (page - BADPAGES) / 4;
    let bad = u64::from(u32_at(&header, NR_BADPAGES));
    if bad > max_bad {
        return Err(MapError::Doubt(format!(
            "swap header lists {bad} bad pages, a {page}-byte page holds {max_bad}"
        )));
    }
    let pages = u64::from(u32_at(&header, LAST_PAGE)) + 1;
    if pages.saturating_mul(page) > vol.size() {
        return Err(MapError::Doubt(format!(
            "swap header says {pages} pages of {page} bytes, the volume has {} bytes \
             (truncated?)",
            vol.size()
        )));
    }
    Ok(ExtentMap::single(0, page))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swap_image(page: usize, magic: &[u8]) -> Vec<u8> {
        let mut img = vec![0u8; page * 16];
        img[page - 10..page].copy_from_slice(magic);
        img[VERSION..VERSION + 4].copy_from_slice(&1u32.to_le_bytes());
        img[LAST_PAGE..LAST_PAGE + 4].copy_from_slice(&15u32.to_le_bytes());
        img
    }

    #[test]
    fn maps_the_header_page_of_any_page_size() {
        for page in [4096, 65536] {
            let img = swap_image(page, b"SWAPSPACE2");
            assert_eq!(map(&img).unwrap(), ExtentMap::single(0, page as u64));
        }
    }

    #[test]
    fn hibernation_and_v0_are_whole_copies() {
        for (magic, word) in [
            (&b"S1SUSPEND\0"[..], "hibernation"),
            (b"ULSUSPEND\0", "hibernation"),
            (b"SWAP-SPACE", "version-0"),
            (b"NOTASWAP!!", "no swap signature"),
        ] {
            let err = map(&swap_image(4096, magic)).unwrap_err().to_string();
            assert!(err.contains(word), "{magic:?}: {err}");
        }
    }

    #[test]
    fn header_larger_than_volume_is_doubt() {
        let mut img = swap_image(4096, b"SWAPSPACE2");
        img[LAST_PAGE..LAST_PAGE + 4].copy_from_slice(&100u32.to_le_bytes());
        assert!(map(&img).unwrap_err().to_string().contains("truncated"));
    }
}
