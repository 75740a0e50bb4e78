//! Damaged input: truncated images, broken GPT headers, garbage
//! superblocks, overlapping partitions, partitions past the end, EBR loops.
//! Each gives a clear error or a whole-copy fallback that says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use xenlift_disk as disk;

mod common;

use std::path::{Path, PathBuf};

use common::*;
use disk::{ContentKind, MapMethod, SourceDisk, TableKind};

fn gpt_disk(dir: &Path) -> PathBuf {
    let img = dir.join("gpt.img");
    sparse_image(&img, 32 * MIB);
    run(
        "sgdisk",
        &[
            "-n1:2048:+8M",
            "-c1:one",
            "-n2:0:+8M",
            "-c2:two",
            "-n3:0:0",
            "-c3:three",
            img.to_str().unwrap(),
        ],
    );
    img
}

fn corrupt(img: &Path, offset: u64) {
    let mut byte = [0u8; 1];
    let f = std::fs::File::open(img).unwrap();
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut byte, offset).unwrap();
    put(img, offset, &[byte[0] ^ 0x5A]);
}

fn partition_summary(layout: &disk::DiskLayout) -> Vec<(u32, u64, u64, Option<String>)> {
    layout
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition.number,
                p.partition.start,
                p.partition.size,
                p.partition.name.clone(),
            )
        })
        .collect()
}

#[test]
fn bad_primary_gpt_header_uses_the_backup() {
    let dir = tempdir().unwrap();
    let img = gpt_disk(dir.path());
    let intact = inspect_path(&img);
    corrupt(&img, 512 + 40); // first usable LBA: header CRC now wrong
    let layout = inspect_path(&img);
    assert_eq!(partition_summary(&layout), partition_summary(&intact));
    let w = layout.table.warnings.join("; ");
    assert!(
        w.contains("primary GPT header is damaged (header CRC mismatch); using the backup"),
        "{w}"
    );
    assert!(layout.whole_disk_reason.is_none());
    check_map_invariants(&layout, 32 * MIB);
    // sgdisk agrees the primary is damaged and loads the backup.
    let out = std::process::Command::new("sgdisk")
        .arg("-v")
        .arg(&img)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let verify = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        verify.contains("Main header: ERROR") && verify.contains("Backup header: OK"),
        "{verify}"
    );
}

#[test]
fn bad_primary_entry_array_uses_the_backup() {
    let dir = tempdir().unwrap();
    let img = gpt_disk(dir.path());
    let intact = inspect_path(&img);
    corrupt(&img, 1024 + 128 + 60); // inside entry 2's name
    let layout = inspect_path(&img);
    assert_eq!(partition_summary(&layout), partition_summary(&intact));
    let w = layout.table.warnings.join("; ");
    assert!(w.contains("entry array CRC mismatch"), "{w}");
}

#[test]
fn both_gpt_headers_bad_copies_the_whole_disk() {
    let dir = tempdir().unwrap();
    let img = gpt_disk(dir.path());
    corrupt(&img, 512 + 40);
    corrupt(&img, 32 * MIB - 512 + 40);
    let layout = inspect_path(&img);
    assert_eq!(layout.table.kind, TableKind::Gpt);
    let reason = layout.whole_disk_reason.clone().unwrap();
    assert!(reason.contains("both GPT headers are unusable"), "{reason}");
    assert_eq!(layout.copy_bytes(), 32 * MIB);
    assert!(layout.partitions.is_empty());
}

#[test]
fn truncated_images_never_panic() {
    let dir = tempdir().unwrap();
    let img = gpt_disk(dir.path());
    let full = std::fs::read(&img).unwrap();
    for len in [
        1u64,
        100,
        511,
        512,
        1000,
        17 * 1024,
        34 * 512,
        2 * MIB,
        12 * MIB,
        32 * MIB - 512,
    ] {
        let cut = dir.path().join(format!("cut{len}.img"));
        std::fs::write(&cut, &full[..len as usize]).unwrap();
        let layout = inspect_path(&cut);
        check_map_invariants(&layout, len);
        if (17 * 1024..32 * MIB - 33 * 512).contains(&len) {
            // The primary GPT survives; the last partition ran to the old end.
            let reason = layout.whole_disk_reason.clone().unwrap_or_default();
            assert!(
                reason.contains("past the end of the disk"),
                "{len}: {reason}"
            );
        }
        if len == 32 * MIB - 512 {
            // Only the backup header is lost: every partition is intact.
            assert!(layout.whole_disk_reason.is_none());
            let w = layout.table.warnings.join("; ");
            assert!(
                w.contains("backup GPT header at LBA 65535 lies past the end of the disk"),
                "{w}"
            );
        }
    }
    let empty = dir.path().join("empty.img");
    std::fs::write(&empty, b"").unwrap();
    let err = SourceDisk::open(&empty).unwrap_err().to_string();
    assert!(err.contains("the disk is empty"), "{err}");
}

