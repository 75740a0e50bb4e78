//! Partition tables made by sgdisk and sfdisk, read back and compared with
//! `sfdisk --json`, `sgdisk -i` and `blkid -p`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use xenlift_disk as disk;

mod common;

use std::path::Path;

use common::*;
use disk::layout::DiskLayout;
use disk::{PartitionRole, ProtectiveMbr, SourceDisk, TableKind};
use extents::Extent;

/// Every partition `sfdisk --json` lists must be ours, field by field.
fn check_against_sfdisk(layout: &DiskLayout, device: &Path) {
    let json = sfdisk_json(device);
    let table = &json["partitiontable"];
    let sector = table["sectorsize"].as_u64().unwrap();
    assert_eq!(u64::from(layout.disk.logical_sector_size), sector);
    let label = table["label"].as_str().unwrap();
    let want_kind = if label == "gpt" {
        TableKind::Gpt
    } else {
        TableKind::Mbr
    };
    assert_eq!(layout.table.kind, want_kind);
    let id = table["id"].as_str().unwrap().to_lowercase();
    let id = id.trim_start_matches("0x");
    assert_eq!(layout.table.uuid.as_deref(), Some(id));
    let theirs = table["partitions"].as_array().unwrap();
    assert_eq!(layout.partitions.len(), theirs.len(), "partition count");
    let device_name = device.display().to_string();
    for t in theirs {
        let node = t["node"].as_str().unwrap();
        let number: u32 = node
            .strip_prefix(&device_name)
            .unwrap()
            .trim_start_matches('p')
            .parse()
            .unwrap();
        let ours = layout
            .partitions
            .iter()
            .find(|p| p.partition.number == number)
            .unwrap_or_else(|| panic!("partition {number} missing"));
        let p = &ours.partition;
        assert_eq!(
            p.start,
            t["start"].as_u64().unwrap() * sector,
            "start of {number}"
        );
        assert_eq!(
            p.size,
            t["size"].as_u64().unwrap() * sector,
            "size of {number}"
        );
        let their_type = t["type"].as_str().unwrap().to_lowercase();
        let our_type = p.type_id.clone().unwrap();
        if label == "gpt" {
            assert_eq!(our_type, their_type, "type of {number}");
            let uuid = t["uuid"].as_str().unwrap().to_lowercase();
            assert_eq!(p.uuid.as_deref(), Some(uuid.as_str()), "uuid of {number}");
            assert_eq!(p.name.as_deref(), t["name"].as_str(), "name of {number}");
        } else {
            assert_eq!(our_type, format!("0x{their_type}"), "type of {number}");
            assert_eq!(
                p.uuid,
                Some(format!("{id}-{number:02x}")),
                "uuid of {number}"
            );
        }
    }
}

/// `sgdisk -i N`: the fields it prints for one partition.
fn sgdisk_info(image: &Path, number: u32) -> (String, String, u64, String) {
    let out = run_stdout(
        "sgdisk",
        &["-i", &number.to_string(), image.to_str().unwrap()],
    );
    let field = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} not in {out}"))
            .trim()
            .to_string()
    };
    let type_guid = field("Partition GUID code:")
        .split(' ')
        .next()
        .unwrap()
        .to_lowercase();
    let unique = field("Partition unique GUID:").to_lowercase();
    let first: u64 = field("First sector:")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let name = field("Partition name:").trim_matches('\'').to_string();
    (type_guid, unique, first, name)
}

fn gpt_image(dir: &Path) -> std::path::PathBuf {
    let img = dir.join("gpt.img");
    sparse_image(&img, 64 * MIB);
    run(
        "sgdisk",
        &[
            "-n1:2048:+8M",
            "-c1:EFI system partition",
            "-t1:ef00",
            "-n2:0:+16M",
            "-c2:root",
            "-t2:8300",
            // A 1 MiB gap before partition 3.
            "-n3:53248:+4M",
            "-c3:swap",
            "-t3:8200",
            "-n4:0:+8M",
            "-c4:données ☃",
            "-t4:0700",
            "-U",
            "c0ffee00-1234-4abc-8def-0123456789ab",
            img.to_str().unwrap(),
        ],
    );
    img
}

