//! GPT headers and entries, at both sector sizes. The first input byte
//! chooses the sector size and which checksums the harness makes right, so
//! the fuzzer gets past the CRCs into the header and entry checks; the rest
//! is the start of the disk, mirrored at its end for the backup header.
#![no_main]

use disk::probe::raw::{crc32, le32, le64};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let sector: usize = if flags & 1 != 0 { 4096 } else { 512 };
    let len = (rest.len() * 2).max(3 * sector);
    let mut disk = vec![0u8; len];
    disk[..rest.len()].copy_from_slice(rest);
    let tail = len - rest.len();
    disk[tail..].copy_from_slice(rest);
    if flags & 2 != 0 {
        fix_checksums(&mut disk, sector, sector);
    }
    if flags & 4 != 0 {
        fix_checksums(&mut disk, len - sector, sector);
    }
    let _ = disk::table::gpt::read(&disk, sector as u64);
    let _ = disk::table::read(&disk, sector as u32);
});

/// Writes the signature and correct CRCs into the header at `at`, when its
/// entry array is small enough to checksum.
fn fix_checksums(disk: &mut [u8], at: usize, sector: usize) {
    let Some(header) = disk.get_mut(at..at + 92) else {
        return;
    };
    header[..8].copy_from_slice(b"EFI PART");
    header[12..16].copy_from_slice(&92u32.to_le_bytes());
    let entries_lba = le64(header, 72).unwrap_or(0) as usize;
    let count = le32(header, 80).unwrap_or(0) as usize;
    let size = le32(header, 84).unwrap_or(0) as usize;
    let start = entries_lba.saturating_mul(sector);
    let array_len = count.saturating_mul(size);
    if array_len <= 1 << 20 {
        if let Some(array) = disk.get(start..start.saturating_add(array_len)) {
            let crc = crc32(array);
            disk[at + 88..at + 92].copy_from_slice(&crc.to_le_bytes());
        }
    }
    disk[at + 16..at + 20].fill(0);
    let crc = crc32(&disk[at..at + 92]);
    disk[at + 16..at + 20].copy_from_slice(&crc.to_le_bytes());
}