#[test]
fn partitions_past_the_end_copy_the_whole_disk() {
    let dir = tempdir().unwrap();
    let img = dir.path().join("mbr.img");
    sparse_image(&img, 64 * MIB);
    sh(&format!(
        "printf 'start=2048, size=16MiB, type=83\\nsize=40MiB, type=83\\n' | sfdisk -q {}",
        img.display()
    ));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .unwrap()
        .set_len(40 * MIB)
        .unwrap();
    let layout = inspect_path(&img);
    let reason = layout.whole_disk_reason.clone().unwrap();
    assert!(reason.contains("partition 2 ends at byte"), "{reason}");
    assert_eq!(layout.copy_bytes(), 40 * MIB);
    // The partitions are still listed, with the reason on their maps.
    assert_eq!(layout.partitions.len(), 2);
    let map = layout.partitions[1].map.as_ref().unwrap();
    assert_eq!(map.method, MapMethod::Whole);
}

/// Rewrites MBR entry `slot` (1-4): type, start and size in sectors.
fn set_mbr_entry(img: &Path, slot: u64, sys: u8, start: u32, sectors: u32) {
    let at = 446 + (slot - 1) * 16;
    let mut e = [0u8; 16];
    e[4] = sys;
    e[8..12].copy_from_slice(&start.to_le_bytes());
    e[12..16].copy_from_slice(&sectors.to_le_bytes());
    put(img, at, &e);
}

#[test]
fn overlapping_partitions_copy_the_whole_disk() {
    let dir = tempdir().unwrap();
    let img = dir.path().join("overlap.img");
    sparse_image(&img, 64 * MIB);
    sh(&format!("printf 'label: dos\\nstart=2048, size=16MiB, type=83\\nsize=16MiB, type=83\\n' | sfdisk -q {}", img.display()));
    set_mbr_entry(&img, 2, 0x83, 2048 + 8192, 32768);
    let layout = inspect_path(&img);
    let reason = layout.whole_disk_reason.clone().unwrap();
    assert_eq!(reason, "partitions 1 and 2 overlap");
    assert_eq!(layout.copy_bytes(), 64 * MIB);
    // sfdisk sees the same overlap.
    let verify = std::process::Command::new("sfdisk")
        .arg("--verify")
        .arg(&img)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(text.contains("overlap"), "{text}");
}

