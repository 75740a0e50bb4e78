//! MBR, EBR chains, and the choice between GPT, MBR and no table.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for sector in [512, 4096] {
        let _ = disk::table::read(&data.to_vec(), sector);
    }
});
