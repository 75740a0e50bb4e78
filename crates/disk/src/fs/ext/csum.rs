//! The two checksums ext4 uses: crc32c without the final inversion
//! (metadata_csum) and the reflected crc16 of gdt_csum (uninit_bg).

use crc::{Algorithm, Crc, CRC_16_MODBUS, CRC_32_ISCSI};

/// crc32c as ext4 chains it: the register is carried between calls as is,
/// with no final inversion.
const CRC32C_RAW: Algorithm<u32> = Algorithm {
    xorout: 0,
    ..CRC_32_ISCSI
};
const CRC32C: Crc<u32> = Crc::<u32>::new(&CRC32C_RAW);

/// ext4's crc16 is the reflected 0x8005 polynomial started at 0xffff with no
/// final inversion: CRC-16/MODBUS.
const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_MODBUS);

/// crc32c of the concatenated `parts`, starting from register `seed`.
pub(super) fn crc32c(seed: u32, parts: &[&[u8]]) -> u32 {
    // The crate reflects a custom initial value for reflected algorithms;
    // ext4's seed is already a register value, so undo that.
    let mut d = CRC32C.digest_with_initial(seed.reverse_bits());
    for p in parts {
        d.update(p);
    }
    d.finalize()
}

/// crc16 of the concatenated `parts`, starting from 0xffff.
pub(super) fn crc16(parts: &[&[u8]]) -> u16 {
    let mut d = CRC16.digest();
    for p in parts {
        d.update(p);
    }
    d.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chaining_equals_one_pass() {
        let a = b"hello ";
        let b = b"world";
        let once = crc32c(!0, &[a, b]);
        let chained = crc32c(crc32c(!0, &[a]), &[b]);
        assert_eq!(once, chained);
        // Standard CRC-32C is the raw register inverted.
        assert_eq!(!crc32c(!0, &[b"123456789"]), 0xE306_9283);
        assert_eq!(crc16(&[b"123456789"]), 0x4B37);
    }
}
