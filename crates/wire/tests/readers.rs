//! Streams written to files and read back by independent readers: qemu-img
//! (info, compare), libvhdi's vhdiinfo, Python for the disk hash, and the
//! test decoder for chunked raw.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod decode;

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use extents::{Extent, ExtentMap, FileAt};
use testkit::{copy_mapped, run, run_stdout, sparse_image, tempdir, Rng};
use xenlift_wire::{BlockPlan, EncodedStream, Format, StreamReport, BLOCK_SIZE};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// A sparse source image with random data written on `data` extents.
fn make_source(path: &Path, size: u64, data: &[(u64, u64)], seed: u64) {
    sparse_image(path, size);
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    let mut rng = Rng::new(seed);
    for &(offset, len) in data {
        let mut buf = vec![0u8; len as usize];
        rng.fill(&mut buf);
        f.write_all_at(&buf, offset).unwrap();
    }
}

fn map(v: &[(u64, u64)]) -> ExtentMap {
    ExtentMap::from_unsorted(v.iter().map(|&(o, l)| Extent::new(o, l)).collect())
}

/// Encodes `src` with `plan` into `out` and returns the report.
fn encode(src: &Path, plan: BlockPlan, format: Format, out: &Path) -> StreamReport {
    let reader = FileAt::from_file(File::open(src).unwrap()).unwrap();
    let stream = EncodedStream::start(reader, plan, format).unwrap();
    let promised = stream.length();
    let mut file = File::create(out).unwrap();
    let report = stream.write_to(&mut file).unwrap();
    assert_eq!(fs::metadata(out).unwrap().len(), promised);
    report
}

fn qemu_virtual_size(vhd: &Path) -> u64 {
    let json = run_stdout(
        "qemu-img",
        &["info", "--output=json", vhd.to_str().unwrap()],
    );
    let info: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(info["format"], "vpc", "{json}");
    info["virtual-size"].as_u64().unwrap()
}

fn qemu_compare(vhd: &Path, raw: &Path) {
    let out = run_stdout(
        "qemu-img",
        &[
            "compare",
            "-f",
            "vpc",
            "-F",
            "raw",
            vhd.to_str().unwrap(),
            raw.to_str().unwrap(),
        ],
    );
    assert!(out.contains("identical"), "qemu-img compare: {out}");
}

/// The checker bites: one changed byte in the last block's data fails it.
fn assert_compare_sees_a_flipped_byte(vhd: &Path, raw: &Path) {
    let bad = vhd.with_extension("bad");
    fs::copy(vhd, &bad).unwrap();
    let f = fs::OpenOptions::new().write(true).open(&bad).unwrap();
    let at = fs::metadata(&bad).unwrap().len() - 512 - BLOCK_SIZE + 100;
    f.write_all_at(&[0x5a], at).unwrap();
    let status = std::process::Command::new("qemu-img")
        .args(["compare", "-f", "vpc", "-F", "raw"])
        .arg(&bad)
        .arg(raw)
        .output()
        .unwrap();
    assert_eq!(
        status.status.code(),
        Some(1),
        "qemu-img compare must see the change"
    );
}

fn vhdiinfo(vhd: &Path) -> String {
    let out = run_stdout("vhdiinfo", &[vhd.to_str().unwrap()]);
    assert!(out.contains("Dynamic"), "vhdiinfo: {out}");
    out
}

/// The disk hash as the README defines it, computed by Python's hashlib.
fn python_disk_hash(raw: &Path) -> String {
    const SCRIPT: &str = "
import hashlib, sys
outer = hashlib.sha256()
with open(sys.argv[1], 'rb') as f:
    while True:
        block = f.read(2 * 1024 * 1024)
        if not block:
            break
        outer.update(hashlib.sha256(block).digest())
print(outer.hexdigest())
";
    run_stdout("python3", &["-c", SCRIPT, raw.to_str().unwrap()])
        .trim()
        .to_string()
}

struct Case {
    _dir: testkit::TempDir,
    src: PathBuf,
    reference: PathBuf,
    out: PathBuf,
}

fn case(size: u64, data: &[(u64, u64)], mapped: &ExtentMap) -> Case {
    let dir = tempdir().unwrap();
    let src = dir.path().join("src.raw");
    let reference = dir.path().join("ref.raw");
    make_source(&src, size, data, size);
    copy_mapped(
        &src,
        &mapped.aligned_out(512),
        &reference,
        size.div_ceil(512) * 512,
    );
    let out = dir.path().join("out");
    Case {
        _dir: dir,
        src,
        reference,
        out,
    }
}

#[test]
fn one_sector_disk() {
    let m = map(&[(0, 512)]);
    let c = case(512, &[(0, 512)], &m);
    let report = encode(&c.src, BlockPlan::full(512, &m), Format::Vhd, &c.out);
    assert_eq!(report.blocks_sent, 1);
    assert_eq!(qemu_virtual_size(&c.out), 512);
    qemu_compare(&c.out, &c.reference);
    vhdiinfo(&c.out);
}

