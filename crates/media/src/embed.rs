//! The embed area: a reserved, zeroed region inside a finished ISO that can
//! later carry an answer file, written in place without rebuilding the image
//! (the ISO9660 tree, El Torito catalog and partition tables stay untouched).
//!
//! Layout (all integers little-endian), starting on a 2048-byte sector:
//!
//! | offset | length | field |
//! |---|---|---|
//! | 0 | 16 | magic `xenlift:embed:v1` |
//! | 16 | 8 | size of the whole area, header included |
//! | 24 | 8 | payload length (0: nothing embedded) |
//! | 32 | 32 | SHA-256 of the payload (zero when empty) |
//! | 64 | 448 | zero |
//! | 512 | .. | payload, then zeros to the end of the area |
//!
//! The checksum lets a reader tell a torn or foreign write from an answer file.

use std::io::{self, Read, Seek, SeekFrom, Write};

use sha2::{Digest, Sha256};

pub const MAGIC: &[u8; 16] = b"xenlift:embed:v1";
pub const HEADER_LEN: usize = 512;
/// Room for an answer file of 63.5 KiB, far more than one needs.
pub const DEFAULT_AREA_SIZE: u64 = 64 * 1024;
/// The area starts on an ISO9660 sector.
const ALIGN: u64 = 2048;

/// Errors of the embed area.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// No area in the image: it is not a xenlift ISO, or was built without one.
    #[error("no xenlift embed area found: is this a xenlift ISO?")]
    NotFound,
    /// More than one candidate: refuse to guess which to write.
    #[error("{0} xenlift embed areas found (at byte offsets {1:?}); refusing to guess")]
    Ambiguous(usize, Vec<u64>),
    /// The payload does not fit.
    #[error("answer file is {len} bytes; the embed area holds at most {max}")]
    TooLarge { len: usize, max: usize },
    /// The header is inconsistent.
    #[error("embed area header is damaged: {0}")]
    Damaged(&'static str),
    /// The payload does not match its checksum.
    #[error("embedded answer file does not match its checksum (torn write?): embed it again")]
    Checksum,
    /// Reading or writing the image failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Where an area sits in an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub offset: u64,
    pub size: u64,
}

/// A fresh, empty area of `size` bytes (a multiple of 2048, at least 4096).
pub fn blank(size: u64) -> Vec<u8> {
    let mut area = vec![0u8; size as usize];
    area[..16].copy_from_slice(MAGIC);
    area[16..24].copy_from_slice(&size.to_le_bytes());
    area
}

/// The whole area holding `payload` (or nothing, to clear it).
pub fn encode(size: u64, payload: Option<&[u8]>) -> Result<Vec<u8>, EmbedError> {
    let mut area = blank(size);
    if let Some(payload) = payload {
        let max = area.len().saturating_sub(HEADER_LEN);
        if payload.len() > max {
            return Err(EmbedError::TooLarge {
                len: payload.len(),
                max,
            });
        }
        area[24..32].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        area[32..64].copy_from_slice(&Sha256::digest(payload));
        area[HEADER_LEN..HEADER_LEN + payload.len()].copy_from_slice(payload);
    }
    Ok(area)
}

/// The payload held by `area` (the area's bytes from its first byte on),
/// `None` when the area is empty.
pub fn decode(area: &[u8]) -> Result<Option<Vec<u8>>, EmbedError> {
    let header = area
        .get(..HEADER_LEN)
        .ok_or(EmbedError::Damaged("shorter than its header"))?;
    if &header[..16] != MAGIC {
        return Err(EmbedError::Damaged("wrong magic"));
    }
    let size = le_u64(&header[16..24]);
    let len = le_u64(&header[24..32]);
    if size < ALIGN || size % ALIGN != 0 {
        return Err(EmbedError::Damaged("area size is not a multiple of 2048"));
    }
    if len == 0 {
        return Ok(None);
    }
    if len > size - HEADER_LEN as u64 {
        return Err(EmbedError::Damaged("payload longer than the area"));
    }
    let payload = area
        .get(HEADER_LEN..HEADER_LEN + len as usize)
        .ok_or(EmbedError::Damaged("payload cut short"))?;
    if Sha256::digest(payload).as_slice() != &header[32..64] {
        return Err(EmbedError::Checksum);
    }
    Ok(Some(payload.to_vec()))
}

