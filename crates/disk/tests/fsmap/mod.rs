//! Shared by map_ext and map_xfs: build a filesystem image with the real
//! tools, fill it, map it, copy only the mapped extents, and prove the copy
//! is whole with the filesystem's own checker and by file hashes.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use extents::{ExtentMap, FileAt, ReadAt};
use testkit::{Loop, Mount, TempDir};
use xenlift_disk::fs::MapError;

/// Mappers under test.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Ext,
    Xfs,
}

pub fn map_with(kind: Kind, vol: &dyn ReadAt) -> Result<ExtentMap, MapError> {
    match kind {
        Kind::Ext => xenlift_disk::fs::ext::map(vol),
        Kind::Xfs => xenlift_disk::fs::xfs::map(vol),
    }
}

/// Fails (never skips) when a tool is missing.
pub fn need(tools: &[&str]) {
    for t in tools {
        assert!(testkit::have(t), "{t} is missing: run ci/setup");
    }
}

/// A filesystem image made, filled and unmounted, with its files' hashes.
pub struct Fixture {
    pub dir: TempDir,
    pub image: PathBuf,
    pub size: u64,
    pub hashes: BTreeMap<PathBuf, String>,
}

/// Loop devices and mounts are a machine-wide resource: one fixture at a
/// time keeps parallel tests from tripping over each other's devices.
pub static LOOP_LOCK: Mutex<()> = Mutex::new(());

impl Fixture {
    /// `mkfs` (program and arguments; the image path replaces `IMG`, or is
    /// appended) on a sparse image of `size` bytes, not mounted.
    pub fn mkfs_only(mkfs: &[&str], size: u64) -> Fixture {
        need(&[mkfs[0]]);
        let dir = testkit::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        testkit::sparse_image(&image, size);
        let path = image.to_str().unwrap().to_string();
        let mut args: Vec<&str> = mkfs[1..]
            .iter()
            .map(|a| if *a == "IMG" { path.as_str() } else { a })
            .collect();
        if !mkfs.contains(&"IMG") {
            args.push(&path);
        }
        testkit::run(mkfs[0], &args);
        Fixture {
            dir,
            image,
            size,
            hashes: BTreeMap::new(),
        }
    }

    /// [`Fixture::mkfs_only`], then mounted with `fstype` and `fill`ed.
    pub fn build(mkfs: &[&str], size: u64, fstype: &str, fill: impl FnOnce(&Path)) -> Fixture {
        need(&["losetup", "mount"]);
        let Fixture { dir, image, .. } = Self::mkfs_only(mkfs, size);
        let hashes = {
            let _guard = LOOP_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            let dev = Loop::attach(&image, 0, None, false);
            let mnt = Mount::new(dev.path(), Some(fstype), "rw");
            fill(mnt.path());
            testkit::sync();
            let hashes = testkit::hash_tree(mnt.path());
            drop(mnt);
            hashes
        };
        Fixture {
            dir,
            image,
            size,
            hashes,
        }
    }

    pub fn open(&self) -> FileAt {
        FileAt::from_file(std::fs::File::open(&self.image).unwrap()).unwrap()
    }

    pub fn map(&self, kind: Kind) -> ExtentMap {
        map_with(kind, &self.open())
            .unwrap_or_else(|e| panic!("mapping {}: {e}", self.image.display()))
    }

    /// Copies only `map` into a zeroed image, runs `fsck` (program and
    /// arguments; the copy's path is appended) which must pass, mounts the
    /// copy read-only and compares every file's hash with the original.
    pub fn check_copy(&self, map: &ExtentMap, fsck: &[&str], fstype: &str, mount_opts: &str) {
        let copy = self.dir.path().join("copy.img");
        testkit::copy_mapped(&self.image, map, &copy, self.size);
        let out = Command::new(fsck[0])
            .args(&fsck[1..])
            .arg(&copy)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e} (run ci/setup)", fsck[0]));
        assert!(
            out.status.success(),
            "{fsck:?} on the copy failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let _guard = LOOP_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let dev = Loop::attach(&copy, 0, None, true);
        let mnt = Mount::new(dev.path(), Some(fstype), mount_opts);
        let hashes = testkit::hash_tree(mnt.path());
        assert_eq!(hashes.len(), self.hashes.len(), "file count of the copy");
        for (path, hash) in &self.hashes {
            assert_eq!(
                hashes.get(path),
                Some(hash),
                "{} differs in the copy",
                path.display()
            );
        }
        drop(mnt);
        std::fs::remove_file(&copy).unwrap();
    }

