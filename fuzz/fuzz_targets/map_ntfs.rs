//! The ntfs mapper on arbitrary bytes as a volume: it may doubt, never panic,
//! and a map never leaves the volume.
#![no_main]

use extents::ReadAt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let vol = data.to_vec();
    if let Ok(map) = disk::fs::ntfs::map(&vol) {
        assert!(map.end() <= vol.size());
    }
});