/// Finds the one area in an image by scanning sector starts for the magic.
pub fn locate<R: Read + Seek>(image: &mut R) -> Result<Location, EmbedError> {
    image.seek(SeekFrom::Start(0))?;
    let mut found = Vec::new();
    let mut chunk = vec![0u8; 1 << 20];
    let mut base = 0u64;
    loop {
        let n = read_full(image, &mut chunk)?;
        for at in (0..n).step_by(ALIGN as usize) {
            let Some(head) = chunk.get(at..at + 24) else {
                continue;
            };
            if &head[..16] != MAGIC {
                continue;
            }
            let size = le_u64(&head[16..24]);
            if size >= ALIGN && size % ALIGN == 0 {
                found.push(Location {
                    offset: base + at as u64,
                    size,
                });
            }
        }
        if n < chunk.len() {
            break;
        }
        base += n as u64;
    }
    match found.len() {
        0 => Err(EmbedError::NotFound),
        1 => Ok(found[0]),
        n => Err(EmbedError::Ambiguous(
            n,
            found.iter().map(|l| l.offset).collect(),
        )),
    }
}

/// Reads the area at `loc`.
pub fn read_at<R: Read + Seek>(image: &mut R, loc: Location) -> Result<Vec<u8>, EmbedError> {
    image.seek(SeekFrom::Start(loc.offset))?;
    let mut area = vec![0u8; loc.size as usize];
    image.read_exact(&mut area)?;
    Ok(area)
}

/// Writes `payload` (or clears the area) in place; returns where.
pub fn write_in_place<F: Read + Write + Seek>(
    image: &mut F,
    payload: Option<&[u8]>,
) -> Result<Location, EmbedError> {
    let loc = locate(image)?;
    let area = encode(loc.size, payload)?;
    image.seek(SeekFrom::Start(loc.offset))?;
    image.write_all(&area)?;
    image.flush()?;
    Ok(loc)
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(b)
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// An "image": filler, then an area on a sector boundary, then filler.
    fn image_with_area(at: usize) -> Vec<u8> {
        let mut img = vec![0xA5u8; at];
        img.extend(blank(DEFAULT_AREA_SIZE));
        img.extend(vec![0x5Au8; 10_000]);
        img
    }

    #[test]
    fn write_then_read_back_then_clear() {
        let mut img = Cursor::new(image_with_area(3 * 2048 + (1 << 20)));
        let before = img.get_ref().clone();
        let loc = write_in_place(&mut img, Some(b"to = \"dir:/x\"\n")).unwrap();
        assert_eq!(loc.offset, 3 * 2048 + (1 << 20));
        let area = read_at(&mut img, loc).unwrap();
        assert_eq!(decode(&area).unwrap().unwrap(), b"to = \"dir:/x\"\n");
        // Only the area changed.
        let after = img.get_ref();
        assert_eq!(before.len(), after.len());
        assert_eq!(before[..loc.offset as usize], after[..loc.offset as usize]);
        let end = (loc.offset + loc.size) as usize;
        assert_eq!(before[end..], after[end..]);
        write_in_place(&mut img, None).unwrap();
        assert_eq!(img.get_ref(), &before, "clearing restores the blank area");
    }

    #[test]
    fn damaged_or_missing_areas_are_reported() {
        let mut area = encode(DEFAULT_AREA_SIZE, Some(b"a = 1")).unwrap();
        area[HEADER_LEN] ^= 1;
        assert!(matches!(decode(&area), Err(EmbedError::Checksum)));
        let mut img = Cursor::new(vec![0u8; 8192]);
        assert!(matches!(locate(&mut img), Err(EmbedError::NotFound)));
        let mut two = blank(DEFAULT_AREA_SIZE);
        two.extend(blank(DEFAULT_AREA_SIZE));
        assert!(matches!(
            locate(&mut Cursor::new(two)),
            Err(EmbedError::Ambiguous(2, _))
        ));
        let big = vec![b'x'; DEFAULT_AREA_SIZE as usize];
        assert!(matches!(
            encode(DEFAULT_AREA_SIZE, Some(&big)),
            Err(EmbedError::TooLarge { .. })
        ));
    }

    #[test]
    fn magic_off_a_sector_boundary_is_not_an_area() {
        let mut img = vec![0u8; 4096];
        img.splice(100..100, blank(4096));
        assert!(matches!(
            locate(&mut Cursor::new(img)),
            Err(EmbedError::NotFound)
        ));
    }
}
