//! LVM2 maps on PVs made by pvcreate/vgcreate/lvcreate (without
//! device-mapper), with filesystems put into the LVs by scattering them over
//! the PVs as `lvs --segments` lays them out. Proven by copying only the
//! mapped extents of every PV: each LV gathered back from the copies passes
//! its fsck and holds the same files, and vgck/pvck/lvs still see the VG.
// Fixture code panics with context on purpose, like the test kit.
#![allow(clippy::unwrap_used)]

mod map_support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use extents::{Extent, ExtentMap, FileAt, ReadAt, Window};
use map_support::lvm::{gather, read_metadata, scatter, write_metadata, Lvm, Piece};
use map_support::{
    apply, assert_inside, ext_used_bytes, mutations, open, vfat_fill, vfat_read_back,
    vfat_used_bytes,
};
use proptest::prelude::*;
use testkit::{
    copy_mapped, fill_tree, hash_tree, run, sparse_image, tempdir, Loop, Mount, TempDir,
};
use xenlift_disk::fs::MapMethod;
use xenlift_disk::lvm::metadata::VgMetadata;
use xenlift_disk::lvm::{map_physical_volumes, LogicalVolume, PhysicalVolume, PvMap};
use xenlift_disk::ContentKind;

const MIB: u64 = 1 << 20;

/// What an LV holds and how to check it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fill {
    Ext4,
    Vfat,
    Swap,
}

/// Everything learned from the LVM tools while the PVs were attached, with
/// PVs named by disk index (loop device names change between attaches).
struct Setup {
    dir: TempDir,
    vg: String,
    disks: Vec<PathBuf>,
    extent: u64,
    /// Per disk: label sectors, metadata areas, bootloader areas.
    reserved: Vec<ExtentMap>,
    /// LV name -> (size, pieces with `pv` = disk index as text, fill).
    lvs: BTreeMap<String, (u64, Vec<Piece>, Fill)>,
    /// Free extent ranges per disk index, in bytes.
    free: Vec<(usize, Extent)>,
    /// Expected file hashes per LV (swap: blkid identity).
    expected: HashMap<String, BTreeMap<PathBuf, String>>,
}

fn unique_vg(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "xl{tag}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates the disks, lets `lvm_steps` build the VG on their loop devices,
/// records the layout, then fills each LV listed in `fills`.
fn setup(
    tag: &str,
    disk_sizes: &[u64],
    fills: &[(&str, Fill)],
    lvm_steps: impl FnOnce(&Lvm, &str, &[String]),
) -> Setup {
    testkit::require(&[
        "mkfs.ext4",
        "e2fsck",
        "mkfs.vfat",
        "fsck.vfat",
        "mcopy",
        "mkswap",
        "blkid",
    ]);
    let dir = tempdir().unwrap();
    let vg = unique_vg(tag);
    let disks: Vec<PathBuf> = disk_sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            let p = dir.path().join(format!("disk{i}.img"));
            sparse_image(&p, size);
            p
        })
        .collect();
    let mut lvs = BTreeMap::new();
    let free;
    let extent;
    let reserved;
    {
        let loops: Vec<Loop> = disks
            .iter()
            .map(|d| Loop::attach(d, 0, None, false))
            .collect();
        let devs: Vec<String> = loops.iter().map(|l| l.path().to_string()).collect();
        let index: HashMap<String, usize> = devs
            .iter()
            .enumerate()
            .map(|(i, d)| (d.clone(), i))
            .collect();
        let dev_refs: Vec<&str> = devs.iter().map(String::as_str).collect();
        let lvm = Lvm::new(&dev_refs);
        lvm_steps(&lvm, &vg, &devs);
        extent = lvm.extent_bytes(&vg);
        reserved = devs
            .iter()
            .map(|d| {
                let mut areas: Vec<Extent> = lvm
                    .reserved(d)
                    .into_iter()
                    .map(|(o, l)| Extent::new(o, l))
                    .collect();
                areas.push(Extent::new(0, 2048));
                ExtentMap::from_unsorted(areas)
            })
            .collect();
        for &(name, fill) in fills {
            let pieces: Vec<Piece> = lvm
                .pieces(&vg, name)
                .into_iter()
                .map(|p| Piece {
                    pv: index[&p.pv].to_string(),
                    ..p
                })
                .collect();
            let size = pieces.iter().map(|p| p.len).sum();
            lvs.insert(name.to_string(), (size, pieces, fill));
        }
        free = lvm
            .free_ranges()
            .into_iter()
            .map(|(dev, first, count)| {
                let pe_start = lvm.pe_starts()[&dev];
                (
                    index[&dev],
                    Extent::new(pe_start + first * extent, count * extent),
                )
            })
            .collect();
    }
    let images = disk_images(&disks);
    let mut expected = HashMap::new();
    for (name, (size, pieces, fill)) in &lvs {
        let scratch = dir.path().join(format!("{name}.img"));
        sparse_image(&scratch, *size);
        let seed = name.bytes().map(u64::from).sum::<u64>();
        let tree = match fill {
            Fill::Ext4 => {
                run(
                    "mkfs.ext4",
                    &["-q", "-F", "-L", name, scratch.to_str().unwrap()],
                );
                let dev = Loop::attach(&scratch, 0, None, false);
                let mnt = Mount::new(dev.path(), Some("ext4"), "rw");
                fill_tree(mnt.path(), seed, size / 3);
                hash_tree(mnt.path())
            }
            Fill::Vfat => {
                run("mkfs.vfat", &["-n", "XL", scratch.to_str().unwrap()]);
                vfat_fill(&scratch, 0, seed, size / 3)
            }
            Fill::Swap => {
                run(
                    "mkswap",
                    &["-L", name, "-U", SWAP_UUID, scratch.to_str().unwrap()],
                );
                blkid(&scratch)
            }
        };
        expected.insert(name.clone(), tree);
        scatter(&scratch, pieces, &images);
        std::fs::remove_file(&scratch).unwrap();
    }
    Setup {
        dir,
        vg,
        disks,
        extent,
        reserved,
        lvs,
        free,
        expected,
    }
}

