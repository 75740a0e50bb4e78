//! The ext2/3/4 mapper against filesystems made by the real mke2fs: copying
//! only the mapped extents must give a copy that e2fsck passes and whose
//! files hash the same, and the used bytes must be exactly what dumpe2fs
//! counts. Corrupt or unclean filesystems must give a clear doubt.
//! Needs root (loop devices, mount).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fsmap;

use extents::{Extent, ExtentMap, ReadAt};
use fsmap::{Fixture, Kind};
use xenlift_disk::fs::{ext, MapError};

const MIB: u64 = 1 << 20;

/// What dumpe2fs says: block size, blocks, free blocks, and per group
/// (first block, last block, free blocks).
struct Dump {
    block_size: u64,
    block_count: u64,
    free_blocks: u64,
    cluster_ratio: u64,
    groups: Vec<(u64, u64, u64)>,
}

fn dumpe2fs(fix: &Fixture) -> Dump {
    let text = fsmap::stdout("dumpe2fs", &[fix.image.to_str().unwrap()]);
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().parse().unwrap())
    };
    let block_size = field("Block size:").unwrap();
    let cluster_ratio = field("Cluster size:").map_or(1, |c| c / block_size);
    let mut groups = Vec::new();
    let mut current: Option<(u64, u64)> = None;
    for line in text.lines() {
        let group_line = line
            .strip_prefix("Group ")
            .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()));
        if let Some(rest) = group_line {
            let range = rest
                .split("(Blocks ")
                .nth(1)
                .unwrap()
                .split(')')
                .next()
                .unwrap();
            let (a, b) = range.split_once('-').unwrap();
            current = Some((a.parse().unwrap(), b.parse().unwrap()));
        } else if let Some((a, b)) = current {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.len() > 2 && words[1] == "free" && words[2].starts_with("blocks")
                || words.len() > 2 && words[1] == "free" && words[2].starts_with("clusters")
            {
                groups.push((a, b, words[0].parse().unwrap()));
                current = None;
            }
        }
    }
    Dump {
        block_size,
        block_count: field("Block count:").unwrap(),
        free_blocks: field("Free blocks:").unwrap(),
        cluster_ratio,
        groups,
    }
}

/// The map covers exactly the blocks dumpe2fs does not count free: every
/// piece of metadata the map adds on purpose is marked used in the bitmaps
/// (or, for BLOCK_UNINIT groups, in dumpe2fs's computed counts), and block 0
/// before a 1 KiB-block group 0 counts as used too. So the expected
/// difference is zero, in total and per group.
fn assert_counts_match(fix: &Fixture, map: &ExtentMap) {
    let d = dumpe2fs(fix);
    let bs = d.block_size;
    assert_eq!(
        map.total_bytes(),
        (d.block_count - d.free_blocks) * bs,
        "used bytes versus dumpe2fs ({} blocks, {} free)",
        d.block_count,
        d.free_blocks
    );
    assert!(!d.groups.is_empty());
    for (i, &(first, last, free)) in d.groups.iter().enumerate() {
        let blocks = last - first + 1;
        let range = Extent::new(first * bs, blocks * bs);
        let free_blocks = (free * d.cluster_ratio).min(blocks);
        assert_eq!(
            map.bytes_in(range),
            (blocks - free_blocks) * bs,
            "group {i} (blocks {first}-{last}, {free} free)"
        );
    }
    assert!(
        map.end() <= d.block_count * bs,
        "map stays inside the filesystem"
    );
}

/// Makes, fills, maps and checks one filesystem.
fn round_trip(mkfs: &[&str], size: u64, fill_bytes: u64, seed: u64) -> (Fixture, ExtentMap) {
    let fix = Fixture::build(mkfs, size, "ext4", |dir| {
        fsmap::fill_fragmented(dir, seed, fill_bytes, 400)
    });
    testkit::run("e2fsck", &["-fn", fix.image.to_str().unwrap()]);
    let map = fix.map(Kind::Ext);
    assert_counts_match(&fix, &map);
    fix.check_copy(&map, &["e2fsck", "-fn"], "ext4", "ro");
    (fix, map)
}

#[test]
fn ext2_default() {
    round_trip(&["mkfs.ext2", "-q", "-F"], 512 * MIB, 80 * MIB, 1);
}

#[test]
fn ext3_default() {
    round_trip(&["mkfs.ext3", "-q", "-F"], 512 * MIB, 80 * MIB, 2);
}

#[test]
fn ext4_default() {
    let (fix, map) = round_trip(&["mkfs.ext4", "-q", "-F"], 512 * MIB, 120 * MIB, 3);
    assert!(
        map.total_bytes() < fix.size / 2,
        "most of the volume is free"
    );
}

