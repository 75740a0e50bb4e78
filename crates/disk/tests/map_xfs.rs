//! The xfs mapper against filesystems made by the real mkfs.xfs: copying
//! only the mapped extents must give a copy that xfs_repair -n passes and
//! whose files hash the same, and the used bytes must be exactly what
//! xfs_db counts, AGFL blocks aside. Corrupt or unclean filesystems must
//! give a clear doubt. Needs root (loop devices, mount).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fsmap;

use extents::{ExtentMap, ReadAt};
use fsmap::{Fixture, Kind};
use xenlift_disk::fs::{xfs, MapError};

const MIB: u64 = 1 << 20;

fn db(fix: &Fixture, commands: &[&str]) -> String {
    let mut args = vec!["-r"];
    for c in commands {
        args.extend(["-c", c]);
    }
    args.push(fix.image.to_str().unwrap());
    fsmap::stdout("xfs_db", &args)
}

/// `name = value` fields of xfs_db output, in order.
fn fields(text: &str, name: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(" = "))
        .map(|v| v.trim().parse().unwrap())
        .collect()
}

struct Counts {
    block_size: u64,
    dblocks: u64,
    fdblocks: u64,
    agcount: u64,
    freesp_total: u64,
    flcount: u64,
    btreeblks: u64,
    max_bno_level: u64,
}

fn counts(fix: &Fixture) -> Counts {
    let sb = db(fix, &["sb 0", "p blocksize dblocks fdblocks agcount"]);
    let agcount = fields(&sb, "agcount")[0];
    let mut cmds = Vec::new();
    for ag in 0..agcount {
        cmds.push(format!("agf {ag}"));
        cmds.push("p flcount btreeblks bnolevel".to_string());
    }
    let refs: Vec<&str> = cmds.iter().map(String::as_str).collect();
    let agfs = db(fix, &refs);
    let freesp = db(fix, &["freesp -s"]);
    let total = freesp
        .lines()
        .find_map(|l| l.strip_prefix("total free blocks "))
        .map(|v| v.trim().parse().unwrap())
        .unwrap();
    Counts {
        block_size: fields(&sb, "blocksize")[0],
        dblocks: fields(&sb, "dblocks")[0],
        fdblocks: fields(&sb, "fdblocks")[0],
        agcount,
        freesp_total: total,
        flcount: fields(&agfs, "flcount").iter().sum(),
        btreeblks: fields(&agfs, "btreeblks").iter().sum(),
        max_bno_level: fields(&agfs, "bnolevel").into_iter().max().unwrap(),
    }
}

/// xfs_db's `freesp` counts AGFL blocks as free and the superblock's
/// fdblocks counts AGFL and free-space tree blocks as free; the map copies
/// both (they are not in the bnobt). So, exactly:
/// used = dblocks - freesp + AGFL blocks = dblocks - fdblocks + AGFL + btreeblks.
fn assert_counts_match(fix: &Fixture, map: &ExtentMap) -> Counts {
    let c = counts(fix);
    let used_blocks = map.total_bytes() / c.block_size;
    assert_eq!(map.total_bytes() % c.block_size, 0);
    assert_eq!(
        used_blocks,
        c.dblocks - c.freesp_total + c.flcount,
        "versus xfs_db freesp ({} free, {} on AGFLs)",
        c.freesp_total,
        c.flcount
    );
    assert_eq!(
        used_blocks,
        c.dblocks - c.fdblocks + c.flcount + c.btreeblks,
        "versus the superblock's fdblocks {}",
        c.fdblocks
    );
    assert!(map.end() <= c.dblocks * c.block_size);
    c
}

fn round_trip(
    mkfs_opts: &[&str],
    size: u64,
    bulk: u64,
    small_files: u32,
    seed: u64,
) -> (Fixture, ExtentMap, Counts) {
    let mut mkfs = vec!["mkfs.xfs", "-q", "-f"];
    mkfs.extend_from_slice(mkfs_opts);
    let fix = Fixture::build(&mkfs, size, "xfs", |dir| {
        fsmap::fill_fragmented(dir, seed, bulk, small_files)
    });
    testkit::run("xfs_repair", &["-n", fix.image.to_str().unwrap()]);
    let map = fix.map(Kind::Xfs);
    let c = assert_counts_match(&fix, &map);
    fix.check_copy(&map, &["xfs_repair", "-n"], "xfs", "ro");
    (fix, map, c)
}

#[test]
fn xfs_default() {
    let (fix, map, _) = round_trip(&[], 512 * MIB, 120 * MIB, 400, 21);
    assert!(map.total_bytes() < fix.size / 2);
}