#[test]
fn partition_over_the_mbr_and_ebr_loops() {
    let dir = tempdir().unwrap();
    let img = dir.path().join("mbr0.img");
    sparse_image(&img, 16 * MIB);
    sh(&format!(
        "printf 'label: dos\\nstart=2048, size=4MiB, type=83\\n' | sfdisk -q {}",
        img.display()
    ));
    set_mbr_entry(&img, 1, 0x83, 0, 8192);
    let reason = inspect_path(&img).whole_disk_reason.unwrap();
    assert_eq!(reason, "partition 1 overlaps the partition table");

    // An extended partition whose EBR links to itself.
    set_mbr_entry(&img, 1, 0x05, 2048, 16384);
    let mut ebr = vec![0u8; 512];
    ebr[446 + 4] = 0x83;
    ebr[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
    ebr[446 + 12..446 + 16].copy_from_slice(&2048u32.to_le_bytes());
    ebr[462 + 4] = 0x05;
    ebr[462 + 8..462 + 12].copy_from_slice(&0u32.to_le_bytes());
    ebr[462 + 12..462 + 16].copy_from_slice(&4096u32.to_le_bytes());
    ebr[510] = 0x55;
    ebr[511] = 0xAA;
    // The link's start 0 would end the chain: point it at a second EBR that
    // points back to the first.
    ebr[462 + 8..462 + 12].copy_from_slice(&4096u32.to_le_bytes());
    put(&img, 2048 * 512, &ebr);
    let mut back = ebr.clone();
    back[462 + 8..462 + 12].copy_from_slice(&1u32.to_le_bytes());
    put(&img, (2048 + 4096) * 512, &back);
    let mut first_again = ebr.clone();
    first_again[462 + 8..462 + 12].copy_from_slice(&4096u32.to_le_bytes());
    put(&img, (2048 + 1) * 512, &first_again);
    let layout = inspect_path(&img);
    let reason = layout.whole_disk_reason.clone().unwrap();
    assert!(
        reason.contains("the EBR chain loops back to LBA"),
        "{reason}"
    );
    assert_eq!(layout.copy_bytes(), 16 * MIB);
}

#[test]
fn garbage_superblocks_are_unknown_and_copied_whole() {
    let dir = tempdir().unwrap();
    let img = gpt_disk(dir.path());
    let ext = make_fs(dir.path(), "ext.img", 8 * MIB, "mkfs.ext4 -q -F {}");
    let xfs_src = make_fs(dir.path(), "xfs.img", 320 * MIB, "mkfs.xfs -q -f {}");
    // Partition 1: ext4 with its superblock checksum broken.
    put_file(&img, MIB, &ext);
    corrupt(&img, MIB + 1024 + 0x20);
    // Partition 2: the first 8 MiB of an xfs with a broken superblock CRC.
    let head = std::fs::read(&xfs_src).unwrap();
    put(&img, 9 * MIB, &head[..8 * MIB as usize]);
    corrupt(&img, 9 * MIB + 300);
    // Partition 3: random bytes.
    let mut rng = testkit::Rng::new(7);
    let mut noise = vec![0u8; 4 * MIB as usize];
    rng.fill(&mut noise);
    put(&img, 17 * MIB, &noise);

    let layout = inspect_path(&img);
    assert!(layout.whole_disk_reason.is_none());
    for part in &layout.partitions {
        let content = part.content().unwrap();
        assert_eq!(
            content.kind,
            ContentKind::Unknown,
            "partition {}",
            part.partition.number
        );
        let map = part.map.as_ref().unwrap();
        assert_eq!(map.method, MapMethod::Whole);
        assert_eq!(map.copy_bytes(), part.partition.size);
    }
    // The independent readers refuse them too (blkid 2.38 checks neither
    // checksum): e2fsprogs rejects the ext4 superblock, xfs_db reports the
    // xfs superblock CRC error.
    let bytes = std::fs::read(&img).unwrap();
    let ext_part = dir.path().join("ext-part.img");
    std::fs::write(&ext_part, &bytes[MIB as usize..9 * MIB as usize]).unwrap();
    let dump = std::process::Command::new("dumpe2fs")
        .arg("-h")
        .arg(&ext_part)
        .output()
        .unwrap();
    assert!(
        !dump.status.success(),
        "dumpe2fs read the damaged superblock"
    );
    let xfs_part = dir.path().join("xfs-part.img");
    std::fs::copy(&xfs_src, &xfs_part).unwrap();
    put(&xfs_part, 0, &bytes[9 * MIB as usize..10 * MIB as usize]);
    let db = std::process::Command::new("xfs_db")
        .args(["-r", "-c", "sb 0", "-c", "print magicnum"])
        .arg(&xfs_part)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&db.stderr);
    assert!(text.contains("CRC error"), "{text}");
    check_map_invariants(&layout, 32 * MIB);
}

#[test]
fn whole_disk_garbage_is_unknown() {
    let dir = tempdir().unwrap();
    let img = dir.path().join("noise.img");
    let mut rng = testkit::Rng::new(42);
    let mut noise = vec![0u8; 4 * MIB as usize];
    rng.fill(&mut noise);
    noise[510] = 0x55;
    noise[511] = 0xAA;
    std::fs::write(&img, &noise).unwrap();
    let layout = inspect_path(&img);
    check_map_invariants(&layout, 4 * MIB);
    // Whatever it decides, every byte it does not understand is copied.
    assert_eq!(layout.copy_bytes(), 4 * MIB);
}
