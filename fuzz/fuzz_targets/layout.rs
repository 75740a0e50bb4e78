//! The whole layout (table, probes, maps) of an arbitrary image, with its
//! invariants: the map stays inside the disk and keeps the first MiB.
#![no_main]

use disk::layout::{inspect_readers, DiskInput};
use disk::source::{image_sector_size, DiskInfo, DiskKind};
use extents::{Extent, ReadAt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let image = data.to_vec();
    let Ok(sector) = image_sector_size(&image) else {
        return;
    };
    let info = DiskInfo {
        path: "fuzz".into(),
        kind: DiskKind::ImageFile,
        size: image.size(),
        logical_sector_size: sector,
        physical_sector_size: sector,
        model: None,
        serial: None,
    };
    if let Ok(layouts) = inspect_readers(&[DiskInput { info: &info, reader: &image }]) {
        for l in layouts {
            assert!(l.map.end() <= image.size());
            let head = image.size().min(1 << 20);
            assert_eq!(l.map.bytes_in(Extent::new(0, head)), head);
        }
    }
});