/// This kernel mounts no v4 filesystem, so the v4 image is populated by
/// mkfs.xfs itself from a prototype file, and the copy is checked by
/// xfs_repair and by every file's block map from xfs_db lying in the map.
#[test]
fn xfs_v4_no_crc() {
    let src = testkit::tempdir().unwrap();
    testkit::fill_tree(src.path(), 22, 60 * MIB);
    let mut proto = String::from("dummy\n0 0\nd--755 0 0\n");
    let mut n = 0;
    for entry in walk(src.path()) {
        proto.push_str(&format!("f{n} ---644 0 0 {}\n", entry.display()));
        n += 1;
    }
    proto.push_str("$\n");
    let proto_path = src.path().join("proto");
    std::fs::write(&proto_path, proto).unwrap();
    let fix = Fixture::mkfs_only(
        &[
            "mkfs.xfs",
            "-q",
            "-f",
            "-m",
            "crc=0",
            "-p",
            proto_path.to_str().unwrap(),
        ],
        512 * MIB,
    );
    let map = fix.map(Kind::Xfs);
    assert_counts_match(&fix, &map);
    let copy = fix.dir.path().join("copy.img");
    testkit::copy_mapped(&fix.image, &map, &copy, fix.size);
    testkit::run("xfs_repair", &["-n", copy.to_str().unwrap()]);
    // Every data block of every file is in the map.
    let listing = db(&fix, &["ls /"]);
    let inodes: Vec<&str> = listing
        .lines()
        .filter(|l| l.contains(" regular "))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(inodes.len(), n, "files in the image");
    let sb = db(&fix, &["sb 0", "p blocksize agblocks"]);
    let (bs, agblocks) = (fields(&sb, "blocksize")[0], fields(&sb, "agblocks")[0]);
    let mut cmds = Vec::new();
    for ino in &inodes {
        cmds.push(format!("inode {ino}"));
        cmds.push("bmap".to_string());
    }
    let refs: Vec<&str> = cmds.iter().map(String::as_str).collect();
    let bmaps = db(&fix, &refs);
    let mut extents_seen = 0;
    for line in bmaps.lines().filter(|l| l.starts_with("data offset")) {
        // data offset 0 startblock 24 (0/24) count 10 flag 0
        let words: Vec<&str> = line.split_whitespace().collect();
        let (ag, agbno) = words[5]
            .trim_matches(|c| c == '(' || c == ')')
            .split_once('/')
            .unwrap();
        let count: u64 = words[7].parse().unwrap();
        let start = (ag.parse::<u64>().unwrap() * agblocks + agbno.parse::<u64>().unwrap()) * bs;
        let range = extents::Extent::new(start, count * bs);
        assert_eq!(
            map.bytes_in(range),
            range.len,
            "file data {line} is not all mapped"
        );
        extents_seen += 1;
    }
    assert!(
        extents_seen >= n / 2,
        "saw {extents_seen} data extents for {n} files"
    );
}

/// Regular files under `dir`, recursively.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            out.extend(walk(&e.path()));
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

#[test]
fn xfs_eight_allocation_groups() {
    let (_, _, c) = round_trip(&["-d", "agcount=8"], 1024 * MIB, 80 * MIB, 400, 23);
    assert_eq!(c.agcount, 8);
}

#[test]
fn xfs_small_blocks_multi_level_free_space_tree() {
    // 1 KiB blocks hold 121 free-space records per leaf: thousands of holes
    // need a tree of two levels or more.
    let (_, _, c) = round_trip(&["-b", "size=1024"], 400 * MIB, 20 * MIB, 6000, 24);
    assert!(
        c.max_bno_level >= 2,
        "no multi-level free-space tree (level {})",
        c.max_bno_level
    );
}

#[test]
fn xfs_4k_sectors() {
    round_trip(&["-s", "size=4096"], 512 * MIB, 80 * MIB, 400, 25);
}

#[test]
fn xfs_64k_blocks_32k_sectors() {
    round_trip(
        &["-b", "size=65536", "-s", "size=32768"],
        1024 * MIB,
        80 * MIB,
        200,
        26,
    );
}

#[test]
fn xfs_rmapbt() {
    round_trip(&["-m", "rmapbt=1"], 512 * MIB, 80 * MIB, 400, 27);
}

// ---- doubt ----

fn doubt_of(vol: &dyn ReadAt) -> String {
    match xfs::map(vol) {
        Err(MapError::Doubt(reason)) => reason,
        other => panic!("expected doubt, got {other:?}"),
    }
}

fn fresh(opts: &[&str]) -> Fixture {
    let mut mkfs = vec!["mkfs.xfs", "-q", "-f"];
    mkfs.extend_from_slice(opts);
    Fixture::mkfs_only(&mkfs, 320 * MIB)
}

fn flip(fix: &Fixture, offset: u64, mask: u8) {
    let mut b = fix.read(offset, 1);
    b[0] ^= mask;
    fix.patch(offset, &b);
}

#[test]
fn fresh_filesystem_maps() {
    let fix = fresh(&[]);
    let map = fix.map(Kind::Xfs);
    assert_counts_match(&fix, &map);
}

#[test]
fn unknown_incompat_feature_is_doubt() {
    let fix = fresh(&[]);
    flip(&fix, 216, 0x80); // bit 31 of sb_features_incompat
    let reason = doubt_of(&fix.open());
    assert!(
        reason.contains("unknown incompatible feature flags 0x80000000"),
        "{reason}"
    );
}

