//! LVM2 text metadata from arbitrary bytes, and the same bytes as a whole PV:
//! errors are fine, panics are not, and maps stay inside their volumes.
#![no_main]

use extents::ReadAt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = disk::lvm::metadata::VgMetadata::parse(&String::from_utf8_lossy(data));
    let pv = data.to_vec();
    let maps = disk::lvm::map_physical_volumes(&[disk::lvm::PhysicalVolume { reader: &pv }]);
    for m in &maps {
        assert!(m.map.extents.end() <= pv.size());
        for lv in &m.volumes {
            assert!(lv.map.extents.end() <= lv.size);
        }
    }
});
