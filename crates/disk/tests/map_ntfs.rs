//! NTFS maps on volumes made by mkntfs and filled through ntfs-3g, proven by
//! copying only the mapped extents: ntfsfix finds nothing to fix on the copy
//! and every file reads back identical through ntfs-3g.
// Fixture code panics with context on purpose, like the test kit.
#![allow(clippy::unwrap_used)]

mod map_support;

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use extents::{ExtentMap, ReadAt, Window};
use map_support::{apply, assert_inside, load, mutations, number_after, open};
use ntfs::{KnownNtfsFileRecordNumber, Ntfs, NtfsAttributeType};
use proptest::prelude::*;
use testkit::{
    copy_mapped, fill_tree, hash_tree, require, run, sparse_image, tempdir, Loop, Mount, TempDir,
};
use xenlift_disk::fs::ntfs as ntfs_map;
use xenlift_disk::MapError;

struct Fixture {
    dir: TempDir,
    img: PathBuf,
    size: u64,
    expected: std::collections::BTreeMap<PathBuf, String>,
}

/// `fill(mountpoint)` runs with the volume mounted by ntfs-3g.
fn build(size: u64, cluster: u32, fill: impl FnOnce(&Path)) -> Fixture {
    require(&["mkntfs", "ntfs-3g", "ntfsfix", "ntfsinfo", "losetup"]);
    let dir = tempdir().unwrap();
    let img = dir.path().join("ntfs.img");
    sparse_image(&img, size);
    run(
        "mkntfs",
        &[
            "-f",
            "-F",
            "-q",
            "-L",
            "xenlift",
            "-c",
            &cluster.to_string(),
            img.to_str().unwrap(),
        ],
    );
    let expected;
    {
        // A block device makes ntfs-3g a fuseblk mount, whose umount waits
        // for the last write.
        let dev = Loop::attach(&img, 0, None, false);
        let mnt = Mount::new(dev.path(), Some("ntfs-3g"), "rw");
        fill(mnt.path());
        expected = hash_tree(mnt.path());
    }
    Fixture {
        dir,
        img,
        size,
        expected,
    }
}