    /// Overwrites `bytes` at `offset` of the image.
    pub fn patch(&self, offset: u64, bytes: &[u8]) {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.image)
            .unwrap();
        f.write_all_at(bytes, offset).unwrap();
    }

    pub fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        self.open().read_vec(offset, len).unwrap()
    }
}

/// Fills a directory with `fill_tree`, then many small files of which every
/// other one is deleted again, so free space is split into many pieces.
pub fn fill_fragmented(dir: &Path, seed: u64, bulk: u64, small_files: u32) {
    testkit::fill_tree(dir, seed, bulk);
    let frag = dir.join("frag");
    std::fs::create_dir_all(&frag).unwrap();
    let mut rng = testkit::Rng::new(seed ^ 0xF7A6);
    let mut buf = vec![0u8; 8192];
    for i in 0..small_files {
        let sub = frag.join(format!("s{}", i % 16));
        std::fs::create_dir_all(&sub).unwrap();
        let len = 1 + rng.below(8192) as usize;
        rng.fill(&mut buf[..len]);
        std::fs::write(sub.join(format!("{i}")), &buf[..len]).unwrap();
    }
    testkit::sync();
    // Every other file of each directory, so holes sit between kept files.
    for i in (0..small_files).filter(|i| (i / 16) % 2 == 0) {
        std::fs::remove_file(frag.join(format!("s{}", i % 16)).join(format!("{i}"))).unwrap();
    }
    testkit::sync();
}

/// Runs a command and returns stdout, panicking with its output on failure.
pub fn stdout(program: &str, args: &[&str]) -> String {
    testkit::run_stdout(program, args)
}

/// A view of an image with some bytes replaced, for mutation tests that
/// must not copy a whole image per case.
pub struct Patched<'a> {
    pub base: &'a dyn ReadAt,
    pub size: u64,
    /// (offset, bytes), applied in order.
    pub patches: Vec<(u64, Vec<u8>)>,
}

impl ReadAt for Patched<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        let n = buf.len().min((self.size - offset) as usize);
        let buf = &mut buf[..n];
        self.base.read_exact_at(buf, offset)?;
        for (at, bytes) in &self.patches {
            let end = at + bytes.len() as u64;
            let (lo, hi) = ((*at).max(offset), end.min(offset + n as u64));
            if lo < hi {
                let dst = &mut buf[(lo - offset) as usize..(hi - offset) as usize];
                dst.copy_from_slice(&bytes[(lo - at) as usize..(hi - at) as usize]);
            }
        }
        Ok(n)
    }
    fn size(&self) -> u64 {
        self.size
    }
}

/// Records which byte ranges a mapper reads, to aim mutations at them.
pub struct Recorder<'a> {
    pub inner: &'a dyn ReadAt,
    pub reads: Mutex<Vec<(u64, u64)>>,
}

impl ReadAt for Recorder<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let n = self.inner.read_at(buf, offset)?;
        self.reads.lock().unwrap().push((offset, n as u64));
        Ok(n)
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
}

/// The unmutated map and the metadata ranges the mapper read for it.
pub fn record_reads(kind: Kind, vol: &dyn ReadAt) -> (ExtentMap, ExtentMap) {
    let rec = Recorder {
        inner: vol,
        reads: Mutex::new(Vec::new()),
    };
    let map = map_with(kind, &rec).unwrap();
    let reads = rec.reads.into_inner().unwrap();
    let read_map = ExtentMap::from_unsorted(
        reads
            .into_iter()
            .map(|(o, l)| extents::Extent::new(o, l))
            .collect(),
    );
    (map, read_map)
}

