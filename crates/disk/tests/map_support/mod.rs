//! Shared by the map_* tests of FAT, exFAT, NTFS, swap and LVM: opening
//! images, comparing trees, and mutating real images for the no-panic
//! property tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use extents::{ExtentMap, FileAt, ReadAt};
use proptest::prelude::*;
use testkit::Mutated;

pub mod lvm;

/// Opens an image read-only as a [`ReadAt`].
pub fn open(path: &Path) -> FileAt {
    FileAt::from_file(File::open(path).unwrap()).unwrap()
}

pub fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// A map of a volume must stay inside it, sorted and merged.
pub fn assert_inside(map: &ExtentMap, size: u64) {
    assert!(
        map.end() <= size,
        "map ends at {} past the volume end {size}",
        map.end()
    );
    for w in map.extents().windows(2) {
        assert!(
            w[0].end() < w[1].offset,
            "extents not sorted and merged: {w:?}"
        );
    }
}

/// Parses "N" after `prefix` in a line of tool output.
pub fn number_after(text: &str, prefix: &str) -> u64 {
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix:?} in:\n{text}"));
    text[at + prefix.len()..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {prefix:?} in:\n{text}"))
}

/// Removes every file of `deleted` (relative paths) from a hash map of a
/// tree, for trees where files were then deleted inside the image.
pub fn without(
    mut tree: BTreeMap<PathBuf, String>,
    deleted: &[PathBuf],
) -> BTreeMap<PathBuf, String> {
    for d in deleted {
        tree.remove(d);
    }
    tree
}

/// Relative paths of the regular files under `dir`, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    testkit::hash_tree(dir).into_keys().collect()
}

/// One mutation of an image: bytes overwritten (mostly inside `hot`, the
/// metadata the parser reads first) and sometimes a truncation.
#[derive(Debug, Clone)]
pub struct Mutation {
    pub writes: Vec<(u64, u8)>,
    pub truncate: Option<u64>,
}

/// Mutations of an image of `size` bytes whose metadata lives in the byte
/// ranges `hot`.
pub fn mutations(size: u64, hot: Vec<(u64, u64)>) -> impl Strategy<Value = Mutation> {
    let hot = Arc::new(hot);
    let write = (any::<u64>(), any::<u8>(), 0u8..10).prop_map(move |(pick, value, kind)| {
        let offset = match (kind, hot.is_empty()) {
            (0, _) | (_, true) => pick % size,
            _ => {
                let (start, len) = hot[(pick as usize / 7) % hot.len()];
                start + pick % len.max(1)
            }
        };
        (offset, value)
    });
    (
        prop::collection::vec(write, 1..24),
        // Cuts anywhere, and often inside the first sectors.
        prop::option::weighted(0.1, prop_oneof![0..size, 0..4096u64.min(size)]),
    )
        .prop_map(|(writes, truncate)| Mutation { writes, truncate })
}

/// The image with the mutation applied.
pub fn apply(base: &Arc<Vec<u8>>, m: &Mutation) -> Mutated {
    let mut img = Mutated::new(base.clone());
    for &(at, v) in &m.writes {
        img.set(at, v);
    }
    if let Some(len) = m.truncate {
        img.truncate(len);
    }
    img
}

/// Reads a whole image into memory for mutation tests.
pub fn load(path: &Path) -> Arc<Vec<u8>> {
    let img = open(path);
    Arc::new(img.read_vec(0, img.size() as usize).unwrap())
}

/// Fills a FAT image at byte `offset` of `img` through mtools with about
/// `fill` bytes of files, deletes a quarter of them inside the image, and
/// returns the hashes the image should now hold.
pub fn vfat_fill(img: &Path, offset: u64, seed: u64, fill: u64) -> BTreeMap<PathBuf, String> {
    let src = img.with_extension("src");
    testkit::fill_files(&src, seed, fill);
    let spec = format!("{}@@{offset}", img.display());
    testkit::sh(&format!(
        "export MTOOLS_SKIP_CHECK=1; cd {} && mcopy -s -Q -i {spec} ./* ::/",
        src.display()
    ));
    let files = files_under(&src);
    let deleted: Vec<PathBuf> = files.iter().step_by(4).cloned().collect();
    for d in &deleted {
        testkit::sh(&format!(
            "export MTOOLS_SKIP_CHECK=1; mdel -i {spec} '::/{}'",
            d.display()
        ));
    }
    let expected = without(testkit::hash_tree(&src), &deleted);
    std::fs::remove_dir_all(&src).unwrap();
    expected
}

/// The hashes of every file of a FAT image, read out with mtools.
pub fn vfat_read_back(img: &Path, offset: u64) -> BTreeMap<PathBuf, String> {
    let out = img.with_extension("out");
    std::fs::create_dir_all(&out).unwrap();
    testkit::sh(&format!(
        "export MTOOLS_SKIP_CHECK=1; mcopy -s -Q -i {}@@{offset} '::*' {}",
        img.display(),
        out.display()
    ));
    let tree = testkit::hash_tree(&out);
    std::fs::remove_dir_all(&out).unwrap();
    tree
}

/// fsck.vfat's own view of a FAT image: everything before the data area
/// plus the used clusters, in bytes. Panics if fsck finds a problem.
pub fn vfat_used_bytes(device: &Path) -> u64 {
    let out = testkit::run("fsck.vfat", &["-n", "-v", device.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let data_start = number_after(&text, "Data area starts at byte");
    let cluster_line = text
        .lines()
        .find(|l| l.trim_end().ends_with("bytes per cluster"))
        .unwrap_or_else(|| panic!("no cluster size in:\n{text}"));
    let cluster: u64 = cluster_line
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let used: u64 = text
        .lines()
        .find(|l| l.contains(" files, ") && l.ends_with(" clusters"))
        .and_then(|l| l.rsplit(", ").next())
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no used cluster count in:\n{text}"));
    data_start + used * cluster
}

/// dumpe2fs's own view of an ext2/3/4 image: blocks not counted free, in
/// bytes.
pub fn ext_used_bytes(img: &Path) -> u64 {
    let out = testkit::run("dumpe2fs", &["-h", img.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let blocks = number_after(&text, "Block count:");
    let free = number_after(&text, "Free blocks:");
    let size = number_after(&text, "Block size:");
    (blocks - free) * size
}
