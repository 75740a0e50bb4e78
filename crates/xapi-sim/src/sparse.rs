//! Sparse files: finding the ranges that hold data (SEEK_DATA/SEEK_HOLE), and
//! copying a file without filling its holes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use nix::errno::Errno;
use nix::unistd::{lseek, Whence};

/// The `[start, end)` byte ranges of `file` that may hold data, in order;
/// holes read as zeros. Filesystems without SEEK_DATA report one range.
pub fn data_ranges(file: &File, size: u64) -> io::Result<Vec<(u64, u64)>> {
    let mut ranges = Vec::new();
    let mut pos: u64 = 0;
    while pos < size {
        let offset = i64::try_from(pos).map_err(io::Error::other)?;
        let start = match lseek(file.as_fd(), offset, Whence::SeekData) {
            Ok(s) => s as u64,
            Err(Errno::ENXIO) => break,
            Err(Errno::EINVAL) => return Ok(vec![(0, size)]),
            Err(e) => return Err(e.into()),
        };
        if start >= size {
            break;
        }
        let end = match lseek(file.as_fd(), start as i64, Whence::SeekHole) {
            Ok(e) => (e as u64).min(size),
            Err(e) => return Err(e.into()),
        };
        ranges.push((start, end));
        pos = end;
    }
    Ok(ranges)
}

/// Copies `src` to a new file `dst` of the same size, writing only the
/// ranges that hold data.
pub fn copy(src: &Path, dst: &Path) -> io::Result<()> {
    let from = File::open(src)?;
    let size = from.metadata()?.len();
    let to = OpenOptions::new().write(true).create_new(true).open(dst)?;
    to.set_len(size)?;
    let mut buf = vec![0u8; 1 << 20];
    for (start, end) in data_ranges(&from, size)? {
        let mut pos = start;
        while pos < end {
            let n = usize::try_from((end - pos).min(buf.len() as u64)).map_err(io::Error::other)?;
            let chunk = &mut buf[..n];
            from.read_exact_at(chunk, pos)?;
            to.write_all_at(chunk, pos)?;
            pos += n as u64;
        }
    }
    to.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_are_skipped_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&a)
            .unwrap();
        f.set_len(64 << 20).unwrap();
        f.write_all_at(b"middle", 32 << 20).unwrap();
        drop(f);
        let f = File::open(&a).unwrap();
        let ranges = data_ranges(&f, 64 << 20).unwrap();
        assert!(!ranges.is_empty());
        assert!(ranges.iter().any(|(s, e)| *s <= 32 << 20 && *e > 32 << 20));
        let covered: u64 = ranges.iter().map(|(s, e)| e - s).sum();
        assert!(covered < 64 << 20, "the hole was not seen: {ranges:?}");
        let b = dir.path().join("b");
        copy(&a, &b).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    }
}