const SWAP_UUID: &str = "0d1b2c3d-4e5f-4061-8a7b-8c9d0e1f2a3b";

fn disk_images(disks: &[PathBuf]) -> HashMap<String, PathBuf> {
    disks
        .iter()
        .enumerate()
        .map(|(i, d)| (i.to_string(), d.clone()))
        .collect()
}

fn blkid(img: &Path) -> BTreeMap<PathBuf, String> {
    let out = run("blkid", &["-p", "-o", "export", img.to_str().unwrap()]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            ["TYPE=", "UUID=", "LABEL="]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .map(|l| (PathBuf::from(l.split('=').next().unwrap()), l.to_string()))
        .collect()
}

fn map_disks(disks: &[PathBuf]) -> Vec<PvMap> {
    let files: Vec<FileAt> = disks.iter().map(|d| open(d)).collect();
    let pvs: Vec<PhysicalVolume<'_>> = files.iter().map(|f| PhysicalVolume { reader: f }).collect();
    map_physical_volumes(&pvs)
}

fn lv<'a>(maps: &'a [PvMap], name: &str) -> &'a LogicalVolume {
    maps.iter()
        .flat_map(|m| &m.volumes)
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no LV {name} reported"))
}

/// The LV's map carried onto the PVs through `lvs`'s own layout equals what
/// the PV maps hold inside the LV's pieces.
fn assert_lv_lands_on_its_pieces(maps: &[PvMap], lv_map: &ExtentMap, pieces: &[Piece]) {
    for p in pieces {
        let disk: usize = p.pv.parse().unwrap();
        let on_pv = maps[disk].map.extents.clip(Extent::new(p.pv_offset, p.len));
        let on_lv = lv_map.clip(Extent::new(p.lv_offset, p.len));
        assert_eq!(
            on_pv.shifted(0),
            ExtentMap::from_unsorted(
                on_lv
                    .iter()
                    .map(|e| Extent::new(e.offset - p.lv_offset + p.pv_offset, e.len))
                    .collect()
            ),
            "piece {p:?}"
        );
    }
}

