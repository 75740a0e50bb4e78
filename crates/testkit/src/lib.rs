//! Fixtures for tests, made at test time with the real tools: sparse disk
//! images, offset loop devices, mounts, trees of files with known hashes, and
//! the copy-only-the-mapped-extents check that proves a map drops nothing.
//!
//! Everything here panics with the failing command's output: it is for tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use extents::ExtentMap;
use sha2::{Digest, Sha256};

pub mod qemu;

pub use tempfile::{tempdir, TempDir};

/// Runs a command, panicking with its output when it fails.
pub fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (run ci/setup)"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command and returns its stdout as text.
pub fn run_stdout(program: &str, args: &[&str]) -> String {
    String::from_utf8_lossy(&run(program, args).stdout).into_owned()
}

/// Runs a shell script with `bash -euo pipefail`.
pub fn sh(script: &str) -> String {
    run_stdout("bash", &["-euo", "pipefail", "-c", script])
}

/// Whether a program is on PATH (for error messages, never for skipping).
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Creates a sparse file of `size` bytes.
pub fn sparse_image(path: &Path, size: u64) {
    let f = File::create(path).unwrap();
    f.set_len(size).unwrap();
}

/// SHA-256 of a whole file, as hex.
pub fn sha256_file(path: &Path) -> String {
    let mut f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex::encode(h.finalize())
}

/// A loop device on a byte range of a file, detached on drop. The host kernel
/// scans no partition tables on loop devices, so partitions get their own.
#[derive(Debug)]
pub struct Loop {
    pub device: PathBuf,
}

impl Loop {
    pub fn attach(file: &Path, offset: u64, size: Option<u64>, read_only: bool) -> Loop {
        let mut args = vec![
            "--find".to_string(),
            "--show".to_string(),
            "--offset".to_string(),
            offset.to_string(),
        ];
        if let Some(size) = size {
            args.push("--sizelimit".into());
            args.push(size.to_string());
        }
        if read_only {
            args.push("--read-only".into());
        }
        args.push(file.display().to_string());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let device = run_stdout("losetup", &refs).trim().to_string();
        Loop {
            device: device.into(),
        }
    }

    /// A loop device on a whole file with `sector_size`-byte logical sectors
    /// (4096 to test 4Kn disks).
    pub fn attach_sector_size(file: &Path, sector_size: u32) -> Loop {
        let size = sector_size.to_string();
        let file = file.display().to_string();
        let args = [
            "--find",
            "--show",
            "--sector-size",
            size.as_str(),
            file.as_str(),
        ];
        let device = run_stdout("losetup", &args).trim().to_string();
        Loop {
            device: device.into(),
        }
    }

    pub fn path(&self) -> &str {
        self.device.to_str().unwrap()
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.device).status();
    }
}

/// A mounted filesystem, unmounted (lazily if busy) on drop.
#[derive(Debug)]
pub struct Mount {
    pub dir: TempDir,
}

