//! Property test: thousands of real images (made once by the real tools),
//! mutated in their tables, superblocks and GPT areas, go through the table
//! parsers, the probes and the whole layout. Nothing may panic, and every
//! disk map keeps its invariants.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use xenlift_disk as disk;

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use common::*;
use disk::layout::{inspect_readers, DiskInput};
use disk::source::{image_sector_size, DiskInfo, DiskKind};
use disk::{probe, table};
use extents::{Extent, ReadAt};
use proptest::prelude::*;

/// A clean image and the 64 KiB windows worth mutating in it.
struct Fixture {
    name: &'static str,
    bytes: Vec<u8>,
    windows: Vec<u64>,
}

const WINDOW: u64 = 64 * 1024;

fn fixtures() -> &'static [Fixture] {
    static FIXTURES: OnceLock<Vec<Fixture>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = tempdir().unwrap();
        let d = dir.path();
        let images = [
            ("gpt", gpt_image(d)),
            ("mbr", mbr_image(d)),
            ("gpt-4k", gpt_4k_image(d)),
            (
                "whole-ext4",
                make_fs(d, "ext4.img", 8 * MIB, "mkfs.ext4 -q -F -L whole {}"),
            ),
            (
                "whole-fat32",
                make_fs(
                    d,
                    "fat.img",
                    40 * MIB,
                    "mkfs.vfat -F 32 -n FAT {} >/dev/null",
                ),
            ),
            ("whole-pv", pv_image(d)),
            ("iso", iso_image(d)),
        ];
        images
            .into_iter()
            .map(|(name, path)| fixture(name, &path))
            .collect()
    })
}

fn fixture(name: &'static str, path: &Path) -> Fixture {
    let bytes = std::fs::read(path).unwrap();
    let size = bytes.len() as u64;
    let mut windows = vec![0, size.saturating_sub(WINDOW)];
    // Partition starts, from the clean image, and the ISO descriptors.
    let layout = inspect_path(path);
    windows.extend(layout.partitions.iter().map(|p| p.partition.start));
    windows.push(32 * 1024);
    Fixture {
        name,
        bytes,
        windows,
    }
}

fn gpt_image(dir: &Path) -> std::path::PathBuf {
    let img = dir.join("gpt.img");
    sparse_image(&img, 16 * MIB);
    run(
        "sgdisk",
        &[
            "-n1:2048:+2M",
            "-t1:ef00",
            "-c1:esp",
            "-n2:0:+4M",
            "-c2:root",
            "-n3:0:+1M",
            "-t3:8200",
            "-n4:0:+3M",
            "-t4:0700",
            "-c4:win",
            "-n5:0:+2M",
            "-t5:0700",
            img.to_str().unwrap(),
        ],
    );
    let parts = [
        (
            MIB,
            make_fs(dir, "p1", 2 * MIB, "mkfs.vfat -n ESP {} >/dev/null"),
        ),
        (
            3 * MIB,
            make_fs(dir, "p2", 4 * MIB, "mkfs.ext4 -q -F -L root {}"),
        ),
        (
            7 * MIB,
            make_fs(dir, "p3", MIB, "mkswap -L sw {} >/dev/null 2>&1"),
        ),
        (
            8 * MIB,
            make_fs(dir, "p4", 3 * MIB, "mkntfs -q -F -f -L win {}"),
        ),
        (
            11 * MIB,
            make_fs(dir, "p5", 2 * MIB, "mkfs.exfat -b 4096 -L ex {} >/dev/null"),
        ),
    ];
    for (offset, part) in parts {
        put_file(&img, offset, &part);
    }
    img
}

fn mbr_image(dir: &Path) -> std::path::PathBuf {
    let img = dir.join("mbr.img");
    sparse_image(&img, 16 * MIB);
    sh(&format!(
        "printf 'label: dos\\nstart=2048, size=4MiB, type=83\\ntype=5\\nsize=3MiB, type=83\\nsize=2MiB, type=b\\nsize=1MiB, type=82\\n' | sfdisk -q {}",
        img.display()
    ));
    let table = sfdisk_json(&img);
    let parts = table["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .clone();
    let start = |i: usize| parts[i]["start"].as_u64().unwrap() * 512;
    let fills = [
        (start(0), make_fs(dir, "m1", 4 * MIB, "mkfs.ext2 -q -F {}")),
        (start(2), make_fs(dir, "m5", 3 * MIB, "mkfs.ext3 -q -F {}")),
        (
            start(3),
            make_fs(dir, "m6", 2 * MIB, "mkfs.vfat -F 12 {} >/dev/null"),
        ),
        (
            start(4),
            make_fs(dir, "m7", MIB, "mkswap {} >/dev/null 2>&1"),
        ),
    ];
    for (offset, part) in fills {
        put_file(&img, offset, &part);
    }
    img
}

fn gpt_4k_image(dir: &Path) -> std::path::PathBuf {
    let img = dir.join("gpt4k.img");
    sparse_image(&img, 16 * MIB);
    let dev = testkit::Loop::attach_sector_size(&img, 4096);
    run(
        "sgdisk",
        &["-n1:256:+4M", "-n2:0:+4M", "-t2:8200", dev.path()],
    );
    drop(dev);
    put_file(
        &img,
        MIB,
        &make_fs(dir, "k1", 4 * MIB, "mkfs.ext4 -q -F -b 4096 {}"),
    );
    put_file(
        &img,
        5 * MIB,
        &make_fs(dir, "k2", 4 * MIB, "mkswap {} >/dev/null 2>&1"),
    );
    img
}

fn pv_image(dir: &Path) -> std::path::PathBuf {
    let img = dir.join("pv.img");
    sparse_image(&img, 8 * MIB);
    let dev = testkit::Loop::attach(&img, 0, None, false);
    run("pvcreate", &["-q", "-f", "--norestorefile", dev.path()]);
    img
}

fn iso_image(dir: &Path) -> std::path::PathBuf {
    let tree = dir.join("iso-tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("file.txt"), "data").unwrap();
    let iso = dir.join("x.iso");
    sh(&format!(
        "xorriso -as mkisofs -quiet -J -V ISO -o {} {} 2>/dev/null",
        iso.display(),
        tree.display()
    ));
    iso
}

/// One byte change: where, and how.
#[derive(Clone, Debug)]
struct Mutation {
    window: usize,
    offset: u16,
    value: u32,
    kind: u8,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    (any::<usize>(), any::<u16>(), any::<u32>(), 0u8..4).prop_map(
        |(window, offset, value, kind)| Mutation {
            window,
            offset,
            value,
            kind,
        },
    )
}

/// A fixture seen through a few changed bytes, so that no case copies a
/// whole image.
struct Patched<'a> {
    base: &'a Vec<u8>,
    patches: BTreeMap<u64, u8>,
}

impl ReadAt for Patched<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let n = self.base.read_at(buf, offset)?;
        for (&at, &byte) in self.patches.range(offset..offset + n as u64) {
            buf[(at - offset) as usize] = byte;
        }
        Ok(n)
    }
    fn size(&self) -> u64 {
        self.base.len() as u64
    }
}