/// The full proof for a set-up VG mapped from all its disks.
fn verify(s: &Setup, maps: &[PvMap]) {
    assert_eq!(maps.len(), s.disks.len());
    for (i, m) in maps.iter().enumerate() {
        assert_eq!(m.map.method, MapMethod::Lvm, "disk {i}: {:?}", m.map.reason);
        assert_inside(&m.map.extents, map_support::file_size(&s.disks[i]));
        // Label sectors, metadata areas and bootloader areas, as pvck
        // lists them, are always there.
        let reserved = &s.reserved[i];
        assert_eq!(
            m.map.extents.union(reserved),
            m.map.extents,
            "disk {i}: reserved areas {reserved:?}"
        );
    }
    // Free extents are never copied.
    for (disk, range) in &s.free {
        assert_eq!(
            maps[*disk].map.extents.bytes_in(*range),
            0,
            "free {range:?} on disk {disk}"
        );
    }
    let mut lv_bytes = 0;
    for (name, (size, pieces, fill)) in &s.lvs {
        let lv = lv(maps, name);
        assert_eq!((lv.vg.as_str(), lv.size), (s.vg.as_str(), *size), "{name}");
        assert_inside(&lv.map.extents, *size);
        assert_lv_lands_on_its_pieces(maps, &lv.map.extents, pieces);
        lv_bytes += lv.map.copy_bytes();
        match fill {
            Fill::Ext4 => {
                assert_eq!(
                    (lv.content.kind, lv.map.method),
                    (ContentKind::Ext4, MapMethod::ExtBitmap),
                    "{name}: {:?}",
                    lv.map.reason
                );
            }
            Fill::Vfat => {
                assert_eq!(
                    (lv.content.kind, lv.map.method),
                    (ContentKind::Vfat, MapMethod::Fat),
                    "{name}: {:?}",
                    lv.map.reason
                );
            }
            Fill::Swap => {
                assert_eq!(lv.map.method, MapMethod::SwapHeader);
                assert_eq!(lv.map.extents, ExtentMap::single(0, 4096));
                assert_eq!(lv.content.uuid.as_deref(), Some(SWAP_UUID));
            }
        }
    }
    // Nothing but label, metadata areas and the LVs' used bytes.
    let total: u64 = maps.iter().map(|m| m.map.copy_bytes()).sum();
    let reserved: u64 = s.reserved.iter().map(ExtentMap::total_bytes).sum();
    assert_eq!(total, reserved + lv_bytes);

    // Copy only the mapped extents, then take every LV out of the copies.
    let copies: Vec<PathBuf> = s
        .disks
        .iter()
        .zip(maps)
        .enumerate()
        .map(|(i, (disk, m))| {
            let copy = s.dir.path().join(format!("copy{i}.img"));
            copy_mapped(disk, &m.map.extents, &copy, map_support::file_size(disk));
            copy
        })
        .collect();
    let images = disk_images(&copies);
    for (name, (size, pieces, fill)) in &s.lvs {
        let out = s.dir.path().join(format!("{name}.back.img"));
        gather(&out, *size, pieces, &images);
        let lv = lv(maps, name);
        let tree = match fill {
            Fill::Ext4 => {
                run("e2fsck", &["-fn", out.to_str().unwrap()]);
                // The map is dumpe2fs's own view of the LV.
                assert_eq!(lv.map.copy_bytes(), ext_used_bytes(&out), "{name}");
                let dev = Loop::attach(&out, 0, None, true);
                let mnt = Mount::new(dev.path(), Some("ext4"), "ro");
                hash_tree(mnt.path())
            }
            Fill::Vfat => {
                // The map is fsck.vfat's own view of the LV.
                assert_eq!(lv.map.copy_bytes(), vfat_used_bytes(&out), "{name}");
                vfat_read_back(&out, 0)
            }
            Fill::Swap => blkid(&out),
        };
        assert!(!tree.is_empty());
        assert_eq!(
            &tree, &s.expected[name],
            "LV {name} read back from the copies"
        );
    }

    // LVM itself still sees the VG and every LV on the copies.
    let loops: Vec<Loop> = copies
        .iter()
        .map(|c| Loop::attach(c, 0, None, true))
        .collect();
    let devs: Vec<&str> = loops.iter().map(Loop::path).collect();
    let lvm = Lvm::new(&devs);
    lvm.run("vgck", &[&s.vg]);
    for d in &devs {
        lvm.run("pvck", &[d]);
    }
    let listed = lvm.run("lvs", &["--noheadings", "-o", "lv_name", &s.vg]);
    let mut names: Vec<&str> = listed.split_whitespace().collect();
    names.sort_unstable();
    let wanted: Vec<&str> = s.lvs.keys().map(String::as_str).collect();
    assert_eq!(names, wanted);
}

