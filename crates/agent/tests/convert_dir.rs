//! `xenlift convert --to dir:` end to end, on a GPT disk image with an ext4
//! partition made by the real tools, checked by qemu-img, e2fsck, a mount
//! and an independent chunked decoder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use disk::SourceDisk;
use testkit::{
    copy_mapped, fill_tree, hash_tree, run, run_stdout, sha256_file, sparse_image, tempdir, Loop,
    Mount,
};

const MIB: u64 = 1 << 20;
const SIZE: u64 = 64 * MIB + 3 * 512; // not a multiple of the block size
const PART_OFFSET: u64 = MIB;
const PART_SIZE: u64 = 40 * MIB;

fn xenlift(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xenlift"))
        .args(args)
        .output()
        .expect("running xenlift")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "xenlift failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// GPT with one Linux partition holding ext4 with files.
fn make_disk(img: &Path) -> std::collections::BTreeMap<PathBuf, String> {
    sparse_image(img, SIZE);
    run("sgdisk", &["-n", "1:2048:+40M", "-t", "1:8300", s(img)]);
    run(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-E",
            &format!("offset={PART_OFFSET},nodiscard"),
            s(img),
            "40M",
        ],
    );
    let lo = Loop::attach(img, PART_OFFSET, Some(PART_SIZE), false);
    let hashes = {
        let m = Mount::new(lo.path(), Some("ext4"), "rw");
        fill_tree(m.path(), 11, 12 * MIB);
        hash_tree(m.path())
    };
    drop(lo);
    hashes
}

/// What the target must hold: the mapped extents of the source, zeros elsewhere.
fn reference(img: &Path, out: &Path) {
    let src = SourceDisk::open(img).unwrap();
    let layouts = disk::inspect(&[src]).unwrap();
    copy_mapped(img, &layouts[0].map.aligned_out(512), out, SIZE);
}

fn python_disk_hash(raw: &Path) -> String {
    const SCRIPT: &str = "
import hashlib, sys
outer = hashlib.sha256()
with open(sys.argv[1], 'rb') as f:
    while block := f.read(2 << 20):
        outer.update(hashlib.sha256(block).digest())
print(outer.hexdigest())
";
    run_stdout("python3", &["-c", SCRIPT, s(raw)])
        .trim()
        .to_string()
}

/// An independent chunked raw decoder, in Python, writing a raw image.
fn python_unchunk(stream: &Path, size: u64, raw: &Path) {
    const SCRIPT: &str = "
import struct, sys
src, size, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(src, 'rb') as f, open(dst, 'wb') as out:
    out.truncate(size)
    while True:
        offset, length = struct.unpack('<QI', f.read(12))
        if offset == 0 and length == 0:
            break
        assert offset % 512 == 0 and length % 512 == 0 and offset + length <= size
        out.seek(offset)
        out.write(f.read(length))
    assert f.read() == b'', 'bytes after the terminator'
";
    run(
        "python3",
        &["-c", SCRIPT, s(stream), &size.to_string(), s(raw)],
    );
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn convert_to_dir_writes_vhd_and_chunked_streams_that_hold_the_disk() {
    for tool in [
        "sgdisk",
        "mkfs.ext4",
        "e2fsck",
        "qemu-img",
        "python3",
        "losetup",
    ] {
        assert!(testkit::have(tool), "{tool} is missing: run ci/setup");
    }
    let work = tempdir().unwrap();
    let img = work.path().join("disk.img");
    let files = make_disk(&img);
    let source_hash = sha256_file(&img);
    let refimg = work.path().join("ref.raw");
    reference(&img, &refimg);

    // VHD
    let out = work.path().join("out");
    let to = format!("dir:{}", out.display());
    let stdout = ok(&xenlift(&["convert", "--to", &to, s(&img)]));
    assert!(stdout.contains("disk0.vhd"), "{stdout}");
    let vhd = out.join("disk0.vhd");
    let info = run_stdout("qemu-img", &["info", "--output=json", s(&vhd)]);
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["virtual-size"].as_u64(), Some(SIZE));
    let cmp = run_stdout(
        "qemu-img",
        &["compare", "-f", "vpc", "-F", "raw", s(&vhd), s(&refimg)],
    );
    assert!(cmp.contains("identical"), "{cmp}");

    let m = manifest(&out);
    assert_eq!(m["version"], 1);
    let d = &m["disks"][0];
    assert_eq!(d["source"], s(&img));
    assert_eq!(d["file"], "disk0.vhd");
    assert_eq!(d["format"], "vhd");
    assert_eq!(d["size"].as_u64(), Some(SIZE));
    assert_eq!(
        d["stream_bytes"].as_u64(),
        Some(std::fs::metadata(&vhd).unwrap().len())
    );
    let skipped = d["zero_blocks_skipped"].as_u64().unwrap();
    assert!(skipped > 0, "an unfilled 64 MiB image has zero blocks");
    assert_eq!(
        d["block_hashes"].as_array().unwrap().len() as u64,
        d["blocks_sent"].as_u64().unwrap()
    );
    assert_eq!(d["disk_sha256"], python_disk_hash(&refimg).as_str());

    // The files survive: decode with qemu-img, check and mount the partition.
    let raw = work.path().join("back.raw");
    run(
        "qemu-img",
        &["convert", "-f", "vpc", "-O", "raw", s(&vhd), s(&raw)],
    );
    {
        let lo = Loop::attach(&raw, PART_OFFSET, Some(PART_SIZE), false);
        run("e2fsck", &["-fn", lo.path()]);
        let m = Mount::new(lo.path(), Some("ext4"), "ro");
        assert_eq!(hash_tree(m.path()), files);
    }

    // Chunked raw, decoded by an independent decoder.
    let out2 = work.path().join("out2");
    let to2 = format!("dir:{}", out2.display());
    ok(&xenlift(&[
        "convert",
        "--format",
        "raw-chunked",
        "--to",
        &to2,
        s(&img),
    ]));
    let chunked = out2.join("disk0.chunked");
    let raw2 = work.path().join("unchunked.raw");
    python_unchunk(&chunked, SIZE, &raw2);
    assert_eq!(sha256_file(&raw2), sha256_file(&refimg));
    assert_eq!(manifest(&out2)["disks"][0]["disk_sha256"], d["disk_sha256"]);

    // Existing files are kept unless --force.
    let again = xenlift(&["convert", "--to", &to, s(&img)]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("--force") && err.contains("disk0.vhd"),
        "{err}"
    );
    ok(&xenlift(&[
        "convert",
        "--force",
        "--no-zero-scan",
        "--to",
        &to,
        s(&img),
    ]));
    let m = manifest(&out);
    assert_eq!(m["disks"][0]["zero_blocks_skipped"], 0);
    assert!(m["disks"][0]["zero_scan"].is_null());
    assert_eq!(
        m["disks"][0]["disk_sha256"], d["disk_sha256"],
        "same image either way"
    );

    assert_eq!(
        sha256_file(&img),
        source_hash,
        "the source was never written"
    );
}

#[test]
fn convert_refuses_a_vhd_over_2040_gib_with_advice() {
    let work = tempdir().unwrap();
    let img = work.path().join("huge.img");
    sparse_image(&img, (2040 << 30) + 512);
    let to = format!("dir:{}", work.path().join("out").display());
    // Refused before any read: a zero scan of 2 TiB of holes would take minutes.
    let out = xenlift(&["convert", "--to", &to, s(&img)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("raw-chunked"), "{err}");
}
