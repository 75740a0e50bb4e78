//! Little-endian fields of fixed-size on-disk records. Callers read only
//! buffers they sized themselves, so an offset past the end is our bug, not
//! bad input: it reads as zero in release builds and fails in tests.

pub(super) fn le16(b: &[u8], off: usize) -> u16 {
    debug_assert!(off + 2 <= b.len(), "le16 at {off} of {}", b.len());
    b.get(off..off + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

pub(super) fn le32(b: &[u8], off: usize) -> u32 {
    debug_assert!(off + 4 <= b.len(), "le32 at {off} of {}", b.len());
    b.get(off..off + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

pub(super) fn le64(b: &[u8], off: usize) -> u64 {
    u64::from(le32(b, off)) | (u64::from(le32(b, off + 4)) << 32)
}
