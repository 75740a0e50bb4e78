//! Every content probe on an arbitrary volume.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = disk::probe::probe_volume(&data.to_vec());
    let _ = disk::probe::boot_sector_filesystem(data);
});
