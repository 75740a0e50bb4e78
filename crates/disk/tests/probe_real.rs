//! Content probing of volumes made by the real tools, compared with
//! `blkid -p -o export` (TYPE, UUID, LABEL and, where it tells formats
//! apart, VERSION).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use xenlift_disk as disk;

mod common;

use std::path::Path;

use common::*;
use disk::probe;
use disk::SourceDisk;

/// Probes the file and checks kind, UUID and label against blkid. Returns
/// blkid's tags for extra checks.
fn check_against_blkid(path: &Path, want_kind: &str) -> std::collections::BTreeMap<String, String> {
    let tags = blkid(path);
    assert_eq!(
        blkid_kind(&tags),
        want_kind,
        "blkid disagrees with the fixture: {tags:?}"
    );
    let disk = SourceDisk::open(path).unwrap();
    let found = probe::probe_volume(&disk).unwrap();
    let what = format!("{}: ours {found:?}, blkid {tags:?}", path.display());
    assert_eq!(found.content.kind.name(), want_kind, "{what}");
    assert_eq!(
        found.content.uuid.as_deref(),
        tags.get("UUID").map(String::as_str),
        "{what}"
    );
    assert_eq!(
        found.content.label.as_deref(),
        tags.get("LABEL").map(String::as_str),
        "{what}"
    );
    tags
}

#[test]
fn ext_family_by_features() {
    let dir = tempdir().unwrap();
    let cases = [
        ("ext2", "mkfs.ext2 -q -F -L two {}"),
        ("ext3", "mkfs.ext3 -q -F -L three {}"),
        (
            "ext4",
            "mkfs.ext4 -q -F -L 'four root' -U 0b7d0f2c-5b1e-4b63-9d1b-2d6f1f0e9a11 {}",
        ),
        ("ext4", "mkfs.ext4 -q -F -O ^has_journal {}"),
        ("ext4", "mkfs.ext4 -q -F -O ^metadata_csum -b 1024 -L k1 {}"),
    ];
    for (i, (kind, mkfs)) in cases.into_iter().enumerate() {
        let img = make_fs(dir.path(), &format!("ext{i}.img"), 64 * MIB, mkfs);
        check_against_blkid(&img, kind);
    }
}

#[test]
fn xfs_and_btrfs() {
    let dir = tempdir().unwrap();
    let xfs = make_fs(
        dir.path(),
        "xfs.img",
        320 * MIB,
        "mkfs.xfs -q -f -L xfslabel {}",
    );
    check_against_blkid(&xfs, "xfs");
    let v4 = make_fs(
        dir.path(),
        "xfs4.img",
        320 * MIB,
        "mkfs.xfs -q -f -m crc=0 {} 2>/dev/null",
    );
    check_against_blkid(&v4, "xfs");
    let btrfs = make_fs(
        dir.path(),
        "btrfs.img",
        128 * MIB,
        "mkfs.btrfs -q -f -L 'btr fs' {}",
    );
    check_against_blkid(&btrfs, "btrfs");
}

#[test]
fn ntfs_with_label_from_the_mft() {
    let dir = tempdir().unwrap();
    let ntfs = make_fs(
        dir.path(),
        "ntfs.img",
        64 * MIB,
        "mkntfs -q -F -f -L 'Windows Data' {}",
    );
    check_against_blkid(&ntfs, "ntfs");
    let bare = make_fs(dir.path(), "ntfs2.img", 16 * MIB, "mkntfs -q -F -f {}");
    check_against_blkid(&bare, "ntfs");
}

