//! FAT12/16/32 maps on volumes made by mkfs.vfat and filled with mtools
//! (the host kernel has no vfat), proven by copying only the mapped extents:
//! fsck.vfat is clean on the copy and every file reads back identical.
// Fixture code panics with context on purpose, like the test kit.
#![allow(clippy::unwrap_used)]

mod map_support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use extents::{ExtentMap, FileAt, ReadAt, Window};
use map_support::{apply, assert_inside, mutations, number_after, without};
use proptest::prelude::*;
use testkit::{
    copy_mapped, fill_files, hash_tree, require, run, sh, sparse_image, tempdir, Loop, TempDir,
};
use xenlift_disk::fs::fat::{self, FatGeometry};
use xenlift_disk::MapError;

/// The FAT volume starts 1 MiB into its disk image, as a partition would.
const OFFSET: u64 = 1 << 20;

struct Fixture {
    dir: TempDir,
    disk: PathBuf,
    size: u64,
    src: PathBuf,
    deleted: Vec<PathBuf>,
}

impl Fixture {
    fn volume(&self) -> Window<FileAt> {
        Window::new(map_support::open(&self.disk), OFFSET, self.size)
    }

    /// `mtools` image spec of a disk holding the volume at [`OFFSET`].
    fn spec(disk: &Path) -> String {
        format!("{}@@{OFFSET}", disk.display())
    }
}

fn mtools(script: &str) -> String {
    sh(&format!("export MTOOLS_SKIP_CHECK=1; {script}"))
}

/// A FAT volume of `size` bytes filled with about `fill` bytes of files,
/// a quarter of which are deleted again inside the image.
fn build(bits: u32, size: u64, fill: u64, seed: u64) -> Fixture {
    require(&["mkfs.vfat", "fsck.vfat", "mcopy", "mdel", "losetup"]);
    let dir = tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    sparse_image(&disk, OFFSET + size + (1 << 20));
    run(
        "mkfs.vfat",
        &[
            "-F",
            &bits.to_string(),
            "-n",
            "XENLIFT",
            "--offset",
            &(OFFSET / 512).to_string(),
            disk.to_str().unwrap(),
            &(size / 1024).to_string(),
        ],
    );
    let src = dir.path().join("src");
    fill_files(&src, seed, fill);
    let spec = Fixture::spec(&disk);
    mtools(&format!(
        "cd {} && mcopy -s -Q -i {spec} ./* ::/",
        src.display()
    ));
    let files = map_support::files_under(&src);
    let deleted: Vec<PathBuf> = files.iter().step_by(4).cloned().collect();
    for d in &deleted {
        mtools(&format!("mdel -i {spec} '::/{}'", d.display()));
    }
    Fixture {
        dir,
        disk,
        size,
        src,
        deleted,
    }
}

/// fsck.vfat -v's own figures: data area start plus used clusters times
/// the cluster size, and the whole report.
fn fsck_used_bytes(device: &str) -> (u64, String) {
    let out = run("fsck.vfat", &["-n", "-v", device]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let data_start = number_after(&text, "Data area starts at byte");
    let cluster = number_from_line(&text, "bytes per cluster");
    // "DEVICE: N files, USED/TOTAL clusters"
    let used: u64 = text
        .lines()
        .find(|l| l.contains(" files, ") && l.ends_with(" clusters"))
        .and_then(|l| l.rsplit(", ").next())
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no used cluster count in:\n{text}"));
    (data_start + used * cluster, text)
}

/// The number at the start of the line ending in `suffix`.
fn number_from_line(text: &str, suffix: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.trim_end().ends_with(suffix))
        .unwrap_or_else(|| panic!("no line ending in {suffix:?}:\n{text}"));
    line.split_whitespace().next().unwrap().parse().unwrap()
}

/// Map, copy only the mapped extents into a zeroed disk, then check the
/// copy with fsck.vfat and by reading every file back with mtools.
fn map_copy_and_verify(fx: &Fixture, bits: u32) {
    let vol = fx.volume();
    let map = fat::map(&vol).unwrap_or_else(|e| panic!("FAT{bits}: {e}"));
    assert_inside(&map, fx.size);

    let copy = fx.dir.path().join("copy.img");
    let disk_size = map_support::file_size(&fx.disk);
    copy_mapped(&fx.disk, &map.shifted(OFFSET), &copy, disk_size);

    let dev = Loop::attach(&copy, OFFSET, Some(fx.size), true);
    let (fsck_bytes, report) = fsck_used_bytes(dev.path());
    assert!(report.contains(&format!("{bits} bit entries")), "{report}");
    // The map holds exactly the filesystem's own view: everything before
    // the data area plus the used clusters.
    assert_eq!(map.total_bytes(), fsck_bytes, "map vs fsck.vfat:\n{report}");
    let orig = Loop::attach(&fx.disk, OFFSET, Some(fx.size), true);
    let (orig_bytes, _) = fsck_used_bytes(orig.path());
    assert_eq!(
        orig_bytes, fsck_bytes,
        "fsck.vfat sees the same use on source and copy"
    );

    let out = fx.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    mtools(&format!(
        "mcopy -s -Q -i {} '::*' {}",
        Fixture::spec(&copy),
        out.display()
    ));
    let expected = without(hash_tree(&fx.src), &fx.deleted);
    assert!(
        expected.len() >= 5,
        "fixture too small: {} files",
        expected.len()
    );
    assert_eq!(hash_tree(&out), expected, "files read back from the copy");
    // Deleted files left free clusters behind: the map is smaller than the
    // whole volume by at least what was freed.
    assert!(map.total_bytes() < fx.size, "FAT{bits} mapped whole");
}

