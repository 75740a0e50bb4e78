//! exFAT maps on volumes made by mkfs.exfat and filled through exfat-fuse
//! (the host kernel has no exfat), proven by copying only the mapped
//! extents: fsck.exfat is clean on the copy and every file reads back
//! identical.
// Fixture code panics with context on purpose, like the test kit.
#![allow(clippy::unwrap_used)]

mod map_support;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use extents::{ExtentMap, ReadAt, Window};
use map_support::{apply, assert_inside, load, mutations, number_after, open, without};
use proptest::prelude::*;
use testkit::{
    copy_mapped, fill_files, hash_tree, require, run, sparse_image, tempdir, Loop, Mount, TempDir,
};
use xenlift_disk::fs::exfat::{self, boot_checksum, ExfatBoot};
use xenlift_disk::MapError;

struct Fixture {
    dir: TempDir,
    img: PathBuf,
    size: u64,
    expected: std::collections::BTreeMap<PathBuf, String>,
}

fn build(size: u64, fill: u64, seed: u64, cluster: &str) -> Fixture {
    require(&[
        "mkfs.exfat",
        "fsck.exfat",
        "dump.exfat",
        "mount.exfat-fuse",
        "losetup",
    ]);
    let dir = tempdir().unwrap();
    let img = dir.path().join("exfat.img");
    sparse_image(&img, size);
    run(
        "mkfs.exfat",
        &["-L", "XENLIFT", "-c", cluster, img.to_str().unwrap()],
    );
    let src = dir.path().join("src");
    fill_files(&src, seed, fill);
    let expected;
    {
        // exfat-fuse wants a block device; fuseblk also makes umount wait
        // for the last write.
        let dev = Loop::attach(&img, 0, None, false);
        let mnt = Mount::new(dev.path(), Some("exfat-fuse"), "rw");
        run(
            "cp",
            &[
                "-r",
                &format!("{}/.", src.display()),
                mnt.path().to_str().unwrap(),
            ],
        );
        let files = map_support::files_under(mnt.path());
        let deleted: Vec<PathBuf> = files.iter().step_by(4).cloned().collect();
        for d in &deleted {
            std::fs::remove_file(mnt.path().join(d)).unwrap();
        }
        expected = without(hash_tree(&src), &deleted);
        testkit::sync();
    }
    Fixture {
        dir,
        img,
        size,
        expected,
    }
}