fn single_disk() -> Setup {
    setup(
        "one",
        &[160 * MIB],
        &[
            ("root", Fill::Ext4),
            ("data", Fill::Vfat),
            ("swap", Fill::Swap),
            ("grown", Fill::Vfat),
        ],
        |lvm, vg, devs| {
            // A second metadata area at the end and a bootloader area.
            lvm.run(
                "pvcreate",
                &[
                    "-q",
                    "--pvmetadatacopies",
                    "2",
                    "--bootloaderareasize",
                    "1m",
                    &devs[0],
                ],
            );
            lvm.run("vgcreate", &["-q", "-s", "4M", vg, &devs[0]]);
            for (name, size) in [
                ("root", "24M"),
                ("data", "32M"),
                ("swap", "8M"),
                ("grown", "12M"),
                ("spacer", "8M"),
            ] {
                lvm.run(
                    "lvcreate",
                    &["-q", "-an", "-Zn", "-L", size, "-n", name, vg],
                );
            }
            // A second segment for "grown", past a hole left by "spacer".
            lvm.run("lvextend", &["-q", "-L", "+12M", &format!("{vg}/grown")]);
            lvm.run("lvremove", &["-q", "-y", &format!("{vg}/spacer")]);
        },
    )
}

#[test]
fn linear_lvs_with_two_segments_copy_is_complete() {
    let s = single_disk();
    assert_eq!(s.lvs["grown"].1.len(), 2, "grown has two segments");
    assert_eq!(
        s.reserved[0].len(),
        3,
        "label, metadata area + bootloader area, metadata area at the end: {:?}",
        s.reserved[0]
    );
    let maps = map_disks(&s.disks);
    verify(&s, &maps);
}

fn two_disks() -> Setup {
    setup(
        "two",
        &[96 * MIB, 96 * MIB],
        &[
            ("striped", Fill::Vfat),
            ("span", Fill::Ext4),
            ("tail", Fill::Vfat),
        ],
        |lvm, vg, devs| {
            lvm.run("pvcreate", &["-q", &devs[0], &devs[1]]);
            lvm.run("vgcreate", &["-q", "-s", "4M", vg, &devs[0], &devs[1]]);
            lvm.run(
                "lvcreate",
                &[
                    "-q", "-an", "-Zn", "-i", "2", "-I", "64k", "-L", "32M", "-n", "striped", vg,
                ],
            );
            // One LV across both disks, and one on the second disk only.
            let (a, b) = (format!("{}:10-14", devs[0]), format!("{}:10-14", devs[1]));
            lvm.run(
                "lvcreate",
                &["-q", "-an", "-Zn", "-L", "40M", "-n", "span", vg, &a, &b],
            );
            let c = format!("{}:16-19", devs[1]);
            lvm.run(
                "lvcreate",
                &["-q", "-an", "-Zn", "-L", "16M", "-n", "tail", vg, &c],
            );
        },
    )
}

#[test]
fn striped_and_spanning_lvs_across_two_disks_copy_is_complete() {
    let s = two_disks();
    assert!(
        s.lvs["striped"].1.iter().any(|p| p.pv == "0")
            && s.lvs["striped"].1.iter().any(|p| p.pv == "1")
    );
    let maps = map_disks(&s.disks);
    verify(&s, &maps);
    // Each PV reports the LVs with a segment on it.
    let names = |m: &PvMap| m.volumes.iter().map(|l| l.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&maps[0]), ["striped", "span"]);
    assert_eq!(names(&maps[1]), ["striped", "span", "tail"]);

    // The second disk missing: what spans or stripes onto it is copied
    // whole on the first, with the reason; the rest is unchanged.
    let alone = map_disks(&s.disks[..1]);
    for name in ["striped", "span"] {
        let lv = lv(&alone, name);
        assert_eq!(lv.map.method, MapMethod::Whole);
        let reason = lv.map.reason.clone().unwrap_or_default();
        assert!(
            reason.contains("not among the given devices"),
            "{name}: {reason}"
        );
        for p in s.lvs[name].1.iter().filter(|p| p.pv == "0") {
            assert_eq!(
                alone[0]
                    .map
                    .extents
                    .bytes_in(Extent::new(p.pv_offset, p.len)),
                p.len,
                "{name} {p:?}"
            );
        }
    }
    assert!(alone[0].volumes.iter().all(|l| l.name != "tail"));
    for (disk, range) in s.free.iter().filter(|f| f.0 == 0) {
        assert_eq!(
            alone[0].map.extents.bytes_in(*range),
            0,
            "free {range:?} on disk {disk}"
        );
    }
}