#[test]
fn gpt_with_several_named_partitions() {
    let dir = tempdir().unwrap();
    let img = gpt_image(dir.path());
    let layout = inspect_path(&img);
    check_against_sfdisk(&layout, &img);
    assert_eq!(
        layout.table.uuid.as_deref(),
        Some("c0ffee00-1234-4abc-8def-0123456789ab")
    );
    assert_eq!(layout.table.protective_mbr, Some(ProtectiveMbr::Protective));
    assert!(
        layout.table.warnings.is_empty(),
        "{:?}",
        layout.table.warnings
    );
    for number in 1..=4 {
        let (type_guid, unique, first, name) = sgdisk_info(&img, number);
        let p = &layout.partitions[number as usize - 1].partition;
        assert_eq!(p.type_id.as_deref(), Some(type_guid.as_str()));
        assert_eq!(p.uuid.as_deref(), Some(unique.as_str()));
        assert_eq!(p.start, first * 512);
        assert_eq!(p.name.as_deref(), Some(name.as_str()));
    }
    let tags = blkid(&img);
    assert_eq!(tags["PTTYPE"], "gpt");
    assert_eq!(Some(&tags["PTUUID"]), layout.table.uuid.as_ref());

    // The map keeps the GPT at both ends and the gap before partition 3.
    check_map_invariants(&layout, 64 * MIB);
    let size = 64 * MIB;
    assert_eq!(
        layout.map.bytes_in(Extent::new(size - 33 * 512, 33 * 512)),
        33 * 512
    );
    assert_eq!(layout.map.bytes_in(Extent::new(26 * MIB, MIB)), MIB, "gap");
    assert!(layout.whole_disk_reason.is_none());
}

#[test]
fn mbr_with_extended_and_logical_partitions() {
    let dir = tempdir().unwrap();
    let img = dir.path().join("mbr.img");
    sparse_image(&img, 128 * MIB);
    sh(&format!(
        "printf 'label: dos\\nlabel-id: 0x5eed1e55\\n\
         start=2048, size=16MiB, type=83, bootable\\n\
         size=8MiB, type=82\\n\
         type=5\\n\
         size=4MiB, type=83\\n\
         size=6MiB, type=8e\\n\
         size=4MiB, type=7\\n\
         size=2MiB, type=b\\n' | sfdisk -q {}",
        img.display()
    ));
    let layout = inspect_path(&img);
    check_against_sfdisk(&layout, &img);
    let roles: Vec<(u32, PartitionRole)> = layout
        .partitions
        .iter()
        .map(|p| (p.partition.number, p.partition.role))
        .collect();
    assert_eq!(
        roles,
        [
            (1, PartitionRole::Primary),
            (2, PartitionRole::Primary),
            (3, PartitionRole::Extended),
            (5, PartitionRole::Logical),
            (6, PartitionRole::Logical),
            (7, PartitionRole::Logical),
            (8, PartitionRole::Logical),
        ]
    );
    let tags = blkid(&img);
    assert_eq!(tags["PTTYPE"], "dos");
    assert_eq!(tags["PTUUID"], "5eed1e55");
    // The four EBRs (one per logical partition) are table structures, carry
    // the 0x55AA signature, and are in the map.
    check_map_invariants(&layout, 128 * MIB);
    let extended = &layout.partitions[2].partition;
    let inside = Extent::new(extended.start, extended.size);
    let ebrs: Vec<Extent> = layout.table.structures.clip(inside).extents().to_vec();
    assert_eq!(ebrs.len(), 4, "{ebrs:?}");
    let bytes = std::fs::read(&img).unwrap();
    for ebr in ebrs {
        assert_eq!(ebr.len, 512);
        let at = ebr.offset as usize;
        assert_eq!(&bytes[at + 510..at + 512], &[0x55, 0xAA], "EBR at {at}");
        assert_eq!(layout.map.bytes_in(ebr), 512, "EBR at {at} not copied");
    }
}

#[test]
fn hybrid_mbr_from_sgdisk() {
    let dir = tempdir().unwrap();
    let img = gpt_image(dir.path());
    run("sgdisk", &["-h", "1:2", img.to_str().unwrap()]);
    let mbr_types = sfdisk_json_dos_types(&img);
    assert!(
        mbr_types.contains(&"ee".to_string()) && mbr_types.len() >= 3,
        "{mbr_types:?}"
    );
    let layout = inspect_path(&img);
    check_against_sfdisk(&layout, &img);
    assert_eq!(layout.table.protective_mbr, Some(ProtectiveMbr::Hybrid));
    assert!(
        layout
            .table
            .warnings
            .iter()
            .any(|w| w.contains("hybrid MBR")),
        "{:?}",
        layout.table.warnings
    );
    assert!(layout.whole_disk_reason.is_none());
}

/// The MBR entries of a hybrid disk, read with `sfdisk --label-nested dos`.
fn sfdisk_json_dos_types(img: &Path) -> Vec<String> {
    let text = run_stdout(
        "sfdisk",
        &["--json", "--label-nested", "dos", img.to_str().unwrap()],
    );
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["type"].as_str().unwrap().to_lowercase())
        .collect()
}