impl Mount {
    /// Mounts `device` with `-o options` (and `-t fstype` if given).
    pub fn new(device: &str, fstype: Option<&str>, options: &str) -> Mount {
        let dir = tempdir().unwrap();
        let target = dir.path().to_str().unwrap().to_string();
        let mut args = vec!["-o", options];
        if let Some(t) = fstype {
            args.extend(["-t", t]);
        }
        args.extend([device, target.as_str()]);
        run("mount", &args);
        Mount { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// A small deterministic generator, so fixture contents are reproducible
/// from a seed without extra crates.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Fills `dir` with about `total_bytes` of files of random content and size
/// (tiny to several MiB), in nested directories, with some deleted again so
/// the filesystem has freed blocks between used ones, plus a symlink and a
/// sparse file. Returns nothing: hash the tree afterwards with [`hash_tree`].
pub fn fill_tree(dir: &Path, seed: u64, total_bytes: u64) {
    fill_files(dir, seed, total_bytes);
    std::os::unix::fs::symlink("d0/e0", dir.join("link")).unwrap();
    let sparse = File::create(dir.join("sparse.bin")).unwrap();
    sparse.write_all_at(b"start", 0).unwrap();
    sparse.write_all_at(b"end", 8 << 20).unwrap();
    sync();
}

/// Like [`fill_tree`] but regular files and directories only, for
/// filesystems without symlinks (FAT, exFAT) or trees copied in by tools.
pub fn fill_files(dir: &Path, seed: u64, total_bytes: u64) {
    let mut rng = Rng::new(seed);
    let mut written = 0u64;
    let mut n = 0u32;
    let mut made = Vec::new();
    let mut buf = vec![0u8; 4 << 20];
    while written < total_bytes {
        let sub = dir
            .join(format!("d{}", rng.below(8)))
            .join(format!("e{}", rng.below(4)));
        fs::create_dir_all(&sub).unwrap();
        let size = match rng.below(10) {
            0..=4 => rng.below(4096),
            5..=7 => rng.below(256 << 10),
            _ => rng.below(4 << 20),
        } as usize;
        let path = sub.join(format!("f{n}.bin"));
        n += 1;
        rng.fill(&mut buf[..size]);
        fs::write(&path, &buf[..size]).unwrap();
        written += size as u64;
        made.push(path);
    }
    // Free some blocks in the middle of used space.
    for (i, p) in made.iter().enumerate() {
        if i % 5 == 2 {
            fs::remove_file(p).unwrap();
        }
    }
    sync();
}

/// Panics with a pointer to `ci/setup` unless every program is on PATH:
/// end-to-end tests never skip.
pub fn require(programs: &[&str]) {
    let missing: Vec<&str> = programs.iter().copied().filter(|p| !have(p)).collect();
    assert!(
        missing.is_empty(),
        "missing {}: run ci/setup to install the fixture tools",
        missing.join(", ")
    );
}

/// An in-memory image with some bytes overwritten and possibly cut short,
/// without copying the image: for mutation tests of parsers.
#[derive(Debug, Clone)]
pub struct Mutated {
    base: std::sync::Arc<Vec<u8>>,
    patches: BTreeMap<u64, u8>,
    len: u64,
}

impl Mutated {
    pub fn new(base: std::sync::Arc<Vec<u8>>) -> Self {
        let len = base.len() as u64;
        Mutated {
            base,
            patches: BTreeMap::new(),
            len,
        }
    }

    /// Overwrites the byte at `offset` (ignored past the end).
    pub fn set(&mut self, offset: u64, value: u8) {
        if offset < self.len {
            self.patches.insert(offset, value);
        }
    }

    /// Cuts the image to `len` bytes (never longer than it is).
    pub fn truncate(&mut self, len: u64) {
        self.len = self.len.min(len);
    }
}

impl extents::ReadAt for Mutated {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = buf.len().min((self.len - offset) as usize);
        let start = offset as usize;
        buf[..n].copy_from_slice(&self.base[start..start + n]);
        for (&at, &v) in self.patches.range(offset..offset + n as u64) {
            buf[(at - offset) as usize] = v;
        }
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.len
    }
}

/// SHA-256 of every regular file under `dir` (and the target of every
/// symlink), keyed by relative path.
pub fn hash_tree(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(dir).unwrap().to_path_buf();
            let ft = entry.file_type().unwrap();
            if ft.is_symlink() {
                let target = fs::read_link(&path).unwrap();
                out.insert(rel, format!("-> {}", target.display()));
            } else if ft.is_dir() {
                if rel.as_os_str() != "lost+found" {
                    stack.push(path);
                }
            } else if ft.is_file() {
                out.insert(rel, sha256_file(&path));
            }
        }
    }
    out
}

/// Writes a zeroed sparse image of `size` bytes at `dst` holding only the
/// bytes of `src` inside `map`: what a target receives from xenlift.
pub fn copy_mapped(src: &Path, map: &ExtentMap, dst: &Path, size: u64) {
    let input = File::open(src).unwrap();
    let output = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(dst)
        .unwrap();
    output.set_len(size).unwrap();
    let mut buf = vec![0u8; 4 << 20];
    for e in map {
        let mut off = e.offset;
        while off < e.end() {
            let n = (e.end() - off).min(buf.len() as u64) as usize;
            input.read_exact_at(&mut buf[..n], off).unwrap();
            output.write_all_at(&buf[..n], off).unwrap();
            off += n as u64;
        }
    }
    output.sync_all().unwrap();
}

pub fn sync() {
    let _ = Command::new("sync").status();
}

/// Appends a line to a file (for fstab-like fixtures).
pub fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Builds (or takes from the cache) a Debian guest image with
/// tests/guests/build.sh VARIANT; returns its path.
pub fn guest_image(variant: &str) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/guests/build.sh");
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(&script)
        .arg(variant)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "building the {variant} guest image failed (run ci/setup for the tools):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = PathBuf::from(
        stdout
            .lines()
            .last()
            .expect("build.sh prints the image path")
            .trim(),
    );
    eprintln!(
        "guest image {variant}: {} ({:?})",
        path.display(),
        started.elapsed()
    );
    path
}