fn read_all(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

fn whole_reason(m: &PvMap) -> String {
    assert_eq!(m.map.method, MapMethod::Whole, "{:?}", m.map.reason);
    m.map.reason.clone().unwrap_or_default()
}

fn map_bytes(disks: Vec<Vec<u8>>) -> Vec<PvMap> {
    let pvs: Vec<PhysicalVolume<'_>> = disks.iter().map(|d| PhysicalVolume { reader: d }).collect();
    map_physical_volumes(&pvs)
}

#[test]
fn bad_checksums_unknown_segment_types_and_truncation() {
    let s = two_disks();
    let a = read_all(&s.disks[0]);
    let b = read_all(&s.disks[1]);

    // Metadata text changed behind the checksum.
    let (_, at, _) = read_metadata(&a);
    let mut bad = a.clone();
    bad[at + 10] ^= 0x20;
    let maps = map_bytes(vec![bad, b.clone()]);
    assert!(
        whole_reason(&maps[0]).contains("metadata text at byte"),
        "{:?}",
        maps[0].map.reason
    );
    assert_eq!(
        maps[1].map.method,
        MapMethod::Lvm,
        "the other PV still maps from its own metadata"
    );

    // The metadata area header.
    let mut bad = a.clone();
    bad[4096 + 30] ^= 1;
    assert!(whole_reason(&map_bytes(vec![bad, b.clone()])[0]).contains("bad header checksum"));

    // The label.
    let mut bad = a.clone();
    bad[512 + 40] ^= 1;
    assert!(whole_reason(&map_bytes(vec![bad, b.clone()])[0])
        .contains("label in sector 1 has a bad checksum"));

    // A segment type nobody knows, written with valid checksums on both PVs.
    let (text, _, _) = read_metadata(&a);
    let vg = VgMetadata::parse(&text).unwrap();
    let span_at = text.find("span {").unwrap();
    let type_at = span_at + text[span_at..].find("type = \"striped\"").unwrap();
    let odd = format!(
        "{}type = \"frobnicate\"{}",
        &text[..type_at],
        &text[type_at + 16..]
    );
    let (mut a2, mut b2) = (a.clone(), b.clone());
    write_metadata(&mut a2, &odd);
    write_metadata(&mut b2, &odd);
    let maps = map_bytes(vec![a2, b2]);
    let span = lv(&maps, "span");
    assert_eq!(span.map.method, MapMethod::Whole);
    assert!(
        span.map
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("frobnicate"),
        "{:?}",
        span.map.reason
    );
    for p in &s.lvs["span"].1 {
        let disk: usize = p.pv.parse().unwrap();
        assert_eq!(
            maps[disk]
                .map
                .extents
                .bytes_in(Extent::new(p.pv_offset, p.len)),
            p.len
        );
    }
    assert_eq!(
        lv(&maps, "striped").map.method,
        MapMethod::Fat,
        "other LVs still map"
    );
    assert!(vg.lvs.iter().any(|l| l.name == "span"));

    // A PV cut short.
    let short = Window::new(open(&s.disks[0]), 0, 40 * MIB);
    let whole_b = open(&s.disks[1]);
    let maps = map_physical_volumes(&[
        PhysicalVolume { reader: &short },
        PhysicalVolume { reader: &whole_b },
    ]);
    assert!(whole_reason(&maps[0]).contains("truncated"));
    assert_eq!(lv(&maps, "striped").map.method, MapMethod::Whole);
}

#[test]
fn raid1_lv_restored_by_vgcfgrestore_is_copied_whole_with_its_sub_lvs() {
    let s = two_disks();
    // Add a raid1 LV with its rmeta/rimage sub-LVs on free extents, through
    // LVM's own vgcfgrestore (which writes and checksums the metadata).
    let loops: Vec<Loop> = s
        .disks
        .iter()
        .map(|d| Loop::attach(d, 0, None, false))
        .collect();
    let devs: Vec<&str> = loops.iter().map(Loop::path).collect();
    let lvm = Lvm::new(&devs);
    let backup = s.dir.path().join("vg.txt");
    lvm.run("vgcfgbackup", &["-f", backup.to_str().unwrap(), &s.vg]);
    let text = std::fs::read_to_string(&backup).unwrap();
    let end = text.rfind("\t}\n\n}").expect("end of logical_volumes");
    let mut add = String::from(
        "r1 {\nid = \"aaaaaa-bbbb-cccc-dddd-eeee-ffff-000001\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\
         flags = []\nsegment_count = 1\nsegment1 {\nstart_extent = 0\nextent_count = 1\ntype = \"raid1\"\n\
         device_count = 2\nregion_size = 1024\nraids = [\"r1_rmeta_0\", \"r1_rimage_0\", \"r1_rmeta_1\", \"r1_rimage_1\"]\n}\n}\n",
    );
    for (k, (name, pv, pe)) in [
        ("r1_rmeta_0", "pv0", 20),
        ("r1_rimage_0", "pv0", 21),
        ("r1_rmeta_1", "pv1", 20),
        ("r1_rimage_1", "pv1", 21),
    ]
    .iter()
    .enumerate()
    {
        add += &format!(
            "{name} {{\nid = \"aaaaaa-bbbb-cccc-dddd-eeee-ffff-00001{k}\"\nstatus = [\"READ\", \"WRITE\"]\nflags = []\n\
             segment_count = 1\nsegment1 {{\nstart_extent = 0\nextent_count = 1\ntype = \"striped\"\nstripe_count = 1\n\
             stripes = [\"{pv}\", {pe}]\n}}\n}}\n"
        );
    }
    std::fs::write(&backup, format!("{}{add}{}", &text[..end], &text[end..])).unwrap();
    lvm.run("vgcfgrestore", &["-f", backup.to_str().unwrap(), &s.vg]);
    let listed = lvm.run(
        "lvs",
        &["-a", "--noheadings", "-o", "lv_name,segtype", &s.vg],
    );
    assert!(listed.contains("raid1"), "{listed}");
    let rimage = lvm.pieces(&s.vg, "r1_rimage_1");
    let pe_starts = lvm.pe_starts();
    drop(lvm);
    drop(loops);

    let maps = map_disks(&s.disks);
    let r1 = lv(&maps, "r1");
    assert_eq!(r1.map.method, MapMethod::Whole);
    assert!(
        r1.map
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("raid1"),
        "{:?}",
        r1.map.reason
    );
    // Its four sub-LVs' extents: PEs 20 and 21 of both PVs.
    for (disk, m) in maps.iter().enumerate() {
        let pe_start = *pe_starts.values().next().unwrap();
        let range = Extent::new(pe_start + 20 * s.extent, 2 * s.extent);
        assert_eq!(m.map.extents.bytes_in(range), range.len, "disk {disk}");
    }
    assert_eq!(rimage.len(), 1);
    assert!(
        maps.iter()
            .all(|m| m.volumes.iter().all(|l| !l.name.contains("_rimage_"))),
        "sub-LVs are not listed on their own"
    );
    assert_eq!(lv(&maps, "striped").map.method, MapMethod::Fat);
}

/// lvm2 2.03 no longer writes metadata across the end of its ring buffer,
/// but older versions did and lvm2 still reads it: the committed text is
/// moved here to wrap, vgck confirms LVM reads it, then the map must too.
#[test]
fn metadata_wrapping_around_the_ring_buffer_is_read() {
    let dir = tempdir().unwrap();
    let disk = dir.path().join("ring.img");
    sparse_image(&disk, 64 * MIB);
    let vg = unique_vg("ring");
    {
        let dev = Loop::attach(&disk, 0, None, false);
        let lvm = Lvm::new(&[dev.path()]);
        lvm.run("pvcreate", &["-q", "--metadatasize", "32k", dev.path()]);
        lvm.run("vgcreate", &["-q", "-s", "4M", &vg, dev.path()]);
        lvm.run(
            "lvcreate",
            &["-q", "-an", "-Zn", "-L", "8M", "-n", "keep", &vg],
        );
    }
    let mut img = read_all(&disk);
    let (text, _, len) = read_metadata(&img);
    let mda = 4096usize;
    let mda_size = u64::from_le_bytes(img[mda + 32..mda + 40].try_into().unwrap()) as usize;
    // 300 bytes before the end of the ring, the rest just after the header.
    let off = mda_size - 300;
    let bytes = text.as_bytes();
    img[mda + off..mda + mda_size].copy_from_slice(&bytes[..300]);
    img[mda + 512..mda + 512 + len - 300].copy_from_slice(&bytes[300..]);
    img[mda + 40..mda + 48].copy_from_slice(&(off as u64).to_le_bytes());
    img[mda + 56..mda + 60].copy_from_slice(&map_support::lvm::lvm_crc(bytes).to_le_bytes());
    map_support::lvm::fix_mda_header(&mut img);
    std::fs::write(&disk, &img).unwrap();
    {
        let dev = Loop::attach(&disk, 0, None, true);
        let lvm = Lvm::new(&[dev.path()]);
        lvm.run("vgck", &[&vg]);
        assert!(lvm
            .run("lvs", &["--noheadings", "-o", "lv_name", &vg])
            .contains("keep"));
    }
    let maps = map_disks(std::slice::from_ref(&disk));
    assert_eq!(
        maps[0].map.method,
        MapMethod::Lvm,
        "{:?}",
        maps[0].map.reason
    );
    let keep = lv(&maps, "keep");
    assert_eq!((keep.vg.as_str(), keep.size), (vg.as_str(), 8 * MIB));
}

/// Both PVs of the two-disk VG in memory, and where the first one's
/// metadata text is.
type MutationBase = (Arc<Vec<u8>>, Arc<Vec<u8>>, usize, usize);

fn mutation_base() -> &'static MutationBase {
    static BASE: OnceLock<MutationBase> = OnceLock::new();
    BASE.get_or_init(|| {
        let s = two_disks();
        let a = read_all(&s.disks[0]);
        let (_, at, len) = read_metadata(&a);
        (Arc::new(a), Arc::new(read_all(&s.disks[1])), at, len)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_pvs_never_panic(m in mutations(96 * MIB, vec![(0, 1)]), aim in 0usize..4, fix in any::<bool>()) {
        let (a, b, text_at, text_len) = mutation_base();
        let (text_at, text_len) = (*text_at as u64, *text_len as u64);
        let mut m = m;
        for (i, w) in m.writes.iter_mut().enumerate() {
            let (start, len) = match (i + aim) % 4 {
                0 => (512, 512),         // label sector and PV header
                1 => (4096, 512),        // metadata area header
                2 => (text_at, text_len), // metadata text
                _ => (0, 8 * MIB),       // anywhere near the start, LV data included
            };
            w.0 = start + w.0 % len;
        }
        let mut img = apply(a, &m);
        if fix {
            // Re-checksum text and header so the parser reads further.
            let end = text_at + text_len;
            let mut bytes = img.read_vec(0, end.min(img.size()) as usize).unwrap_or_default();
            if bytes.len() as u64 == end {
                let text_crc = map_support::lvm::lvm_crc(&bytes[text_at as usize..(text_at + text_len) as usize]);
                bytes[4096 + 56..4096 + 60].copy_from_slice(&text_crc.to_le_bytes());
                map_support::lvm::fix_mda_header(&mut bytes);
                for k in 4096..4160u64 {
                    img.set(k, bytes[k as usize]);
                }
            }
        }
        let b: &Vec<u8> = b;
        let maps = map_physical_volumes(&[PhysicalVolume { reader: &img }, PhysicalVolume { reader: b }]);
        assert_inside(&maps[0].map.extents, img.size());
        assert_inside(&maps[1].map.extents, b.size());
        for lv in maps.iter().flat_map(|m| &m.volumes) {
            assert_inside(&lv.map.extents, lv.size);
        }
    }

    #[test]
    fn mutated_metadata_text_never_panics(writes in prop::collection::vec((any::<usize>(), any::<u8>()), 1..16), cut in any::<usize>()) {
        let (a, _, at, len) = mutation_base();
        let mut text = a[*at..*at + *len].to_vec();
        for (pos, v) in writes {
            let n = text.len();
            text[pos % n] = v;
        }
        text.truncate(cut % (text.len() + 1) + text.len() / 2);
        let _ = VgMetadata::parse(&String::from_utf8_lossy(&text));
    }
}