/// ntfsinfo's figures: used clusters times the cluster size.
fn ntfsinfo_used_bytes(img: &Path) -> (u64, String) {
    let out = run("ntfsinfo", &["-m", "-f", img.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let cluster = number_after(&text, "Cluster Size:");
    let clusters = number_after(&text, "Volume Size in Clusters:");
    let free = number_after(&text, "Free Clusters:");
    ((clusters - free) * cluster, text)
}

fn map_copy_and_verify(fx: &Fixture) {
    let mapped = ntfs_map::map_noted(&open(&fx.img)).unwrap();
    assert_eq!(mapped.note, None);
    let map = mapped.extents;
    assert_inside(&map, fx.size);
    // The used clusters plus the backup boot sector, which lies after the
    // last cluster.
    let (used, report) = ntfsinfo_used_bytes(&fx.img);
    assert_eq!(map.total_bytes(), used + 512, "map vs ntfsinfo:\n{report}");
    assert!(map.contains(fx.size - 512), "backup boot sector");
    assert!(
        map.total_bytes() < fx.size / 2,
        "mapped {} of {}",
        map.total_bytes(),
        fx.size
    );

    let copy = fx.dir.path().join("copy.img");
    copy_mapped(&fx.img, &map, &copy, fx.size);
    let out = run("ntfsfix", &["-n", copy.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("processed successfully"),
        "ntfsfix -n on the copy:\n{text}"
    );
    assert!(
        text.contains("Checking the alternate boot sector... OK"),
        "{text}"
    );
    assert_eq!(
        ntfsinfo_used_bytes(&copy).0,
        used,
        "the copy's own view of its use"
    );

    let dev = Loop::attach(&copy, 0, None, true);
    let mnt = Mount::new(dev.path(), Some("ntfs-3g"), "ro");
    assert!(fx.expected.len() >= 10, "fixture too small");
    assert_eq!(
        hash_tree(mnt.path()),
        fx.expected,
        "files read back from the copy"
    );
}

#[test]
fn ntfs_copy_of_mapped_extents_is_complete() {
    map_copy_and_verify(&build(128 << 20, 4096, |m| fill_tree(m, 21, 48 << 20)));
}

#[test]
fn ntfs_with_small_clusters_copy_is_complete() {
    map_copy_and_verify(&build(64 << 20, 512, |m| fill_tree(m, 22, 20 << 20)));
}

fn doubt_reason(r: Result<ExtentMap, MapError>) -> String {
    match r {
        Err(MapError::Doubt(reason)) => reason,
        other => panic!("expected a doubt, got {other:?}"),
    }
}

/// Byte offset in the image of the value of the resident attribute `ty` of
/// file record `record`, found with the `ntfs` crate.
fn resident_value_at(img: &Path, record: u64, ty: NtfsAttributeType) -> u64 {
    let mut f = std::io::BufReader::new(std::fs::File::open(img).unwrap());
    let ntfs = Ntfs::new(&mut f).unwrap();
    let file = ntfs.file(&mut f, record).unwrap();
    let mut attrs = file.attributes();
    while let Some(item) = attrs.next(&mut f) {
        let item = item.unwrap();
        let a = item.to_attribute().unwrap();
        if a.ty().unwrap() == ty {
            let pos = a.position().value().unwrap().get();
            // Resident value offset: a u16 at 0x14 of the attribute header.
            let mut hdr = [0u8; 2];
            f.seek(SeekFrom::Start(pos + 0x14)).unwrap();
            f.read_exact(&mut hdr).unwrap();
            return pos + u64::from(u16::from_le_bytes(hdr));
        }
    }
    panic!("no attribute {ty:?} in record {record}");
}

#[test]
fn dirty_and_hibernated_volumes_are_mapped_with_a_note() {
    let fx = build(64 << 20, 4096, |m| {
        let mut hiber = vec![0u8; 1 << 20];
        hiber[..4].copy_from_slice(b"hibr");
        std::fs::write(m.join("hiberfil.sys"), hiber).unwrap();
        std::fs::write(m.join("a.txt"), b"data").unwrap();
    });
    let (used, _) = ntfsinfo_used_bytes(&fx.img);
    // Set VOLUME_IS_DIRTY in $Volume (ntfs-3g would then see $MFT and
    // $MFTMirr differ, which does not matter to the map).
    let at = resident_value_at(
        &fx.img,
        KnownNtfsFileRecordNumber::Volume as u64,
        NtfsAttributeType::VolumeInformation,
    );
    let f = std::fs::OpenOptions::new()
        .write(true)
        .read(true)
        .open(&fx.img)
        .unwrap();
    let mut flags = [0u8; 2];
    f.read_exact_at(&mut flags, at + 10).unwrap();
    flags[0] |= 0x01;
    f.write_all_at(&flags, at + 10).unwrap();
    drop(f);

    let mapped = ntfs_map::map_noted(&open(&fx.img)).unwrap();
    let note = mapped.note.unwrap_or_default();
    assert!(note.contains("dirty"), "{note}");
    assert!(note.contains("hibernated"), "{note}");
    assert_eq!(mapped.extents.total_bytes(), used + 512);

    // The note reaches the report through map_content.
    let content = xenlift_disk::Content {
        kind: xenlift_disk::ContentKind::Ntfs,
        uuid: None,
        label: None,
    };
    let vm = xenlift_disk::fs::map_content(&content, &open(&fx.img));
    assert_eq!(vm.method, xenlift_disk::MapMethod::NtfsBitmap);
    assert!(vm.reason.unwrap_or_default().contains("hibernated"));
}

#[test]
fn corrupt_boot_sector_stale_bitmap_and_truncation_are_doubts() {
    let fx = build(64 << 20, 4096, |m| {
        std::fs::write(m.join("a.txt"), b"data").unwrap()
    });
    let clean = open(&fx.img).read_vec(0, fx.size as usize).unwrap();
    assert!(ntfs_map::map(&clean).is_ok());

    let mut b = clean.clone();
    b[3..11].copy_from_slice(b"NOTNTFS ");
    assert!(doubt_reason(ntfs_map::map(&b)).contains("boot sector"));
    let mut b = clean.clone();
    b[0x0D] = 3; // sectors per cluster
    assert!(doubt_reason(ntfs_map::map(&b)).contains("boot sector"));

    // $Bitmap's first byte cleared: the boot file and $MFT look free.
    let mut f = std::io::BufReader::new(std::fs::File::open(&fx.img).unwrap());
    let ntfs = Ntfs::new(&mut f).unwrap();
    let bitmap = ntfs
        .file(&mut f, KnownNtfsFileRecordNumber::Bitmap as u64)
        .unwrap();
    let item = bitmap.data(&mut f, "").unwrap().unwrap();
    let value = item.to_attribute().unwrap().value(&mut f).unwrap();
    let at = value.data_position().value().unwrap().get() as usize;
    let mft_cluster = ntfs.mft_position().value().unwrap().get() / u64::from(ntfs.cluster_size());
    let mut b = clean.clone();
    b[at + (mft_cluster / 8) as usize] &= !(1 << (mft_cluster % 8));
    let reason = doubt_reason(ntfs_map::map(&b));
    assert!(
        reason.contains("$MFT") && reason.contains("marks free"),
        "{reason}"
    );

    let short = Window::new(open(&fx.img), 0, fx.size / 2);
    assert!(doubt_reason(ntfs_map::map(&short)).contains("truncated"));
    // Shorter than a boot sector: an I/O error (whole copy), not a panic
    // inside the ntfs crate (found by the map_ntfs fuzz target).
    assert!(matches!(
        ntfs_map::map(&clean[..403].to_vec()),
        Err(MapError::Io(_))
    ));
    // $MFT placed past the end of the volume.
    let mut b = clean.clone();
    b[0x30..0x38].copy_from_slice(&(fx.size / 4096 + 100).to_le_bytes());
    doubt_reason(ntfs_map::map(&b));
}

struct Base {
    bytes: Arc<Vec<u8>>,
    hot: Vec<(u64, u64)>,
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let fx = build(16 << 20, 4096, |m| fill_tree(m, 23, 4 << 20));
        let bytes = load(&fx.img);
        let mut f = std::io::BufReader::new(std::fs::File::open(&fx.img).unwrap());
        let ntfs = Ntfs::new(&mut f).unwrap();
        let mft = ntfs.mft_position().value().unwrap().get();
        let bitmap = ntfs
            .file(&mut f, KnownNtfsFileRecordNumber::Bitmap as u64)
            .unwrap();
        let item = bitmap.data(&mut f, "").unwrap().unwrap();
        let value = item.to_attribute().unwrap().value(&mut f).unwrap();
        let bitmap_at = value.data_position().value().unwrap().get();
        let hot = vec![
            (0, 512),
            (mft, 16 * 1024),
            (bitmap_at, 512),
            (bytes.len() as u64 - 512, 512),
        ];
        Base { bytes, hot }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_ntfs_images_never_panic(m in mutations(16 << 20, vec![(0, 1)])) {
        let base = base();
        let mut m = m;
        for (i, w) in m.writes.iter_mut().enumerate() {
            let (start, len) = base.hot[i % base.hot.len()];
            w.0 = start + w.0 % len;
        }
        let img = apply(&base.bytes, &m);
        if let Ok(map) = ntfs_map::map(&img) {
            assert_inside(&map, img.size());
        }
    }
}
