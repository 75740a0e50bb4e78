//! Bounds-checked reads of on-disk fields. Every accessor returns `None`
//! past the end of its buffer, so hostile sizes and offsets cannot panic.

use std::io;

use extents::ReadAt;

/// Reads `len` bytes at `offset`, or `None` when they lie past the end of
/// the volume (a volume too small for the format is simply not that format).
pub fn read(vol: &dyn ReadAt, offset: u64, len: usize) -> io::Result<Option<Vec<u8>>> {
    let end = offset.checked_add(len as u64);
    if end.is_none_or(|end| end > vol.size()) {
        return Ok(None);
    }
    vol.read_vec(offset, len).map(Some)
}

pub fn bytes(b: &[u8], offset: usize, len: usize) -> Option<&[u8]> {
    b.get(offset..offset.checked_add(len)?)
}

fn array<const N: usize>(b: &[u8], offset: usize) -> Option<[u8; N]> {
    bytes(b, offset, N)?.try_into().ok()
}

pub fn u8_at(b: &[u8], offset: usize) -> Option<u8> {
    b.get(offset).copied()
}

pub fn le16(b: &[u8], offset: usize) -> Option<u16> {
    array(b, offset).map(u16::from_le_bytes)
}

pub fn le32(b: &[u8], offset: usize) -> Option<u32> {
    array(b, offset).map(u32::from_le_bytes)
}

pub fn le64(b: &[u8], offset: usize) -> Option<u64> {
    array(b, offset).map(u64::from_le_bytes)
}

pub fn be16(b: &[u8], offset: usize) -> Option<u16> {
    array(b, offset).map(u16::from_be_bytes)
}

pub fn be32(b: &[u8], offset: usize) -> Option<u32> {
    array(b, offset).map(u32::from_be_bytes)
}

pub fn be64(b: &[u8], offset: usize) -> Option<u64> {
    array(b, offset).map(u64::from_be_bytes)
}

/// Whether `b` holds `magic` at `offset`.
pub fn has(b: &[u8], offset: usize, magic: &[u8]) -> bool {
    bytes(b, offset, magic.len()) == Some(magic)
}

/// A 16-byte UUID in its usual text form (lower-case, hyphenated), or
/// `None` when it is all zeros (blkid prints nothing then either).
pub fn uuid(b: &[u8], offset: usize) -> Option<String> {
    let raw: [u8; 16] = array(b, offset)?;
    (raw != [0; 16]).then(|| uuid::Uuid::from_bytes(raw).hyphenated().to_string())
}

/// A fixed-size text field: up to the first NUL, trailing blanks removed,
/// `None` when nothing is left.
pub fn label(b: &[u8], offset: usize, len: usize) -> Option<String> {
    let field = bytes(b, offset, len)?;
    let text = field.split(|&c| c == 0).next().unwrap_or_default();
    tidy(String::from_utf8_lossy(text).into_owned())
}

/// A UTF-16 text field of `units` code units, up to the first NUL.
pub fn label_utf16(b: &[u8], offset: usize, units: usize, big_endian: bool) -> Option<String> {
    let field = bytes(b, offset, units.checked_mul(2)?)?;
    let code_units: Vec<u16> = field
        .chunks_exact(2)
        .map(|c| {
            let pair = [
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ];
            if big_endian {
                u16::from_be_bytes(pair)
            } else {
                u16::from_le_bytes(pair)
            }
        })
        .take_while(|&u| u != 0)
        .collect();
    tidy(String::from_utf16_lossy(&code_units))
}

fn tidy(s: String) -> Option<String> {
    let t = s.trim_end_matches(|c: char| c.is_whitespace());
    (!t.is_empty()).then(|| t.to_string())
}

/// CRC-32C (Castagnoli), as ext4, xfs and btrfs checksum their superblocks.
pub fn crc32c(data: &[u8]) -> u32 {
    const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    CASTAGNOLI.checksum(data)
}

/// CRC-32 (IEEE), as GPT checksums its headers and entries.
pub fn crc32(data: &[u8]) -> u32 {
    const IEEE: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    IEEE.checksum(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_stop_at_the_end() {
        let b = [1u8, 2, 3, 4];
        assert_eq!(le16(&b, 2), Some(0x0403));
        assert_eq!(le32(&b, 1), None);
        assert_eq!(be32(&b, 0), Some(0x01020304));
        assert_eq!(bytes(&b, usize::MAX, 2), None);
        assert!(!has(&b, 3, b"\x04\x05"));
    }

    #[test]
    fn text_fields() {
        assert_eq!(label(b"boot\0\0junk", 0, 10).as_deref(), Some("boot"));
        assert_eq!(label(b"NO NAME    ", 0, 11).as_deref(), Some("NO NAME"));
        assert_eq!(label(b"   ", 0, 3), None);
        let utf16: Vec<u8> = "Data ".encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(label_utf16(&utf16, 0, 5, true).as_deref(), Some("Data"));
        assert_eq!(uuid(&[0u8; 16], 0), None);
        let mut u = [0u8; 16];
        u[0] = 0xAB;
        assert_eq!(
            uuid(&u, 0).as_deref(),
            Some("ab000000-0000-0000-0000-000000000000")
        );
    }

    #[test]
    fn crc_check_values() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