/// dump.exfat's figures: boot region, FAT and used clusters, in bytes.
fn dump_used_bytes(img: &std::path::Path) -> (u64, String) {
    let out = run("dump.exfat", &[img.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let sector = 1u64 << number_after(&text, "Sector Size Bits:");
    let fat_len = number_after(&text, "FAT Length(sectors):");
    let cluster = number_after(&text, "Cluster size:");
    let total = number_after(&text, "Total Clusters:");
    let free = number_after(&text, "Free Clusters:");
    // Main and backup boot regions (24 sectors), one FAT (mkfs.exfat makes
    // one), the allocated clusters.
    (
        24 * sector + fat_len * sector + (total - free) * cluster,
        text,
    )
}

fn map_copy_and_verify(fx: &Fixture) {
    let map = exfat::map(&open(&fx.img)).unwrap();
    assert_inside(&map, fx.size);
    let (used, report) = dump_used_bytes(&fx.img);
    assert_eq!(map.total_bytes(), used, "map vs dump.exfat:\n{report}");
    assert!(
        map.total_bytes() < fx.size / 2,
        "mapped {} of {}",
        map.total_bytes(),
        fx.size
    );

    let copy = fx.dir.path().join("copy.img");
    copy_mapped(&fx.img, &map, &copy, fx.size);
    let out = run("fsck.exfat", &["-n", "-v", copy.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("clean"), "fsck.exfat on the copy:\n{text}");
    assert_eq!(
        dump_used_bytes(&copy).0,
        used,
        "the copy's own view of its use"
    );

    let dev = Loop::attach(&copy, 0, None, true);
    let mnt = Mount::new(dev.path(), Some("exfat-fuse"), "ro");
    assert!(fx.expected.len() >= 5, "fixture too small");
    assert_eq!(
        hash_tree(mnt.path()),
        fx.expected,
        "files read back from the copy"
    );
}

#[test]
fn exfat_copy_of_mapped_extents_is_complete() {
    map_copy_and_verify(&build(96 << 20, 40 << 20, 7, "4K"));
}

#[test]
fn exfat_with_large_clusters_copy_is_complete() {
    map_copy_and_verify(&build(200 << 20, 60 << 20, 8, "128K"));
}

fn doubt_reason(r: Result<ExtentMap, MapError>) -> String {
    match r {
        Err(MapError::Doubt(reason)) => reason,
        other => panic!("expected a doubt, got {other:?}"),
    }
}

#[test]
fn bad_checksum_dirty_volume_stale_bitmap_and_truncation_are_doubts() {
    let fx = build(64 << 20, 2 << 20, 9, "4K");
    let clean = open(&fx.img).read_vec(0, fx.size as usize).unwrap();
    let boot = ExfatBoot::read(&clean).unwrap();
    assert!(exfat::map(&clean).is_ok());

    // Boot code changed without updating the checksum sector.
    let mut b = clean.clone();
    b[300] ^= 0xFF;
    assert!(doubt_reason(exfat::map(&b)).contains("boot checksum mismatch"));

    // VolumeDirty is outside the checksum, and still a doubt.
    let mut b = clean.clone();
    b[106] |= 0x02;
    assert!(doubt_reason(exfat::map(&b)).contains("dirty"));

    // The root directory's cluster marked free in the bitmap.
    let root = boot.root_cluster;
    let bitmap_at = boot.cluster_offset(2) as usize; // mkfs.exfat puts the bitmap first
    let mut b = clean.clone();
    b[bitmap_at + ((root - 2) / 8) as usize] &= !(1 << ((root - 2) % 8));
    assert!(doubt_reason(exfat::map(&b)).contains("root directory uses clusters"));

    // A FAT chain of the root directory pointing past the heap.
    let mut b = clean.clone();
    let at = (boot.fat_offset(0) + root * 4) as usize;
    b[at..at + 4].copy_from_slice(&((boot.cluster_count + 9) as u32).to_le_bytes());
    assert!(doubt_reason(exfat::map(&b)).contains("outside"));

    let short = Window::new(open(&fx.img), 0, fx.size / 2);
    assert!(doubt_reason(exfat::map(&short)).contains("truncated"));
}

struct Base {
    bytes: Arc<Vec<u8>>,
    hot: Vec<(u64, u64)>,
    sector: u64,
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let fx = build(32 << 20, 2 << 20, 10, "4K");
        let bytes = load(&fx.img);
        let boot = ExfatBoot::read(&*bytes).unwrap();
        let hot = vec![
            (0, 512),
            (boot.fat_offset(0), 4096),
            (boot.cluster_offset(2), 4 * boot.cluster_bytes()),
            (boot.cluster_offset(boot.root_cluster), boot.cluster_bytes()),
        ];
        Base {
            bytes,
            hot,
            sector: boot.bytes_per_sector,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_exfat_images_never_panic(m in mutations(32 << 20, vec![(0, 1)]), fix_checksum in any::<bool>()) {
        let base = base();
        let mut m = m;
        // Re-aim writes at the metadata the parser reads.
        for (i, w) in m.writes.iter_mut().enumerate() {
            let (start, len) = base.hot[i % base.hot.len()];
            w.0 = start + w.0 % len;
        }
        let mut img = apply(&base.bytes, &m);
        if fix_checksum {
            // Recompute the checksum so the parser goes past the boot region.
            let s = base.sector as usize;
            if let Ok(region) = img.read_vec(0, 11 * s) {
                let sum = boot_checksum(&region).to_le_bytes();
                for k in 0..s {
                    img.set((11 * s + k) as u64, sum[k % 4]);
                }
            }
        }
        if let Ok(map) = exfat::map(&img) {
            assert_inside(&map, img.size());
        }
    }
}
