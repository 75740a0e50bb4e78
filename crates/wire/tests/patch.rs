//! Patching written images with changed ranges, checked by qemu-img and
//! vhdiinfo (VHD) and the test decoder (chunked raw).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::{self, File, OpenOptions};
use std::path::Path;

use extents::{Extent, ExtentMap, ReadAt};
use sha2::{Digest, Sha256};
use testkit::{run_stdout, tempdir, Rng};
use xenlift_wire::{patch_image, BlockPlan, EncodedStream, Format, BLOCK_SIZE};

const MIB: u64 = 1 << 20;

/// 9 MiB + 1 KiB disk: data in blocks 0, 1 and the short last block 4;
/// blocks 2 and 3 hold data the map leaves out (free space), so the
/// faithful copy reads zeros there.
fn source() -> (Vec<u8>, ExtentMap) {
    let size = 9 * MIB + 1024;
    let mut disk = vec![0u8; size as usize];
    Rng::new(7).fill(&mut disk);
    let map = ExtentMap::from_unsorted(vec![
        Extent::new(0, 3 * MIB),
        Extent::new(8 * MIB, MIB + 1024),
    ]);
    (disk, map)
}

fn write_image(disk: &[u8], map: &ExtentMap, format: Format, out: &Path) {
    let plan = BlockPlan::full(disk.len() as u64, map);
    let stream = EncodedStream::start(disk.to_vec(), plan, format).unwrap();
    let mut f = File::create(out).unwrap();
    stream.write_to(&mut f).unwrap();
}

/// The view after a fix-up: changes in a sent block, across a block
/// boundary, inside unsent blocks, one odd byte, and the disk's last sector.
fn fixed_up(disk: &[u8]) -> (Vec<u8>, ExtentMap) {
    let mut view = disk.to_vec();
    let writes: [(u64, u64); 5] = [
        (100_000, 3000),
        (2 * MIB - 700, 1400),
        (5 * MIB + 3, 1),
        (6 * MIB, 70_000),
        (view.len() as u64 - 512, 512),
    ];
    let mut rng = Rng::new(99);
    for (at, len) in writes {
        rng.fill(&mut view[at as usize..(at + len) as usize]);
    }
    let changed =
        ExtentMap::from_unsorted(writes.iter().map(|&(o, l)| Extent::new(o, l)).collect());
    (view, changed)
}

/// What the target holds after the patch: the faithful copy (map ranges of
/// the source, zeros elsewhere) with the changed sectors of the view.
fn expected(disk: &[u8], map: &ExtentMap, view: &[u8], changed: &ExtentMap) -> Vec<u8> {
    let mut out = vec![0u8; disk.len()];
    for e in map {
        let r = e.offset as usize..(e.offset + e.len) as usize;
        out[r.clone()].copy_from_slice(&disk[r]);
    }
    for e in &changed.aligned_out(512) {
        let r = e.offset as usize..(e.offset + e.len) as usize;
        out[r.clone()].copy_from_slice(&view[r]);
    }
    out
}

fn check_hashes(expect: &[u8], hashes: &[(u64, [u8; 32])], changed: &ExtentMap) {
    let touched: Vec<u64> = {
        let mut v: Vec<u64> = changed
            .iter()
            .flat_map(|e| e.offset / BLOCK_SIZE..=(e.offset + e.len - 1) / BLOCK_SIZE)
            .collect();
        v.dedup();
        v
    };
    assert_eq!(hashes.iter().map(|h| h.0).collect::<Vec<_>>(), touched);
    for (i, h) in hashes {
        let start = (*i * BLOCK_SIZE) as usize;
        let end = (start + BLOCK_SIZE as usize).min(expect.len());
        let want: [u8; 32] = Sha256::digest(&expect[start..end]).into();
        assert_eq!(*h, want, "hash of block {i}");
    }
}

#[test]
fn vhd_patch_reads_back_in_qemu_img_and_vhdiinfo() {
    let dir = tempdir().unwrap();
    let (disk, map) = source();
    let vhd = dir.path().join("disk.vhd");
    write_image(&disk, &map, Format::Vhd, &vhd);
    let (view, changed) = fixed_up(&disk);

    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&vhd)
        .unwrap();
    let report = patch_image(&f, Format::Vhd, &changed, &view).unwrap();
    drop(f);
    // Blocks 2 and 3 were not in the image; 0, 1 and 4 were.
    assert_eq!((report.blocks_patched, report.blocks_added), (3, 2));
    assert_eq!(report.file_len, fs::metadata(&vhd).unwrap().len());

    let expect = expected(&disk, &map, &view, &changed);
    let raw = dir.path().join("expect.raw");
    fs::write(&raw, &expect).unwrap();
    let out = run_stdout(
        "qemu-img",
        &[
            "compare",
            "-f",
            "raw",
            "-F",
            "vpc",
            raw.to_str().unwrap(),
            vhd.to_str().unwrap(),
        ],
    );
    assert!(out.contains("identical"), "qemu-img compare: {out}");
    let info = run_stdout("vhdiinfo", &[vhd.to_str().unwrap()]);
    assert!(info.contains("Dynamic"), "vhdiinfo: {info}");
    // (The strict test decoder wants blocks in virtual order, as the
    // encoder writes them; appended blocks are in file order only, which
    // is what XAPI's forward reader needs.)
    check_hashes(&expect, &report.block_hashes, &changed);
}

#[test]
fn chunked_patch_appends_frames() {
    let dir = tempdir().unwrap();
    let (disk, map) = source();
    let img = dir.path().join("disk.chunked");
    write_image(&disk, &map, Format::RawChunked, &img);
    let (view, changed) = fixed_up(&disk);

    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&img)
        .unwrap();
    let report = patch_image(&f, Format::RawChunked, &changed, &view).unwrap();
    drop(f);
    let expect = expected(&disk, &map, &view, &changed);
    // The faithful part passes the strict decoder; the appended frames
    // come after it, each applied as XAPI does: written where it says.
    let stream = fs::read(&img).unwrap();
    let mut decoded = vec![0u8; disk.len()];
    let mut pos = 0usize;
    loop {
        let offset = u64::from_le_bytes(stream[pos..pos + 8].try_into().unwrap()) as usize;
        let len = u32::from_le_bytes(stream[pos + 8..pos + 12].try_into().unwrap()) as usize;
        pos += 12;
        if offset == 0 && len == 0 {
            break;
        }
        assert_eq!((offset % 512, len % 512), (0, 0), "frames stay aligned");
        decoded[offset..offset + len].copy_from_slice(&stream[pos..pos + len]);
        pos += len;
    }
    assert_eq!(pos, stream.len(), "nothing after the terminator");
    assert!(decoded == expect, "applying the frames in order");
    check_hashes(&expect, &report.block_hashes, &changed);
}

#[test]
fn refuses_what_it_did_not_write() {
    let dir = tempdir().unwrap();
    let junk = dir.path().join("junk");
    fs::write(&junk, vec![1u8; 8192]).unwrap();
    let view = vec![0u8; 4 * MIB as usize];
    let changed = ExtentMap::single(0, 512);
    for format in [Format::Vhd, Format::RawChunked] {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&junk)
            .unwrap();
        let err = patch_image(&f, format, &changed, &view).unwrap_err();
        assert!(err.to_string().contains("cannot patch"), "{err}");
    }
    assert_eq!(fs::read(&junk).unwrap(), vec![1u8; 8192], "left as it was");
    let _ = view.size();
}