fn apply(image: &mut Patched<'_>, windows: &[u64], m: &Mutation) {
    let base = windows[m.window % windows.len()];
    let at = base + u64::from(m.offset);
    let size = image.size();
    let mut field = [0u8; 4];
    for (i, b) in field.iter_mut().enumerate() {
        let pos = at + i as u64;
        *b = image
            .patches
            .get(&pos)
            .copied()
            .unwrap_or_else(|| image.base.get(pos as usize).copied().unwrap_or(0));
    }
    match m.kind {
        // One byte set or flipped, or a 32-bit field made small or huge:
        // sizes, counts and offsets are what parsers trip over.
        0 => field[0] = m.value as u8,
        1 => field[0] ^= 1 << (m.value % 8),
        2 => field = (m.value % 8).to_le_bytes(),
        _ => field = m.value.to_le_bytes(),
    }
    for (i, b) in field.into_iter().enumerate() {
        let pos = at + i as u64;
        if pos < size {
            image.patches.insert(pos, b);
        }
    }
}

fn check(image: &dyn ReadAt, name: &str) {
    let size = image.size();
    for sector in [512, 4096] {
        let t = table::read(image, sector).unwrap();
        for p in &t.partitions {
            assert!(
                p.size > 0 || p.role == disk::PartitionRole::Extended,
                "{name}: empty partition {p:?}"
            );
        }
    }
    probe::probe_volume(image).unwrap();
    let info = DiskInfo {
        path: name.to_string(),
        kind: DiskKind::ImageFile,
        size,
        logical_sector_size: image_sector_size(image).unwrap(),
        physical_sector_size: 512,
        model: None,
        serial: None,
    };
    let layouts = inspect_readers(&[DiskInput {
        info: &info,
        reader: image,
    }])
    .unwrap();
    let layout = &layouts[0];
    check_map_invariants(layout, size);
    assert_eq!(
        layout.copy_bytes(),
        layout.map.iter().map(|e| e.len).sum::<u64>()
    );
    if layout.whole_disk_reason.is_none() {
        for part in &layout.partitions {
            let p = &part.partition;
            if let Some(map) = &part.map {
                assert!(
                    map.extents.end() <= p.size,
                    "{name}: map of {} past its end",
                    p.number
                );
                // Every byte the partition's map keeps is in the disk map.
                let kept = map
                    .extents
                    .shifted(p.start)
                    .clip(Extent::new(p.start, p.size));
                assert_eq!(
                    layout
                        .map
                        .bytes_in(Extent::new(p.start, p.size))
                        .min(kept.total_bytes()),
                    kept.total_bytes()
                );
            }
        }
    }
}

#[test]
fn clean_fixtures_are_understood() {
    for f in fixtures() {
        check(&f.bytes, f.name);
        let info_path = f.name;
        let layout = {
            let info = DiskInfo {
                path: info_path.into(),
                kind: DiskKind::ImageFile,
                size: f.bytes.len() as u64,
                logical_sector_size: image_sector_size(&f.bytes).unwrap(),
                physical_sector_size: 512,
                model: None,
                serial: None,
            };
            inspect_readers(&[DiskInput {
                info: &info,
                reader: &f.bytes,
            }])
            .unwrap()
            .remove(0)
        };
        assert!(
            layout.whole_disk_reason.is_none(),
            "{}: {:?}",
            f.name,
            layout.whole_disk_reason
        );
        let unknown: Vec<u32> = layout
            .partitions
            .iter()
            .filter(|p| {
                p.content()
                    .is_some_and(|c| c.kind == disk::ContentKind::Unknown)
            })
            .map(|p| p.partition.number)
            .collect();
        assert!(
            unknown.is_empty(),
            "{}: partitions {unknown:?} not recognized",
            f.name
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_images_never_panic(which in any::<usize>(), mutations in prop::collection::vec(mutation(), 1..24)) {
        let all = fixtures();
        let f = &all[which % all.len()];
        let mut image = Patched { base: &f.bytes, patches: BTreeMap::new() };
        for m in &mutations {
            apply(&mut image, &f.windows, m);
        }
        check(&image, f.name);
    }
}
