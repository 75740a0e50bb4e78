//! `format=vhd`: a dynamic (or differencing) VHD read strictly forward, as
//! XAPI's vhd-tool does. Only sectors whose bitmap bit is set are written, so
//! a sparse VHD sent onto an existing VDI changes only its blocks.

use super::body::{read_exact, read_full, Body};
use super::vdi_file::VdiFile;
use super::ImportError;

const SECTOR: u64 = 512;
const FOOTER_COOKIE: &[u8] = b"conectix";
const HEADER_COOKIE: &[u8] = b"cxsparse";
const VERSION: u32 = 0x0001_0000;
const ABSENT: u32 = 0xFFFF_FFFF;
/// A BAT larger than this (16 MiB, 8 TiB of 2 MiB blocks) is refused
/// rather than read into memory.
const MAX_ENTRIES: u32 = 1 << 22;
const MAX_BLOCK: u32 = 64 << 20;

fn bad(why: impl Into<String>) -> ImportError {
    ImportError::Vhd(why.into())
}

fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_be_bytes)
        .unwrap_or(0)
}

fn be64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// The VHD checksum: the one's complement of the byte sum, with the checksum
/// field itself counted as zeros.
pub fn checksum(bytes: &[u8], field: usize) -> u32 {
    let sum = bytes
        .iter()
        .enumerate()
        .filter(|(i, _)| !(field..field + 4).contains(i))
        .fold(0u32, |acc, (_, b)| acc.wrapping_add(u32::from(*b)));
    !sum
}

fn check_sum(bytes: &[u8], field: usize, what: &str) -> Result<(), ImportError> {
    let stored = be32(bytes, field);
    let computed = checksum(bytes, field);
    if stored != computed {
        return Err(bad(format!(
            "{what} checksum is {stored:#010x}, computed {computed:#010x}"
        )));
    }
    Ok(())
}

struct Footer {
    data_offset: u64,
}

fn parse_footer(b: &[u8], what: &str) -> Result<Footer, ImportError> {
    if b.get(..8) != Some(FOOTER_COOKIE) {
        return Err(bad(format!("{what} has no conectix cookie")));
    }
    check_sum(b, 64, what)?;
    if be32(b, 12) != VERSION {
        return Err(bad(format!("{what} has format version {:#x}", be32(b, 12))));
    }
    match be32(b, 60) {
        3 | 4 => {}
        2 => return Err(bad("a fixed VHD cannot be imported as a stream")),
        other => return Err(bad(format!("{what} has disk type {other}"))),
    }
    Ok(Footer {
        data_offset: be64(b, 16),
    })
}

struct Header {
    table_offset: u64,
    entries: u32,
    block_size: u32,
}

fn parse_header(b: &[u8]) -> Result<Header, ImportError> {
    if b.get(..8) != Some(HEADER_COOKIE) {
        return Err(bad("the dynamic header has no cxsparse cookie"));
    }
    check_sum(b, 36, "dynamic header")?;
    if be32(b, 24) != VERSION {
        return Err(bad(format!("dynamic header version {:#x}", be32(b, 24))));
    }
    let block_size = be32(b, 32);
    if !block_size.is_power_of_two() || !(512..=MAX_BLOCK).contains(&block_size) {
        return Err(bad(format!("block size {block_size}")));
    }
    let entries = be32(b, 28);
    if entries > MAX_ENTRIES {
        return Err(bad(format!("{entries} BAT entries")));
    }
    Ok(Header {
        table_offset: be64(b, 16),
        entries,
        block_size,
    })
}

/// The body with its position, read only forwards.
struct Forward<'b, 'a> {
    body: &'b mut Body<'a>,
    pos: u64,
}

impl Forward<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<(), ImportError> {
        read_exact(self.body, buf)?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn skip_to(&mut self, target: u64, what: &str) -> Result<(), ImportError> {
        if target < self.pos {
            return Err(bad(format!(
                "{what} at offset {target} lies behind the stream position {}: blocks out of order or overlapping",
                self.pos
            )));
        }
        let mut left = target - self.pos;
        let mut scratch = vec![0u8; usize::try_from(left.min(1 << 20)).unwrap_or(1 << 20)];
        while left > 0 {
            let n = usize::try_from(left.min(scratch.len() as u64)).unwrap_or(scratch.len());
            self.read(&mut scratch[..n])?;
            left -= n as u64;
        }
        Ok(())
    }
}

