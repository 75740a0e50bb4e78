//! The VHD footer and dynamic header, byte for byte as reference/vhd.md
//! describes them (all integers big-endian).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::BLOCK_SIZE;

pub(crate) const FOOTER_LEN: usize = 512;
pub(crate) const HEADER_LEN: usize = 1024;
/// Where the BAT starts: right after the footer copy and the dynamic header.
pub(crate) const TABLE_OFFSET: u64 = (FOOTER_LEN + HEADER_LEN) as u64;

/// Seconds between the Unix epoch and the VHD epoch (2000-01-01 00:00 UTC).
const VHD_EPOCH: u64 = 946_684_800;

/// Sum of all bytes, complemented, as the VHD checksum fields want.
fn checksum(bytes: &[u8]) -> u32 {
    !bytes
        .iter()
        .fold(0u32, |sum, &b| sum.wrapping_add(u32::from(b)))
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Cylinders, heads and sectors per track by the algorithm of the VHD
/// specification (capped at 65535 x 16 x 255 sectors).
pub(crate) fn geometry(size: u64) -> (u16, u8, u8) {
    let total = (size / 512).min(65535 * 16 * 255);
    let (spt, heads, cyl_times_heads) = if total >= 65535 * 16 * 63 {
        (255, 16, total / 255)
    } else {
        let mut spt = 17;
        let mut cth = total / spt;
        let mut heads = cth.div_ceil(1024).max(4);
        if cth >= heads * 1024 || heads > 16 {
            spt = 31;
            heads = 16;
            cth = total / spt;
        }
        if cth >= heads * 1024 {
            spt = 63;
            heads = 16;
            cth = total / spt;
        }
        (spt, heads, cth)
    };
    ((cyl_times_heads / heads) as u16, heads as u8, spt as u8)
}

/// Identity of one VHD: creation time and unique id.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Identity {
    pub timestamp: u32,
    pub unique_id: [u8; 16],
}

impl Identity {
    /// Now, and a random (version 4) UUID made from the clock, the process
    /// and a counter: unique enough for an id, without another dependency.
    pub(crate) fn now() -> Identity {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let mut h = Sha256::new();
        h.update(since_epoch.as_nanos().to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        let digest = h.finalize();
        let mut unique_id = [0u8; 16];
        unique_id.copy_from_slice(&digest[..16]);
        unique_id[6] = (unique_id[6] & 0x0f) | 0x40;
        unique_id[8] = (unique_id[8] & 0x3f) | 0x80;
        let timestamp = since_epoch
            .as_secs()
            .saturating_sub(VHD_EPOCH)
            .min(u32::MAX as u64) as u32;
        Identity {
            timestamp,
            unique_id,
        }
    }
}

/// The 512-byte footer of a dynamic VHD of `size` bytes (a multiple of 512).
pub(crate) fn footer(size: u64, id: &Identity) -> [u8; FOOTER_LEN] {
    let mut f = [0u8; FOOTER_LEN];
    put(&mut f, 0, b"conectix");
    put(&mut f, 8, &2u32.to_be_bytes()); // features: reserved bit, always set
    put(&mut f, 12, &0x0001_0000u32.to_be_bytes()); // format version
    put(&mut f, 16, &(FOOTER_LEN as u64).to_be_bytes()); // data offset: the header
    put(&mut f, 24, &id.timestamp.to_be_bytes());
    // qemu trusts the size field, not the CHS geometry, only for some creators;
    // `tap` is what XenServer's blktap writes.
    put(&mut f, 28, b"tap\0");
    put(&mut f, 32, &0x0001_0000u32.to_be_bytes()); // creator version
    put(&mut f, 36, &0u32.to_be_bytes()); // creator host OS
    put(&mut f, 40, &size.to_be_bytes()); // original size
    put(&mut f, 48, &size.to_be_bytes()); // current size
    let (cylinders, heads, spt) = geometry(size);
    put(&mut f, 56, &cylinders.to_be_bytes());
    f[58] = heads;
    f[59] = spt;
    put(&mut f, 60, &3u32.to_be_bytes()); // disk type: dynamic
    put(&mut f, 68, &id.unique_id);
    let sum = checksum(&f);
    put(&mut f, 64, &sum.to_be_bytes());
    f
}

/// The 1024-byte dynamic header for a BAT of `entries` entries.
pub(crate) fn dynamic_header(entries: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    put(&mut h, 0, b"cxsparse");
    put(&mut h, 8, &u64::MAX.to_be_bytes()); // data offset: unused
    put(&mut h, 16, &TABLE_OFFSET.to_be_bytes());
    put(&mut h, 24, &0x0001_0000u32.to_be_bytes()); // header version
    put(&mut h, 28, &entries.to_be_bytes());
    put(&mut h, 32, &(BLOCK_SIZE as u32).to_be_bytes());
    let sum = checksum(&h);
    put(&mut h, 36, &sum.to_be_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn be32(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn checksums_verify() {
        let id = Identity::now();
        let f = footer(10 << 20, &id);
        let mut zeroed = f;
        zeroed[64..68].fill(0);
        assert_eq!(be32(&f, 64), checksum(&zeroed));
        let h = dynamic_header(5);
        let mut zeroed = h;
        zeroed[36..40].fill(0);
        assert_eq!(be32(&h, 36), checksum(&zeroed));
        assert_eq!(&f[0..8], b"conectix");
        assert_eq!(&f[28..32], b"tap\0");
        assert_eq!(f[68 + 6] >> 4, 4, "version 4 uuid");
    }

    #[test]
    fn geometry_follows_the_spec() {
        // 10 MiB: 20480 sectors -> 17 spt, 4 heads, 301 cylinders.
        assert_eq!(geometry(10 << 20), (301, 4, 17));
        // Past the CHS limit: capped at 65535 x 16 x 255.
        assert_eq!(geometry(2040 << 30), (65535, 16, 255));
        assert_eq!(geometry(512), (0, 4, 17));
    }

    #[test]
    fn identities_differ() {
        assert_ne!(Identity::now().unique_id, Identity::now().unique_id);
    }
}
