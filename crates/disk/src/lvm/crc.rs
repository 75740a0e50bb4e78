//! LVM's checksum: CRC-32 with the reflected polynomial 0xEDB88320, but
//! started from 0xf597a6cf and with no final inversion (lvm2 lib/misc/crc.c).

/// The start value LVM uses for labels, metadata area headers and text.
pub const INITIAL: u32 = 0xf597_a6cf;

const TABLE: [u32; 256] = table();

const fn table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

/// Continues the checksum `crc` over `bytes` (start with [`INITIAL`]).
pub fn update(crc: u32, bytes: &[u8]) -> u32 {
    bytes.iter().fold(crc, |c, &b| {
        TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LVM's own loop: a nibble at a time with a 16-entry table.
    fn nibble_reference(mut crc: u32, bytes: &[u8]) -> u32 {
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..2 {
                let mut c = crc & 0xF;
                for _ in 0..4 {
                    c = if c & 1 != 0 {
                        (c >> 1) ^ 0xEDB8_8320
                    } else {
                        c >> 1
                    };
                }
                crc = (crc >> 4) ^ c;
            }
        }
        crc
    }

    #[test]
    fn matches_the_nibble_form_and_continues() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        assert_eq!(update(INITIAL, &data), nibble_reference(INITIAL, &data));
        let split = update(update(INITIAL, &data[..300]), &data[300..]);
        assert_eq!(split, update(INITIAL, &data));
        // Plain CRC-32 of "123456789" is 0xCBF43926: with init !0 and a
        // final inversion this table must give it.
        assert_eq!(!update(!0, b"123456789"), 0xCBF4_3926);
    }
}