#[test]
fn ext4_1k_blocks() {
    round_trip(
        &["mkfs.ext4", "-q", "-F", "-b", "1024"],
        300 * MIB,
        80 * MIB,
        4,
    );
}

#[test]
fn ext4_bigalloc() {
    round_trip(
        &["mkfs.ext4", "-q", "-F", "-O", "bigalloc", "-C", "65536"],
        512 * MIB,
        80 * MIB,
        5,
    );
}

#[test]
fn ext4_meta_bg() {
    round_trip(
        &["mkfs.ext4", "-q", "-F", "-O", "meta_bg,^resize_inode"],
        512 * MIB,
        80 * MIB,
        6,
    );
}

#[test]
fn ext4_no_flex_bg() {
    round_trip(
        &["mkfs.ext4", "-q", "-F", "-O", "^flex_bg"],
        512 * MIB,
        80 * MIB,
        7,
    );
}

#[test]
fn ext4_gdt_csum_32bit_descriptors() {
    round_trip(
        &[
            "mkfs.ext4",
            "-q",
            "-F",
            "-O",
            "^metadata_csum,^64bit,uninit_bg",
        ],
        512 * MIB,
        80 * MIB,
        8,
    );
}

#[test]
fn ext4_64bit_2k_blocks() {
    round_trip(
        &["mkfs.ext4", "-q", "-F", "-O", "64bit", "-b", "2048"],
        512 * MIB,
        80 * MIB,
        9,
    );
}

#[test]
fn ext4_sparse_super2_and_mmp() {
    round_trip(
        &["mkfs.ext4", "-q", "-F", "-O", "sparse_super2,mmp"],
        1024 * MIB,
        60 * MIB,
        12,
    );
}

#[test]
fn ext4_big_sparse_lazy_itable_init() {
    let (fix, map) = round_trip(
        &["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=1"],
        16 << 30,
        40 * MIB,
        10,
    );
    assert!(map.total_bytes() < fix.size / 8);
}

#[test]
fn filesystem_smaller_than_its_volume_maps_only_itself() {
    // 300 MiB of filesystem on a 512 MiB volume.
    let (fix, map) = round_trip(
        &["mkfs.ext4", "-q", "-F", "-b", "4096", "IMG", "76800"],
        512 * MIB,
        60 * MIB,
        11,
    );
    assert!(map.end() <= 300 * MIB);
    assert!(fix.size > 300 * MIB);
}

// ---- doubt ----

fn doubt_of(vol: &dyn ReadAt) -> String {
    match ext::map(vol) {
        Err(MapError::Doubt(reason)) => reason,
        other => panic!("expected doubt, got {other:?}"),
    }
}

fn small(features: &str) -> Fixture {
    Fixture::mkfs_only(
        &["mkfs.ext4", "-q", "-F", "-b", "4096", "-O", features],
        64 * MIB,
    )
}

/// Byte offset of group 0's descriptor (4 KiB blocks: block 1).
const GDT: u64 = 4096;

#[test]
fn unknown_incompat_feature_is_doubt() {
    let fix = small("metadata_csum");
    let mut f = fix.read(1024 + 0x60, 4);
    f[3] |= 0x40;
    fix.patch(1024 + 0x60, &f);
    let reason = doubt_of(&fix.open());
    assert!(
        reason.contains("unknown incompatible feature flags 0x40000000"),
        "{reason}"
    );
}

#[test]
fn unknown_ro_compat_feature_is_doubt() {
    let fix = small("^metadata_csum");
    let mut f = fix.read(1024 + 0x64, 4);
    f[0] |= 0x80; // HAS_SNAPSHOT
    fix.patch(1024 + 0x64, &f);
    let reason = doubt_of(&fix.open());
    assert!(
        reason.contains("read-only-compatible feature flags 0x80"),
        "{reason}"
    );
}

#[test]
fn superblock_checksum_is_verified() {
    let fix = small("metadata_csum");
    fix.patch(1024 + 0x78, b"renamed!"); // volume name
    let reason = doubt_of(&fix.open());
    assert!(reason.contains("superblock checksum mismatch"), "{reason}");
}

#[test]
fn descriptor_checksums_are_verified() {
    for features in ["metadata_csum", "^metadata_csum,uninit_bg"] {
        let fix = small(features);
        let mut d = fix.read(GDT + 0x10, 2); // used dirs count
        d[0] ^= 0x55;
        fix.patch(GDT + 0x10, &d);
        let reason = doubt_of(&fix.open());
        assert!(
            reason.contains("group 0 descriptor checksum mismatch"),
            "{features}: {reason}"
        );
    }
}