#[test]
fn size_not_a_multiple_of_the_block_size_with_zero_blocks() {
    let size = 10 * MIB + 1536;
    // Data in blocks 0, 2 and the short last block; block 3 is mapped but zero.
    let data = [
        (4096, 100_000),
        (4 * MIB + 512, 2 * MIB - 1024),
        (10 * MIB + 1024, 512),
    ];
    let m = map(&[
        (0, 200_000),
        (4 * MIB, 2 * MIB + 8192),
        (6 * MIB + 4096, MIB),
        (10 * MIB, 1536),
    ]);
    let c = case(size, &data, &m);
    let reader = FileAt::from_file(File::open(&c.src).unwrap()).unwrap();
    let (plan, scan) = BlockPlan::full(size, &m)
        .without_zero_blocks(&reader)
        .unwrap();
    assert_eq!(scan.zero_blocks, 1, "block 3 holds no data");
    let report = encode(&c.src, plan, Format::Vhd, &c.out);
    assert_eq!(report.zero_blocks_skipped, 1);
    assert_eq!(report.blocks_sent, 3);

    assert_eq!(qemu_virtual_size(&c.out), size);
    qemu_compare(&c.out, &c.reference);
    assert_compare_sees_a_flipped_byte(&c.out, &c.reference);
    let info = vhdiinfo(&c.out);
    assert!(
        info.contains(&size.to_string()),
        "vhdiinfo media size: {info}"
    );

    // The manifest's disk hash is the one an independent checker computes
    // from the image the target holds.
    let disk = hex::encode(report.disk_sha256.unwrap());
    assert_eq!(disk, python_disk_hash(&c.reference));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["block_hashes"][0][0], 0);
    assert_eq!(json["block_hashes"].as_array().unwrap().len(), 3);
}

#[test]
fn chunked_raw_file_decodes_to_the_reference() {
    let size = 9 * MIB + 512;
    let data = [(0, MIB), (4 * MIB - 4096, 8192), (9 * MIB, 512)];
    let m = map(&[(0, MIB), (4 * MIB - 5000, 10_000), (9 * MIB, 512)]);
    let c = case(size, &data, &m);
    let report = encode(
        &c.src,
        BlockPlan::full(size, &m),
        Format::RawChunked,
        &c.out,
    );
    let stream = fs::read(&c.out).unwrap();
    let mut image = vec![0u8; size as usize];
    let frames = decode::apply_chunked(&stream, &mut image);
    assert_eq!(
        frames.len(),
        4,
        "the range across the block boundary is two frames"
    );
    assert!(image == fs::read(&c.reference).unwrap());
    assert_eq!(
        hex::encode(report.disk_sha256.unwrap()),
        python_disk_hash(&c.reference)
    );
}

#[test]
fn largest_vhd_2040_gib() {
    let size = 2040 * GIB;
    let data = [
        (0, MIB),
        (1000 * GIB + 12345 * 512, 3 * MIB),
        (size - 2 * MIB, 2 * MIB),
    ];
    let m = map(&data);
    let c = case(size, &data, &m);
    let report = encode(&c.src, BlockPlan::full(size, &m), Format::Vhd, &c.out);
    // 3 MiB from 3.01 MiB into a block: two blocks.
    assert_eq!(report.blocks_sent, 1 + 2 + 1);
    // Footer, header, a 4 MiB BAT, four blocks and the footer.
    let bat = (size / BLOCK_SIZE) * 4;
    assert_eq!(
        report.stream_bytes,
        1536 + bat + 4 * (512 + BLOCK_SIZE) + 512
    );
    assert_eq!(qemu_virtual_size(&c.out), size);
    qemu_compare(&c.out, &c.reference);
    vhdiinfo(&c.out);
}

#[test]
fn past_2040_gib_vhd_is_refused_and_chunked_raw_works() {
    let size = 2040 * GIB + 512;
    let m = map(&[(size - 512, 512)]);
    let c = case(size, &[(size - 512, 512)], &m);
    let reader = FileAt::from_file(File::open(&c.src).unwrap()).unwrap();
    let err = EncodedStream::start(reader, BlockPlan::full(size, &m), Format::Vhd).unwrap_err();
    assert!(
        err.to_string().contains("use the raw-chunked format"),
        "{err}"
    );
    let report = encode(
        &c.src,
        BlockPlan::full(size, &m),
        Format::RawChunked,
        &c.out,
    );
    assert_eq!(report.stream_bytes, 12 + 512 + 12);
    let stream = fs::read(&c.out).unwrap();
    let offset = u64::from_le_bytes(stream[..8].try_into().unwrap());
    assert_eq!(offset, size - 512);
    let mut last = vec![0u8; 512];
    File::open(&c.src)
        .unwrap()
        .read_exact_at(&mut last, size - 512)
        .unwrap();
    assert_eq!(&stream[12..12 + 512], &last[..]);
}

#[test]
fn tools_are_installed() {
    // The readers above must exist on CI: a missing one is a setup problem.
    for tool in ["qemu-img", "vhdiinfo", "python3"] {
        assert!(testkit::have(tool), "{tool} is missing: run ci/setup");
    }
    run("qemu-img", &["--version"]);
}