#[test]
fn fat12_copy_of_mapped_extents_is_complete() {
    let fx = build(12, 8 << 20, 5 << 20, 12);
    map_copy_and_verify(&fx, 12);
}

#[test]
fn fat16_copy_of_mapped_extents_is_complete() {
    let fx = build(16, 64 << 20, 24 << 20, 16);
    map_copy_and_verify(&fx, 16);
}

#[test]
fn fat32_copy_of_mapped_extents_is_complete() {
    let fx = build(32, 100 << 20, 32 << 20, 32);
    map_copy_and_verify(&fx, 32);
}

/// The volume of a fixture as bytes, for targeted corruption.
fn volume_bytes(fx: &Fixture) -> Vec<u8> {
    let vol = fx.volume();
    vol.read_vec(0, vol.size() as usize).unwrap()
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn fat16_entry(b: &[u8], geo: &FatGeometry, fat: u64, cluster: u64) -> u16 {
    let at = (geo.fat_offset(fat) + cluster * 2) as usize;
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn set_fat16_entry(b: &mut [u8], geo: &FatGeometry, fat: u64, cluster: u64, v: u16) {
    put_u16(b, (geo.fat_offset(fat) + cluster * 2) as usize, v);
}

fn doubt_reason(r: Result<ExtentMap, MapError>) -> String {
    match r {
        Err(MapError::Doubt(reason)) => reason,
        other => panic!("expected a doubt, got {other:?}"),
    }
}

#[test]
fn fat_disagreements_bad_clusters_and_corruption() {
    let fx = build(16, 64 << 20, 4 << 20, 160);
    let clean = volume_bytes(&fx);
    let geo = FatGeometry::parse(&clean[..512], clean.len() as u64).unwrap();
    let base = fat::map(&clean).unwrap();
    let free = (2..geo.clusters + 2)
        .rev()
        .find(|&c| fat16_entry(&clean, &geo, 0, c) == 0)
        .unwrap();
    let used = (2..geo.clusters + 2)
        .find(|&c| (2..0xFFF0).contains(&fat16_entry(&clean, &geo, 0, c)))
        .expect("a cluster linking to the next");
    assert!(!base.contains(geo.cluster_offset(free)));

    // FAT2 says used where FAT1 says free: the union is copied.
    let mut b = clean.clone();
    set_fat16_entry(&mut b, &geo, 1, free, 0xFFFF);
    let m = fat::map(&b).unwrap();
    assert!(m.contains(geo.cluster_offset(free)));
    assert_eq!(m.total_bytes(), base.total_bytes() + geo.cluster_bytes());

    // A bad cluster is copied.
    let mut b = clean.clone();
    for f in 0..2 {
        set_fat16_entry(&mut b, &geo, f, free, 0xFFF7);
    }
    assert!(fat::map(&b).unwrap().contains(geo.cluster_offset(free)));

    // A live FAT linking past the last cluster.
    let mut b = clean.clone();
    let past = (geo.clusters + 5) as u16;
    set_fat16_entry(&mut b, &geo, 0, used, past);
    let reason = doubt_reason(fat::map(&b));
    assert!(
        reason.contains(&format!("cluster {used} -> {past}")),
        "{reason}"
    );

    // BPB contradictions.
    let mut b = clean.clone();
    b[13] = 3;
    assert!(doubt_reason(fat::map(&b)).contains("sectors per cluster"));
    let mut b = clean.clone();
    b[13] = 1; // four times the clusters: too many for a 16-bit FAT
    assert!(doubt_reason(fat::map(&b)).contains("too many for FAT12/16"));
    let mut b = clean.clone();
    put_u16(&mut b, 22, 2); // a FAT of 2 sectors for 32695 clusters
    assert!(doubt_reason(fat::map(&b)).contains("fewer than"));

    // A truncated volume.
    let short = Window::new(map_support::open(&fx.disk), OFFSET, fx.size / 2);
    assert!(doubt_reason(fat::map(&short)).contains("truncated"));
}

/// Real images, mutated thousands of times: never a panic, and any map
/// stays inside the volume.
fn mutation_images() -> &'static Vec<(Arc<Vec<u8>>, u64)> {
    static IMAGES: OnceLock<Vec<(Arc<Vec<u8>>, u64)>> = OnceLock::new();
    IMAGES.get_or_init(|| {
        [(12, 4u64 << 20), (16, 32 << 20), (32, 40 << 20)]
            .into_iter()
            .map(|(bits, size)| {
                let fx = build(bits, size, size / 8, bits as u64);
                let bytes = Arc::new(volume_bytes(&fx));
                let geo = FatGeometry::parse(&bytes[..512], size).unwrap();
                (bytes, geo.data_start() + 4 * geo.cluster_bytes())
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_fat_images_never_panic(which in 0usize..3, m in mutations(4 << 20, vec![(0, 1024), (0, 1 << 20)])) {
        let (base, metadata_end) = &mutation_images()[which];
        // Aim the writes at the metadata of this image.
        let mut m = m;
        for w in &mut m.writes {
            w.0 %= *metadata_end;
        }
        let img = apply(base, &m);
        if let Ok(map) = fat::map(&img) {
            assert_inside(&map, img.size());
        }
    }
}
