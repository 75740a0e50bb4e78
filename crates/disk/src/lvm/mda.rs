//! LVM2 metadata areas: the header sector (checksummed), whose first raw
//! location points to the committed metadata text in a ring buffer.

use extents::{Extent, ReadAt};

use super::crc;
use crate::fs::le::{u32_at, u64_at};

pub const MDA_HEADER_SIZE: u64 = 512;
const MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
const RAW_LOCN_IGNORED: u32 = 1;
/// Offset of the first raw location descriptor in the header.
const RAW_LOCN: usize = 40;
/// Metadata text larger than this is refused rather than read into memory;
/// real metadata is a few hundred KiB at most.
const MAX_TEXT: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum MdaError {
    #[error("metadata area at byte {at} has a bad header checksum (stored {stored:#010x}, computed {computed:#010x})")]
    HeaderChecksum { at: u64, stored: u32, computed: u32 },
    #[error("metadata text at byte {at} has a bad checksum (stored {stored:#010x}, computed {computed:#010x})")]
    TextChecksum { at: u64, stored: u32, computed: u32 },
    #[error("metadata area at byte {at}: {what}")]
    Invalid { at: u64, what: String },
    #[error("reading the metadata area: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads the committed metadata text of the area `area` of `pv`. `None`
/// when the area holds none (an orphan PV) or is marked ignored.
pub fn read_text(pv: &dyn ReadAt, area: Extent) -> Result<Option<Vec<u8>>, MdaError> {
    let at = area.offset;
    let invalid = |what: String| MdaError::Invalid { at, what };
    if area.len < MDA_HEADER_SIZE || area.end() > pv.size() {
        return Err(invalid(format!(
            "{} bytes, device of {} bytes",
            area.len,
            pv.size()
        )));
    }
    let h = pv.read_vec(at, MDA_HEADER_SIZE as usize)?;
    let stored = u32_at(&h, 0);
    let computed = crc::update(crc::INITIAL, h.get(4..).unwrap_or_default());
    if stored != computed {
        return Err(MdaError::HeaderChecksum {
            at,
            stored,
            computed,
        });
    }
    if h.get(4..20) != Some(MAGIC.as_slice()) || u32_at(&h, 20) != 1 {
        return Err(invalid(
            "not an LVM2 text metadata header, version 1".into(),
        ));
    }
    if u64_at(&h, 24) != at || u64_at(&h, 32) != area.len {
        return Err(invalid(format!(
            "header says it starts at {} for {} bytes",
            u64_at(&h, 24),
            u64_at(&h, 32)
        )));
    }
    let offset = u64_at(&h, RAW_LOCN);
    let size = u64_at(&h, RAW_LOCN + 8);
    let checksum = u32_at(&h, RAW_LOCN + 16);
    let flags = u32_at(&h, RAW_LOCN + 20);
    if (offset == 0 && size == 0) || flags & RAW_LOCN_IGNORED != 0 {
        return Ok(None);
    }
    // The text may wrap from the end of the ring back to just after the
    // header.
    let ring = area.len - MDA_HEADER_SIZE;
    if offset < MDA_HEADER_SIZE || offset >= area.len || size > ring || size > MAX_TEXT {
        return Err(invalid(format!(
            "metadata text of {size} bytes at offset {offset}"
        )));
    }
    let first = size.min(area.len - offset);
    let wrap = size - first;
    let mut text = pv.read_vec(at + offset, first as usize)?;
    text.extend(pv.read_vec(at + MDA_HEADER_SIZE, wrap as usize)?);
    let computed = crc::update(crc::INITIAL, &text);
    if computed != checksum {
        return Err(MdaError::TextChecksum {
            at: at + offset,
            stored: checksum,
            computed,
        });
    }
    Ok(Some(text))
}