#[test]
fn bitmap_checksum_is_verified() {
    let fix = small("metadata_csum,^flex_bg");
    let bitmap = u64::from(u32::from_le_bytes(fix.read(GDT, 4).try_into().unwrap()));
    let mut b = fix.read(bitmap * 4096 + 1000, 1);
    b[0] ^= 0x01;
    fix.patch(bitmap * 4096 + 1000, &b);
    let reason = doubt_of(&fix.open());
    assert!(
        reason.contains("block bitmap checksum mismatch"),
        "{reason}"
    );
}

#[test]
fn bitmap_pointer_outside_the_filesystem_is_doubt() {
    let fix = Fixture::mkfs_only(&["mkfs.ext2", "-q", "-F", "-b", "4096"], 256 * MIB);
    fix.patch(GDT + 32, &(1u32 << 30).to_le_bytes()); // group 1's block bitmap
    let reason = doubt_of(&fix.open());
    assert!(
        reason.contains("group 1 block bitmap at block 1073741824 lies outside"),
        "{reason}"
    );
}

#[test]
fn bitmap_pointer_to_another_block_is_caught_by_counts() {
    let fix = Fixture::mkfs_only(&["mkfs.ext2", "-q", "-F", "-b", "4096"], 256 * MIB);
    // Group 1's bitmap pointed at group 0's (which has other bits set).
    let group0 = fix.read(GDT, 4);
    fix.patch(GDT + 32, &group0);
    let reason = doubt_of(&fix.open());
    assert!(
        reason.contains("group 1: the descriptor counts"),
        "{reason}"
    );
}

#[test]
fn free_count_mismatch_is_doubt() {
    let fix = Fixture::mkfs_only(&["mkfs.ext2", "-q", "-F", "-b", "4096"], 256 * MIB);
    let mut c = fix.read(GDT + 0xC, 2);
    c[0] = c[0].wrapping_sub(1);
    fix.patch(GDT + 0xC, &c);
    let reason = doubt_of(&fix.open());
    assert!(
        reason.contains("group 0: the descriptor counts"),
        "{reason}"
    );
}

#[test]
fn truncated_volume_is_doubt() {
    let fix = small("metadata_csum");
    let vol = extents::Window::new(fix.open(), 0, 40 * MIB);
    let reason = doubt_of(&vol);
    assert!(
        reason.contains("but its volume only 41943040 bytes"),
        "{reason}"
    );
}

#[test]
fn garbage_is_doubt_not_panic() {
    let vol = vec![0u8; 8192];
    assert!(doubt_of(&vol).contains("no ext superblock magic"));
    let vol = vec![0u8; 100];
    assert!(doubt_of(&vol).contains("cannot read the superblock"));
}

#[test]
fn unclean_journal_is_doubt() {
    fsmap::need(&["xfs_io"]);
    let fix = small("metadata_csum");
    {
        let _guard = fsmap::LOOP_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let dev = testkit::Loop::attach(&fix.image, 0, None, false);
        let mnt = testkit::Mount::new(dev.path(), Some("ext4"), "rw");
        testkit::fill_tree(mnt.path(), 12, 4 * MIB);
        std::fs::write(mnt.path().join("late"), b"written just before the crash").unwrap();
        // Shut the filesystem down as a crash would, without flushing the log.
        testkit::run(
            "xfs_io",
            &["-x", "-c", "shutdown", mnt.path().to_str().unwrap()],
        );
    }
    let reason = doubt_of(&fix.open());
    assert!(reason.contains("the journal needs recovery"), "{reason}");
}

#[test]
fn harness_catches_a_lossy_map() {
    let fix = Fixture::build(&["mkfs.ext4", "-q", "-F"], 128 * MIB, "ext4", |dir| {
        testkit::fill_tree(dir, 13, 30 * MIB)
    });
    let map = fix.map(Kind::Ext);
    fix.check_copy(&map, &["e2fsck", "-fn"], "ext4", "ro");
    fsmap::assert_loss_detected(&fix, &map, &["e2fsck", "-fn"], "ext4");
}

#[test]
fn mutated_images_never_panic() {
    let with_csum = Fixture::build(
        &["mkfs.ext4", "-q", "-F", "-b", "1024"],
        64 * MIB,
        "ext4",
        |dir| fsmap::fill_fragmented(dir, 14, 8 * MIB, 200),
    );
    let without = Fixture::build(
        &[
            "mkfs.ext4",
            "-q",
            "-F",
            "-b",
            "1024",
            "-O",
            "^metadata_csum,^uninit_bg",
        ],
        64 * MIB,
        "ext4",
        |dir| fsmap::fill_fragmented(dir, 15, 8 * MIB, 200),
    );
    let ext2 = Fixture::mkfs_only(&["mkfs.ext2", "-q", "-F", "-b", "4096"], 256 * MIB);
    fsmap::mutation_campaign(Kind::Ext, &[&with_csum, &without, &ext2], 3000);
}
