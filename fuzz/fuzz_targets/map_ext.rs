//! Fuzzes the ext mapper with patches over a real mke2fs image (1 KiB
//! blocks, flex_bg, no checksums so patches reach past the first checks).
#![no_main]

mod fs_image;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static BASE: OnceLock<fs_image::Base> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let base = BASE.get_or_init(|| {
        fs_image::Base::make(
            &[
                "mkfs.ext4",
                "-q",
                "-F",
                "-b",
                "1024",
                "-O",
                "^metadata_csum,^uninit_bg",
            ],
            32 << 20,
            disk::fs::ext::map,
        )
    });
    base.check(data, disk::fs::ext::map);
});