#[test]
fn fat12_16_32_and_exfat() {
    let dir = tempdir().unwrap();
    for (bits, size) in [(12, 4 * MIB), (16, 64 * MIB), (32, 128 * MIB)] {
        let mkfs = format!("mkfs.vfat -F {bits} -n FAT{bits}LBL -i 1a2b3c4d {{}} >/dev/null");
        let img = make_fs(dir.path(), &format!("fat{bits}.img"), size, &mkfs);
        let tags = check_against_blkid(&img, "vfat");
        let disk = SourceDisk::open(&img).unwrap();
        let found = probe::probe_volume(&disk).unwrap();
        assert_eq!(
            found.version.as_deref(),
            tags.get("VERSION").map(String::as_str)
        );
        assert_eq!(found.version, Some(format!("FAT{bits}")));
        assert_eq!(found.content.uuid.as_deref(), Some("1A2B-3C4D"));
    }
    // No label at all, and a label only in the root directory (set by mlabel).
    let plain = make_fs(dir.path(), "plain.img", 8 * MIB, "mkfs.vfat {} >/dev/null");
    check_against_blkid(&plain, "vfat");
    let relabeled = make_fs(
        dir.path(),
        "relabel.img",
        64 * MIB,
        "mkfs.vfat -F 32 -n OLD {} >/dev/null && mlabel -i {} ::NEWNAME",
    );
    let tags = check_against_blkid(&relabeled, "vfat");
    assert_eq!(tags.get("LABEL").map(String::as_str), Some("NEWNAME"));

    let exfat = make_fs(
        dir.path(),
        "exfat.img",
        64 * MIB,
        "mkfs.exfat -L 'ex label' {} >/dev/null",
    );
    check_against_blkid(&exfat, "exfat");
}

#[test]
fn swap_with_label_and_uuid() {
    let dir = tempdir().unwrap();
    let swap = make_fs(
        dir.path(),
        "swap.img",
        32 * MIB,
        "mkswap -L swaplabel -U 6a0e2d53-7d8c-4d2e-9c55-3a3f2a1b0c9d {} 2>/dev/null >/dev/null",
    );
    check_against_blkid(&swap, "swap");
}

#[test]
fn lvm_physical_volume() {
    let dir = tempdir().unwrap();
    let img = dir.path().join("pv.img");
    sparse_image(&img, 64 * MIB);
    {
        let dev = testkit::Loop::attach(&img, 0, None, false);
        run(
            "pvcreate",
            &[
                "-q",
                "-f",
                "--uuid",
                "aaaaaa-bbbb-cccc-dddd-eeee-ffff-gggggg",
                "--norestorefile",
                dev.path(),
            ],
        );
    }
    let tags = check_against_blkid(&img, "lvm2_member");
    assert_eq!(tags["UUID"], "aaaaaa-bbbb-cccc-dddd-eeee-ffff-gggggg");
}

#[test]
fn luks1_and_luks2() {
    let dir = tempdir().unwrap();
    for version in [1, 2] {
        let img = dir.path().join(format!("luks{version}.img"));
        sparse_image(&img, 32 * MIB);
        let label = if version == 2 {
            "--label secret-data"
        } else {
            ""
        };
        sh(&format!(
            "echo -n throwaway | cryptsetup luksFormat --batch-mode --type luks{version} {label} \
             --pbkdf pbkdf2 --pbkdf-force-iterations 1000 {} -",
            img.display()
        ));
        check_against_blkid(&img, &format!("luks{version}"));
    }
}

#[test]
fn iso9660_plain_and_joliet() {
    let dir = tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("boot")).unwrap();
    std::fs::write(tree.join("boot/readme.txt"), "hello").unwrap();
    let cases = [
        ("plain.iso", "-V PLAIN_LABEL", "iso9660"),
        ("joliet.iso", "-J -V Mixed_Case_Label", "iso9660"),
    ];
    for (name, opts, kind) in cases {
        let iso = dir.path().join(name);
        sh(&format!(
            "xorriso -as mkisofs -quiet {opts} -o {} {} 2>/dev/null",
            iso.display(),
            tree.display()
        ));
        check_against_blkid(&iso, kind);
    }
}