fn round_up(n: u64) -> u64 {
    n.div_ceil(SECTOR) * SECTOR
}

pub fn receive(body: &mut Body, vdi: &VdiFile) -> Result<(), ImportError> {
    let expected = body.expected();
    let mut s = Forward { body, pos: 0 };
    let mut footer = [0u8; 512];
    s.read(&mut footer)?;
    let footer = parse_footer(&footer, "the leading footer")?;
    if footer.data_offset < 512 {
        return Err(bad(format!("data offset {}", footer.data_offset)));
    }
    s.skip_to(footer.data_offset, "the dynamic header")?;
    let mut header = [0u8; 1024];
    s.read(&mut header)?;
    let header = parse_header(&header)?;
    s.skip_to(header.table_offset, "the BAT")?;
    let mut bat = vec![
        0u8;
        usize::try_from(round_up(4 * u64::from(header.entries)))
            .map_err(|_| bad("BAT size"))?
    ];
    s.read(&mut bat)?;

    let mut blocks: Vec<(u64, u64)> = (0..header.entries)
        .filter_map(|i| {
            let sector = be32(&bat, 4 * i as usize);
            (sector != ABSENT).then_some((u64::from(sector) * SECTOR, u64::from(i)))
        })
        .collect();
    blocks.sort_unstable();

    let block_size = u64::from(header.block_size);
    let sectors = usize::try_from(block_size / SECTOR).map_err(|_| bad("block size"))?;
    let mut bitmap =
        vec![0u8; usize::try_from(round_up(block_size / SECTOR / 8)).map_err(|_| bad("bitmap"))?];
    let mut data = vec![0u8; usize::try_from(block_size).map_err(|_| bad("block size"))?];
    for (file_offset, index) in blocks {
        s.skip_to(file_offset, &format!("block {index}"))?;
        s.read(&mut bitmap)?;
        s.read(&mut data)?;
        write_marked(vdi, index * block_size, &bitmap, &data, sectors)?;
    }

    match expected {
        Some(total) => {
            let at = total
                .checked_sub(1)
                .map(|t| t & !(SECTOR - 1))
                .ok_or_else(|| bad("empty body"))?;
            s.skip_to(at, "the trailing footer")?;
            let mut trailer = [0u8; 512];
            s.read(&mut trailer)?;
            parse_footer(&trailer, "the trailing footer")?;
        }
        None => {
            // Without a length the trailing footer is the last 512 bytes.
            let mut tail: Vec<u8> = Vec::new();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = read_full(s.body, &mut buf)?;
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&buf[..n]);
                let excess = tail.len().saturating_sub(512);
                tail.drain(..excess);
            }
            if tail.len() < 512 {
                return Err(ImportError::Truncated(s.body.consumed()));
            }
            parse_footer(&tail, "the trailing footer")?;
        }
    }
    Ok(())
}

/// Writes the runs of sectors whose bitmap bit is set (MSB first).
fn write_marked(
    vdi: &VdiFile,
    base: u64,
    bitmap: &[u8],
    data: &[u8],
    sectors: usize,
) -> Result<(), ImportError> {
    let marked = |j: usize| {
        bitmap
            .get(j / 8)
            .is_some_and(|b| b & (0x80 >> (j % 8)) != 0)
    };
    let mut j = 0;
    while j < sectors {
        if !marked(j) {
            j += 1;
            continue;
        }
        let start = j;
        while j < sectors && marked(j) {
            j += 1;
        }
        let bytes = data
            .get(start * 512..j * 512)
            .ok_or_else(|| bad("bitmap longer than the block"))?;
        vdi.write_at(base + start as u64 * SECTOR, bytes)?;
    }
    Ok(())
}
