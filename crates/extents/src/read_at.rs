//! Positional reads over disks, partitions and volumes.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Something of fixed size that can be read at any offset, from many threads.
///
/// Disks, partitions (a [`Window`] on a disk), logical volumes and in-memory
/// test images all look alike to the code that maps and streams them.
pub trait ReadAt: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`. Returns fewer only at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Size in bytes.
    fn size(&self) -> u64;

    /// Fills `buf` from `offset`, or fails with `UnexpectedEof` past the end.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("read past the end at byte {offset} of {}", self.size()),
                    ))
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads `len` bytes at `offset` into a new buffer.
    fn read_vec(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; len];
        self.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        (**self).read_at(buf, offset)
    }
    fn size(&self) -> u64 {
        (**self).size()
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Box<T> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        (**self).read_at(buf, offset)
    }
    fn size(&self) -> u64 {
        (**self).size()
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Arc<T> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        (**self).read_at(buf, offset)
    }
    fn size(&self) -> u64 {
        (**self).size()
    }
}

/// An in-memory disk, for tests and small metadata images.
impl ReadAt for Vec<u8> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        if start >= self.len() {
            return Ok(0);
        }
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
    fn size(&self) -> u64 {
        self.len() as u64
    }
}

/// A file or device whose size was fixed when it was opened.
#[derive(Debug)]
pub struct FileAt {
    file: File,
    size: u64,
}

impl FileAt {
    pub fn new(file: File, size: u64) -> Self {
        FileAt { file, size }
    }

    /// Takes the size from the file's metadata (regular files only; block
    /// devices report 0 there and need an ioctl).
    pub fn from_file(file: File) -> io::Result<Self> {
        let size = file.metadata()?.len();
        Ok(FileAt { file, size })
    }

    pub fn file(&self) -> &File {
        &self.file
    }
}

impl ReadAt for FileAt {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        let n = buf
            .len()
            .min((self.size - offset).min(usize::MAX as u64) as usize);
        self.file.read_at(&mut buf[..n], offset)
    }
    fn size(&self) -> u64 {
        self.size
    }
}

/// A byte range of another reader: a partition on a disk, a segment of a volume.
/// Reads never leave the window, even when the window runs past the inner end.
#[derive(Debug, Clone)]
pub struct Window<R> {
    inner: R,
    offset: u64,
    len: u64,
}

impl<R: ReadAt> Window<R> {
    pub fn new(inner: R, offset: u64, len: u64) -> Self {
        Window { inner, offset, len }
    }

    /// Where the window starts in the inner reader.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn inner(&self) -> &R {
        &self.inner
    }
}

impl<R: ReadAt> ReadAt for Window<R> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = buf
            .len()
            .min((self.len - offset).min(usize::MAX as u64) as usize);
        match self.offset.checked_add(offset) {
            Some(at) => self.inner.read_at(&mut buf[..n], at),
            None => Ok(0),
        }
    }
    fn size(&self) -> u64 {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_stays_inside() {
        let disk: Vec<u8> = (0..=255).collect();
        let part = Window::new(&disk, 16, 8);
        let mut buf = [0u8; 16];
        assert_eq!(part.read_at(&mut buf, 4).unwrap(), 4);
        assert_eq!(&buf[..4], &[20, 21, 22, 23]);
        assert_eq!(part.read_at(&mut buf, 8).unwrap(), 0);
        assert!(part.read_exact_at(&mut buf, 0).is_err());
    }

    #[test]
    fn window_past_inner_end_reads_short() {
        let disk = vec![7u8; 10];
        let part = Window::new(&disk, 8, 100);
        let mut buf = [0u8; 8];
        assert_eq!(part.read_at(&mut buf, 0).unwrap(), 2);
        let err = part.read_exact_at(&mut buf, 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