/// The check is not vacuous: a map missing part of every large extent must
/// fail [`Fixture::check_copy`].
pub fn assert_loss_detected(fix: &Fixture, map: &ExtentMap, fsck: &[&str], fstype: &str) {
    let holes = ExtentMap::from_unsorted(
        map.iter()
            .filter(|e| e.len >= 256 << 10)
            .map(|e| extents::Extent::new(e.offset + e.len / 2, e.len / 2))
            .collect(),
    );
    assert!(!holes.is_empty(), "no large extent to drop");
    let broken = map.subtract(&holes);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fix.check_copy(&broken, fsck, fstype, "ro")
    }));
    assert!(
        result.is_err(),
        "a copy missing used blocks passed the checks"
    );
}

/// Mutates the metadata of real images thousands of times (mostly bytes the
/// mapper reads, some anywhere) and checks that the mapper never panics,
/// and answers either a doubt or a map inside the volume, which must equal
/// the unmutated map when no byte it reads was touched.
pub fn mutation_campaign(kind: Kind, images: &[&Fixture], cases: u32) {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let vols: Vec<FileAt> = images.iter().map(|f| f.open()).collect();
    let bases: Vec<(ExtentMap, ExtentMap)> = vols.iter().map(|v| record_reads(kind, v)).collect();
    let values = prop_oneof![
        any::<u8>().prop_map(|b| vec![b]),
        (0u8..8).prop_map(|bit| vec![1u8 << bit]),
        Just(vec![0u8; 4]),
        Just(vec![0xFF; 4]),
        any::<u32>().prop_map(|v| v.to_le_bytes().to_vec()),
        any::<u32>().prop_map(|v| v.to_be_bytes().to_vec()),
        (0u32..64).prop_map(|v| v.to_le_bytes().to_vec()),
        (0u32..64).prop_map(|v| v.to_be_bytes().to_vec()),
    ];
    // (image, aimed at read bytes?, position seed, value, xor instead of set?)
    let mutation = (
        0..images.len(),
        prop::bool::weighted(0.85),
        any::<u64>(),
        values,
        any::<bool>(),
    );
    let strategy = (0..images.len(), prop::collection::vec(mutation, 1..4));
    let outcomes = Mutex::new([0u32; 3]); // doubt, map after touching read bytes, map untouched
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |(which, muts)| {
            let vol = &vols[which];
            let (base_map, read_map) = &bases[which];
            let size = vol.size();
            let mut patches = Vec::new();
            for (_, aimed, seed, bytes, xor) in muts {
                let offset = if aimed {
                    nth_byte(read_map, seed % read_map.total_bytes())
                } else {
                    seed % size
                };
                let bytes = if xor {
                    let old = vol.read_vec(offset, bytes.len()).unwrap_or_default();
                    old.iter().zip(&bytes).map(|(a, b)| a ^ b).collect()
                } else {
                    bytes
                };
                patches.push((offset, bytes));
            }
            let touched_read = patches
                .iter()
                .any(|(o, b)| read_map.bytes_in(extents::Extent::new(*o, b.len() as u64)) > 0);
            let patched = Patched {
                base: vol,
                size,
                patches,
            };
            match map_with(kind, &patched) {
                Err(MapError::Doubt(reason)) => {
                    prop_assert!(!reason.is_empty());
                    outcomes.lock().unwrap()[0] += 1;
                }
                Err(MapError::Io(e)) => prop_assert!(false, "i/o error instead of doubt: {e}"),
                Ok(map) => {
                    prop_assert!(map.end() <= size, "map past the volume end");
                    if touched_read {
                        outcomes.lock().unwrap()[1] += 1;
                    } else {
                        prop_assert_eq!(&map, base_map, "untouched metadata, different map");
                        outcomes.lock().unwrap()[2] += 1;
                    }
                }
            }
            Ok(())
        })
        .unwrap();
    let [doubts, mutated_maps, untouched] = *outcomes.lock().unwrap();
    eprintln!(
        "{kind:?}: {doubts} doubts, {mutated_maps} maps of mutated metadata, {untouched} untouched"
    );
    // The campaign reaches past the first checks, and both answers occur.
    assert!(doubts > cases / 10 && mutated_maps > cases / 20 && untouched > 0);
}

/// The byte at position `n` counting only bytes inside `map`.
fn nth_byte(map: &ExtentMap, mut n: u64) -> u64 {
    for e in map {
        if n < e.len {
            return e.offset + n;
        }
        n -= e.len;
    }
    map.end().saturating_sub(1)
}
