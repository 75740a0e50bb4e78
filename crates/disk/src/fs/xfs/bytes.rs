//! Big-endian fields of fixed-size records and the crc32c that v5 (CRC)
//! metadata carries. Callers read only buffers they sized themselves, so an
//! offset past the end is our bug: zero in release builds, a failure in tests.

use crc::{Crc, CRC_32_ISCSI};

const CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

pub(super) fn be16(b: &[u8], off: usize) -> u16 {
    debug_assert!(off + 2 <= b.len(), "be16 at {off} of {}", b.len());
    b.get(off..off + 2)
        .map_or(0, |s| u16::from_be_bytes([s[0], s[1]]))
}

pub(super) fn be32(b: &[u8], off: usize) -> u32 {
    debug_assert!(off + 4 <= b.len(), "be32 at {off} of {}", b.len());
    b.get(off..off + 4)
        .map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

pub(super) fn be64(b: &[u8], off: usize) -> u64 {
    (u64::from(be32(b, off)) << 32) | u64::from(be32(b, off + 4))
}

/// Whether `buf` carries a good xfs crc32c at `crc_off` (stored little-endian,
/// computed with the field itself zeroed).
pub(super) fn crc_ok(buf: &[u8], crc_off: usize) -> bool {
    let Some(field) = buf.get(crc_off..crc_off + 4) else {
        return false;
    };
    let stored = u32::from_le_bytes([field[0], field[1], field[2], field[3]]);
    let mut d = CRC32C.digest();
    d.update(&buf[..crc_off]);
    d.update(&[0; 4]);
    d.update(&buf[crc_off + 4..]);
    d.finalize() == stored
}