/// mdadm cannot create arrays here: the host kernel has no md driver
/// (no /proc/mdstat, no md_mod module). The superblocks are built from the
/// md format (md_p.h) and blkid, an independent reader, must agree.
#[test]
fn linux_raid_superblocks_built_by_hand() {
    let dir = tempdir().unwrap();
    let size = 16 * MIB;
    let uuid = *b"\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff\x01";
    // Version 1.x: at 0 (1.1), 4 KiB (1.2), and 8 KiB before the 4 KiB-aligned end (1.0).
    for (version, at) in [("1.1", 0u64), ("1.2", 4096), ("1.0", size - 8192)] {
        let img = dir.path().join(format!("md{version}.img"));
        sparse_image(&img, size);
        let mut sb = vec![0u8; 512];
        sb[0..4].copy_from_slice(&0xa92b_4efcu32.to_le_bytes());
        sb[4..8].copy_from_slice(&1u32.to_le_bytes());
        sb[16..32].copy_from_slice(&uuid);
        sb[32..38].copy_from_slice(b"host:7");
        sb[72..76].copy_from_slice(&1u32.to_le_bytes()); // raid1
        sb[144..152].copy_from_slice(&(at >> 9).to_le_bytes());
        sb[168..184].copy_from_slice(&[0x42; 16]);
        sb[220..224].copy_from_slice(&0u32.to_le_bytes()); // max_dev
        let csum = md1_checksum(&sb[..256]);
        sb[216..220].copy_from_slice(&csum.to_le_bytes());
        put(&img, at, &sb);
        let tags = check_against_blkid(&img, "linux_raid_member");
        assert_eq!(tags.get("VERSION").map(String::as_str), Some(version));
        assert_eq!(tags["LABEL"], "host:7");
    }
    // Version 0.90: 64 KiB before the 64 KiB-aligned end, host byte order.
    let img = dir.path().join("md090.img");
    sparse_image(&img, size);
    let mut sb = vec![0u8; 4096];
    let words: [(usize, u32); 9] = [
        (0, 0xa92b_4efc),
        (1, 0),
        (2, 90),
        (3, 0),
        (5, 0x1122_3344),
        (8, 1024), // KiB used on the member
        (13, 0x5566_7788),
        (14, 0x99aa_bbcc),
        (15, 0xddee_ff01),
    ];
    for (i, w) in words {
        sb[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
    }
    put(&img, size - 65536, &sb);
    let tags = check_against_blkid(&img, "linux_raid_member");
    assert_eq!(tags["UUID"], "11223344-5566-7788-99aa-bbccddeeff01");
    assert_eq!(tags.get("VERSION").map(String::as_str), Some("0.90.0"));
}

/// The md 1.x superblock checksum: 32-bit little-endian words summed into
/// 64 bits with the checksum field at zero, then folded.
fn md1_checksum(sb: &[u8]) -> u32 {
    let mut sum: u64 = 0;
    for (i, w) in sb.chunks_exact(4).enumerate() {
        if i != 216 / 4 {
            sum += u64::from(u32::from_le_bytes(w.try_into().unwrap()));
        }
    }
    ((sum & 0xffff_ffff) + (sum >> 32)) as u32
}

/// Nothing here can make a BitLocker volume: its boot sector is built from
/// the documented layout (libbde's format description), and blkid must
/// agree with us.
#[test]
fn bitlocker_boot_sectors_built_by_hand() {
    let dir = tempdir().unwrap();
    let img = dir.path().join("bitlocker.img");
    sparse_image(&img, 16 * MIB);
    let mut boot = vec![0u8; 512];
    boot[..11].copy_from_slice(b"\xeb\x58\x90-FVE-FS-");
    boot[11..13].copy_from_slice(&512u16.to_le_bytes());
    boot[67..71].copy_from_slice(&0u32.to_le_bytes());
    boot[71..82].copy_from_slice(b"NO NAME    ");
    let fve_at: u64 = 2 * MIB;
    boot[176..184].copy_from_slice(&fve_at.to_le_bytes());
    boot[510] = 0x55;
    boot[511] = 0xAA;
    put(&img, 0, &boot);
    let mut fve = vec![0u8; 64];
    fve[..8].copy_from_slice(b"-FVE-FS-");
    fve[8..10].copy_from_slice(&64u16.to_le_bytes());
    fve[10..12].copy_from_slice(&2u16.to_le_bytes());
    put(&img, fve_at, &fve);
    check_against_blkid(&img, "bitlocker");
    let disk = SourceDisk::open(&img).unwrap();
    assert_eq!(
        probe::probe_volume(&disk).unwrap().version.as_deref(),
        Some("2")
    );

    // Without FVE metadata where the header points, it is not BitLocker.
    put(&img, fve_at, &[0u8; 8]);
    let found = probe::probe_volume(&SourceDisk::open(&img).unwrap()).unwrap();
    assert_eq!(found.content.kind, disk::ContentKind::Unknown);
}
