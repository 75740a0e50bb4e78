//! `Read + Seek` over a [`ReadAt`], for crates that want a stream (the
//! `ntfs` and `blkid-rs` readers). Each cursor keeps its own position.

use std::io::{self, Read, Seek, SeekFrom};

use extents::ReadAt;

/// A stream view of a positional reader.
#[derive(Debug)]
pub struct ReadAtCursor<R> {
    inner: R,
    pos: u64,
}

impl<R: ReadAt> ReadAtCursor<R> {
    pub fn new(inner: R) -> Self {
        ReadAtCursor { inner, pos: 0 }
    }
}

impl<R: ReadAt> Read for ReadAtCursor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read_at(buf, self.pos)?;
        self.pos = self.pos.saturating_add(n as u64);
        Ok(n)
    }
}

impl<R: ReadAt> Seek for ReadAtCursor<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.inner.size().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start or past 2^64",
            )
        })?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_seeks() {
        let data: Vec<u8> = (0..10).collect();
        let mut c = ReadAtCursor::new(&data);
        let mut buf = [0u8; 4];
        assert_eq!(c.seek(SeekFrom::End(-3)).unwrap(), 7);
        assert_eq!(c.read(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], &[7, 8, 9]);
        assert_eq!(c.read(&mut buf).unwrap(), 0);
        assert!(c.seek(SeekFrom::Current(-100)).is_err());
    }
}
