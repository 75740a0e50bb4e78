//! Writing into a VDI's sparse file: bounds-checked, and runs of zeros become
//! holes (they read back as zeros, and the file stays sparse).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use nix::fcntl::{fallocate, FallocateFlags};

use super::ImportError;

/// Zero runs are found at this granularity.
const PIECE: usize = 64 * 1024;

pub struct VdiFile {
    file: File,
    size: u64,
}

impl VdiFile {
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self { file, size })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Writes `data` at `offset`; zero pieces are punched out instead.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), ImportError> {
        let len = data.len() as u64;
        if offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(ImportError::PastEnd {
                offset,
                len,
                size: self.size,
            });
        }
        let mut run_start = 0;
        while run_start < data.len() {
            let zero = is_zero(piece(data, run_start));
            let mut run_end = run_start + piece(data, run_start).len();
            while run_end < data.len() && is_zero(piece(data, run_end)) == zero {
                run_end += piece(data, run_end).len();
            }
            let at = offset + run_start as u64;
            let run = &data[run_start..run_end];
            if zero {
                self.punch(at, run)?;
            } else {
                self.file
                    .write_all_at(run, at)
                    .map_err(ImportError::Write)?;
            }
            run_start = run_end;
        }
        Ok(())
    }

    fn punch(&self, at: u64, run: &[u8]) -> Result<(), ImportError> {
        let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
        let (Ok(off), Ok(len)) = (i64::try_from(at), i64::try_from(run.len())) else {
            return self.file.write_all_at(run, at).map_err(ImportError::Write);
        };
        match fallocate(self.file.as_fd(), flags, off, len) {
            Ok(()) => Ok(()),
            // Filesystems without hole punching get the zeros written.
            Err(_) => self.file.write_all_at(run, at).map_err(ImportError::Write),
        }
    }

    pub fn sync(&self) -> Result<(), ImportError> {
        self.file.sync_data().map_err(ImportError::Write)
    }
}

fn piece(data: &[u8], start: usize) -> &[u8] {
    let end = (start + PIECE).min(data.len());
    &data[start..end]
}

fn is_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| *b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_read_back_and_bounds_hold() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v");
        let f = File::create(&path).unwrap();
        f.set_len(1 << 20).unwrap();
        f.write_all_at(&[7u8; 4096], 0).unwrap();
        drop(f);
        let vdi = VdiFile::open(&path).unwrap();
        let mut data = vec![0u8; 3 * PIECE];
        data[PIECE + 5] = 9;
        vdi.write_at(0, &data).unwrap();
        let back = std::fs::read(&path).unwrap();
        assert_eq!(&back[..data.len()], &data[..]);
        assert!(matches!(
            vdi.write_at((1 << 20) - 512, &[1u8; 1024]),
            Err(ImportError::PastEnd { .. })
        ));
    }
}
