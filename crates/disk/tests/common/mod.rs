//! Shared fixtures of the disk tests: images made with the real tools, and
//! the independent readers (blkid, sfdisk) they are compared with.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use xenlift_disk as disk;

use disk::layout::DiskLayout;
use disk::SourceDisk;

pub use testkit::{run, run_stdout, sh, sparse_image, tempdir};

pub const MIB: u64 = 1 << 20;

/// `blkid -p -o export` of a file or device, as a map (empty if blkid
/// finds nothing).
pub fn blkid(path: &Path) -> BTreeMap<String, String> {
    let out = std::process::Command::new("blkid")
        .args(["-p", "-o", "export"])
        .arg(path)
        .output()
        .expect("blkid missing: run ci/setup");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), unescape_shell(v)))
        .collect()
}

/// `blkid -o export` quotes shell-special characters with a backslash.
fn unescape_shell(v: &str) -> String {
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// blkid's TYPE (and VERSION for LUKS) as our content kind name.
pub fn blkid_kind(tags: &BTreeMap<String, String>) -> String {
    match (
        tags.get("TYPE").map(String::as_str),
        tags.get("VERSION").map(String::as_str),
    ) {
        (Some("crypto_LUKS"), Some(v)) => format!("luks{v}"),
        (Some("LVM2_member"), _) => "lvm2_member".into(),
        (Some("BitLocker"), _) => "bitlocker".into(),
        (Some(t), _) => t.to_string(),
        (None, _) => "unknown".into(),
    }
}

/// `sfdisk --json` of an image or device.
pub fn sfdisk_json(path: &Path) -> serde_json::Value {
    let text = run_stdout("sfdisk", &["--json", path.to_str().unwrap()]);
    serde_json::from_str(&text).unwrap()
}

/// Writes `data` into `image` at `offset` without truncating it.
pub fn put(image: &Path, offset: u64, data: &[u8]) {
    let f = OpenOptions::new().write(true).open(image).unwrap();
    f.write_all_at(data, offset).unwrap();
}

/// Copies the file `part` into `image` at `offset`.
pub fn put_file(image: &Path, offset: u64, part: &Path) {
    let data = std::fs::read(part).unwrap();
    put(image, offset, &data);
}

/// Makes a filesystem image file of `size` bytes with `mkfs` (a shell
/// command where `{}` is the file).
pub fn make_fs(dir: &Path, name: &str, size: u64, mkfs: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    sparse_image(&path, size);
    sh(&mkfs.replace("{}", path.to_str().unwrap()));
    path
}

/// Opens and inspects one disk.
pub fn inspect_path(path: &Path) -> DiskLayout {
    let disk = SourceDisk::open(path).unwrap();
    let mut layouts = disk::inspect(std::slice::from_ref(&disk)).unwrap();
    layouts.pop().unwrap()
}

/// The invariants every disk map keeps, whatever the input.
pub fn check_map_invariants(layout: &DiskLayout, size: u64) {
    let extents = layout.map.extents();
    for w in extents.windows(2) {
        assert!(
            w[0].end() < w[1].offset,
            "unsorted or unmerged: {extents:?}"
        );
    }
    assert!(layout.map.end() <= size, "map past the disk end");
    assert_eq!(
        layout.map.bytes_in(extents::Extent::new(0, MIB.min(size))),
        MIB.min(size),
        "first MiB missing"
    );
    if layout.whole_disk_reason.is_some() {
        assert_eq!(layout.copy_bytes(), size, "whole disk expected");
    }
}
