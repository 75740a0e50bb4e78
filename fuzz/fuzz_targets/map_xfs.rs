//! Fuzzes the xfs mapper with patches over a real mkfs.xfs image (v4, no
//! checksums, so patches reach the free-space trees and the log check).
#![no_main]

mod fs_image;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static BASE: OnceLock<fs_image::Base> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let base = BASE.get_or_init(|| {
        fs_image::Base::make(
            &["mkfs.xfs", "-q", "-f", "-m", "crc=0", "-b", "size=1024"],
            320 << 20,
            disk::fs::xfs::map,
        )
    });
    base.check(data, disk::fs::xfs::map);
});
