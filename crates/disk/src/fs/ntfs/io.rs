//! `Read + Seek` over a volume for the `ntfs` crate, which never sees the
//! end of the volume: reads past it return zeros and are remembered.
//!
//! The crate turns an end-of-file met while parsing a structure into a
//! panic (ntfs 0.4.0, `From<binrw::Error>`), so it must never meet one; a
//! structure that reaches past the volume makes the mapper doubt instead.

use std::io::{self, BufReader, Read, Seek, SeekFrom};

use extents::ReadAt;

/// Buffered reads of a volume, zeros past its end.
pub struct Bounded<'a> {
    inner: BufReader<Raw<'a>>,
    pos: u64,
    size: u64,
    overran: bool,
}

impl<'a> Bounded<'a> {
    pub fn new(vol: &'a dyn ReadAt) -> Self {
        Bounded {
            inner: BufReader::new(Raw { vol, pos: 0 }),
            pos: 0,
            size: vol.size(),
            overran: false,
        }
    }

    /// Whether anything read past the end of the volume.
    pub fn overran(&self) -> bool {
        self.overran
    }
}

impl Read for Bounded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let left = self.size.saturating_sub(self.pos);
        let got = if left == 0 {
            0
        } else {
            let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            self.inner.read(&mut buf[..n])?
        };
        if got > 0 {
            self.pos += got as u64;
            return Ok(got);
        }
        // Past the end (or the volume ended early): zeros, remembered.
        self.overran = true;
        buf.fill(0);
        self.pos = self.pos.saturating_add(buf.len() as u64);
        Ok(buf.len())
    }
}

impl Seek for Bounded<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek outside the volume"))?;
        self.inner.seek(SeekFrom::Start(target))?;
        self.pos = target;
        Ok(target)
    }
}

/// Unbuffered positional reads of the volume.
struct Raw<'a> {
    vol: &'a dyn ReadAt,
    pos: u64,
}

impl Read for Raw<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.vol.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Raw<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match pos {
            SeekFrom::Start(n) => self.pos = n,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "only absolute seeks",
                ))
            }
        }
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_past_the_end_are_remembered() {
        let vol: Vec<u8> = (1..=10).collect();
        let mut r = Bounded::new(&vol);
        let mut buf = [0xAAu8; 6];
        r.seek(SeekFrom::Start(6)).unwrap();
        r.read_exact(&mut buf).unwrap();
        assert_eq!(buf, [7, 8, 9, 10, 0, 0]);
        assert!(r.overran());
        let mut r = Bounded::new(&vol);
        r.read_exact(&mut buf).unwrap();
        assert!(!r.overran());
    }
}