#[test]
fn needs_repair_is_doubt() {
    let fix = fresh(&[]);
    flip(&fix, 219, 0x10);
    let reason = doubt_of(&fix.open());
    assert!(reason.contains("needing xfs_repair"), "{reason}");
}

#[test]
fn superblock_checksum_is_verified() {
    let fix = fresh(&[]);
    fix.patch(108, b"renamed!"); // sb_fname
    let reason = doubt_of(&fix.open());
    assert!(reason.contains("superblock checksum mismatch"), "{reason}");
}

fn ag_byte(fix: &Fixture, agno: u64, agbno: u64) -> u64 {
    let sb = db(fix, &["sb 0", "p blocksize agblocks"]);
    (agno * fields(&sb, "agblocks")[0] + agbno) * fields(&sb, "blocksize")[0]
}

#[test]
fn agf_checksum_is_verified() {
    let fix = fresh(&[]);
    let agf = ag_byte(&fix, 1, 0) + 512;
    flip(&fix, agf + 120, 0x01); // a spare field
    let reason = doubt_of(&fix.open());
    assert!(reason.contains("AG 1 AGF: checksum mismatch"), "{reason}");
}

#[test]
fn free_space_block_checksum_is_verified() {
    let fix = fresh(&[]);
    let root = fields(&db(&fix, &["agf 2", "p bnoroot"]), "bnoroot")[0];
    let block = ag_byte(&fix, 2, root);
    flip(&fix, block + 56 + 4, 0x01); // first record's block count
    let reason = doubt_of(&fix.open());
    assert!(
        reason.contains("AG 2 free-space tree: block") && reason.contains("checksum mismatch"),
        "{reason}"
    );
}

#[test]
fn v4_record_against_agf_count_is_doubt() {
    let fix = fresh(&["-m", "crc=0"]);
    let root = fields(&db(&fix, &["agf 1", "p bnoroot"]), "bnoroot")[0];
    let block = ag_byte(&fix, 1, root);
    // One block less in the first record's block count.
    let count = u32::from_be_bytes(fix.read(block + 20, 4).try_into().unwrap());
    fix.patch(block + 20, &(count - 1).to_be_bytes());
    let reason = doubt_of(&fix.open());
    assert!(reason.contains("AG 1: the AGF counts"), "{reason}");
}

#[test]
fn v4_record_outside_the_ag_is_doubt() {
    let fix = fresh(&["-m", "crc=0"]);
    let root = fields(&db(&fix, &["agf 1", "p bnoroot"]), "bnoroot")[0];
    let block = ag_byte(&fix, 1, root);
    fix.patch(block + 16, &0x00FF_FFFFu32.to_be_bytes()); // first record's start
    let reason = doubt_of(&fix.open());
    assert!(reason.contains("outside the AG"), "{reason}");
}

#[test]
fn truncated_volume_is_doubt() {
    let fix = fresh(&[]);
    let vol = extents::Window::new(fix.open(), 0, 200 * MIB);
    let reason = doubt_of(&vol);
    assert!(
        reason.contains("but its volume only 209715200 bytes"),
        "{reason}"
    );
}

#[test]
fn garbage_is_doubt_not_panic() {
    assert!(doubt_of(&vec![0u8; 4096]).contains("sector size 0"));
    assert!(doubt_of(&vec![0u8; 10]).contains("cannot read the superblock"));
}

#[test]
fn dirty_log_is_doubt() {
    fsmap::need(&["xfs_io"]);
    let fix = fresh(&[]);
    {
        let _guard = fsmap::LOOP_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let dev = testkit::Loop::attach(&fix.image, 0, None, false);
        let mnt = testkit::Mount::new(dev.path(), Some("xfs"), "rw");
        testkit::fill_tree(mnt.path(), 28, 4 * MIB);
        // Flush the log so it holds transactions, then crash-stop.
        testkit::run(
            "xfs_io",
            &["-x", "-c", "shutdown -f", mnt.path().to_str().unwrap()],
        );
    }
    let reason = doubt_of(&fix.open());
    assert!(reason.contains("the log is not clean"), "{reason}");
}

#[test]
fn harness_catches_a_lossy_map() {
    let fix = Fixture::build(&["mkfs.xfs", "-q", "-f"], 320 * MIB, "xfs", |dir| {
        testkit::fill_tree(dir, 29, 30 * MIB)
    });
    let map = fix.map(Kind::Xfs);
    fix.check_copy(&map, &["xfs_repair", "-n"], "xfs", "ro");
    fsmap::assert_loss_detected(&fix, &map, &["xfs_repair", "-n"], "xfs");
}

#[test]
fn mutated_images_never_panic() {
    let v5 = Fixture::build(
        &["mkfs.xfs", "-q", "-f", "-b", "size=1024"],
        320 * MIB,
        "xfs",
        |dir| fsmap::fill_fragmented(dir, 30, 8 * MIB, 3000),
    );
    let v4 = fresh(&["-m", "crc=0"]);
    fsmap::mutation_campaign(Kind::Xfs, &[&v5, &v4], 3000);
}