#[test]
fn gpt_with_4096_byte_sectors_on_a_loop_device_and_as_an_image() {
    let dir = tempdir().unwrap();
    let img = dir.path().join("4kn.img");
    sparse_image(&img, 64 * MIB);
    let dev = testkit::Loop::attach_sector_size(&img, 4096);
    run(
        "sgdisk",
        &[
            "-n1:256:+8M",
            "-c1:boot",
            "-t1:ef00",
            "-n2:0:+20M",
            "-c2:data",
            "-t2:8300",
            dev.path(),
        ],
    );
    let before = testkit::sha256_file(&img);

    // On the device: the sector size comes from BLKSSZGET.
    let read_only = |dev: &str| run_stdout("blockdev", &["--getro", dev]).trim().to_string();
    assert_eq!(read_only(dev.path()), "0");
    {
        let source = SourceDisk::open(&dev.device).unwrap();
        assert_eq!(source.info().logical_sector_size, 4096);
        assert_eq!(read_only(dev.path()), "1", "BLKROSET while open");
        let layout = disk::inspect(std::slice::from_ref(&source))
            .unwrap()
            .pop()
            .unwrap();
        check_against_sfdisk(&layout, &dev.device);
        check_map_invariants(&layout, 64 * MIB);
        // The backup GPT: 4 entry sectors and the header, at 4096 bytes each.
        assert_eq!(
            layout
                .map
                .bytes_in(Extent::new(64 * MIB - 5 * 4096, 5 * 4096)),
            5 * 4096
        );
    }
    assert_eq!(
        read_only(dev.path()),
        "0",
        "read-only flag restored on drop"
    );

    // The image file: 4096-byte sectors found from the GPT at byte 4096.
    let layout = inspect_path(&img);
    assert_eq!(layout.disk.logical_sector_size, 4096);
    assert_eq!(layout.partitions.len(), 2);
    assert_eq!(layout.partitions[0].partition.start, 256 * 4096);
    assert_eq!(layout.partitions[1].partition.name.as_deref(), Some("data"));
    drop(dev);
    assert_eq!(testkit::sha256_file(&img), before, "the source was written");
}

/// An MBR made on a 4096-byte-sector device: the image file carries no
/// sector size, the contents at the 4096-byte offsets tell it.
#[test]
fn mbr_with_4096_byte_sectors_as_an_image() {
    let dir = tempdir().unwrap();
    let img = dir.path().join("4kn-mbr.img");
    sparse_image(&img, 64 * MIB);
    {
        let dev = testkit::Loop::attach_sector_size(&img, 4096);
        sh(&format!("printf 'label: dos\\nstart=256, size=2048, type=83\\nsize=4096, type=c\\n' | sfdisk -q {}", dev.path()));
        let json = sfdisk_json(&dev.device);
        assert_eq!(json["partitiontable"]["sectorsize"], 4096);
    }
    let ext = make_fs(dir.path(), "p1.img", 8 * MIB, "mkfs.ext4 -q -F -L four {}");
    put_file(&img, MIB, &ext);
    let fat = make_fs(
        dir.path(),
        "p2.img",
        16 * MIB,
        "mkfs.vfat -F 32 -S 4096 -n FOURK {} >/dev/null",
    );
    put_file(&img, 9 * MIB, &fat);
    let layout = inspect_path(&img);
    assert_eq!(layout.disk.logical_sector_size, 4096);
    let parts: Vec<(u64, u64, &str)> = layout
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition.start,
                p.partition.size,
                p.content().unwrap().kind.name(),
            )
        })
        .collect();
    assert_eq!(parts, [(MIB, 8 * MIB, "ext4"), (9 * MIB, 16 * MIB, "vfat")]);
}

#[test]
fn no_table_with_ext4_on_the_whole_disk() {
    let dir = tempdir().unwrap();
    let img = make_fs(
        dir.path(),
        "whole.img",
        64 * MIB,
        "mkfs.ext4 -q -F -L wholedisk {}",
    );
    let layout = inspect_path(&img);
    assert_eq!(layout.table.kind, TableKind::None);
    assert_eq!(layout.partitions.len(), 1);
    let p = &layout.partitions[0];
    assert_eq!(
        (p.partition.number, p.partition.start, p.partition.size),
        (0, 0, 64 * MIB)
    );
    assert_eq!(p.partition.role, PartitionRole::WholeDisk);
    let tags = blkid(&img);
    let content = p.content().unwrap();
    assert_eq!(content.kind.name(), "ext4");
    assert_eq!(content.uuid.as_deref(), Some(tags["UUID"].as_str()));
    assert_eq!(content.label.as_deref(), Some("wholedisk"));
    assert!(!tags.contains_key("PTTYPE"));
    check_map_invariants(&layout, 64 * MIB);
}

#[test]
fn lvm_physical_volume_on_the_whole_disk() {
    let dir = tempdir().unwrap();
    let img = dir.path().join("pv.img");
    sparse_image(&img, 64 * MIB);
    {
        let dev = testkit::Loop::attach(&img, 0, None, false);
        run("pvcreate", &["-q", "-f", "--norestorefile", dev.path()]);
    }
    let layout = inspect_path(&img);
    assert_eq!(layout.table.kind, TableKind::None);
    let p = &layout.partitions[0];
    let content = p.content().unwrap();
    assert_eq!(content.kind.name(), "lvm2_member");
    assert_eq!(content.uuid.as_deref(), Some(blkid(&img)["UUID"].as_str()));
    assert!(p.volumes.is_some(), "LVM PVs report their volumes");
    check_map_invariants(&layout, 64 * MIB);
}
