//! Export as a dynamic VHD: footer, header, BAT, then the blocks that hold
//! data (all-zero blocks, or with a base VDI the unchanged ones, are left
//! out), then the footer again. Creator `tap`, so qemu takes the exact size.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::time::{SystemTime, UNIX_EPOCH};

use super::vhd_in::checksum;
use crate::sparse::data_ranges;

pub const BLOCK: u64 = 2 << 20;
const SECTOR: u64 = 512;
/// XAPI refuses VHD export above this (2040 GiB).
pub const MAX_SIZE: u64 = 2040 << 30;
/// Seconds between 1970-01-01 and 2000-01-01, the VHD epoch.
const VHD_EPOCH: u64 = 946_684_800;

/// Which blocks of a disk go into the VHD.
pub struct Plan {
    pub size: u64,
    pub blocks: Vec<u64>,
}

impl Plan {
    pub fn entries(&self) -> u64 {
        self.size.div_ceil(BLOCK)
    }

    fn bat_bytes(&self) -> u64 {
        (4 * self.entries()).div_ceil(SECTOR) * SECTOR
    }

    /// The exact stream length.
    #[cfg(test)]
    pub fn len(&self) -> u64 {
        512 + 1024 + self.bat_bytes() + self.blocks.len() as u64 * (SECTOR + BLOCK) + 512
    }
}

fn read_block(file: &File, size: u64, index: u64, buf: &mut [u8]) -> io::Result<()> {
    buf.fill(0);
    let start = index * BLOCK;
    let len = usize::try_from(size.saturating_sub(start).min(BLOCK)).map_err(io::Error::other)?;
    let file_len = file.metadata()?.len();
    let readable = usize::try_from(file_len.saturating_sub(start).min(len as u64))
        .map_err(io::Error::other)?;
    file.read_exact_at(&mut buf[..readable], start)
}

/// Finds the blocks to send: those holding data, or with `base` those that
/// differ from it.
pub fn plan(file: &File, size: u64, base: Option<&File>) -> io::Result<Plan> {
    let mut candidates: Vec<u64> = Vec::new();
    let mut add_ranges = |f: &File| -> io::Result<()> {
        let len = f.metadata()?.len().min(size);
        for (start, end) in data_ranges(f, len)? {
            candidates.extend(start / BLOCK..end.div_ceil(BLOCK));
        }
        Ok(())
    };
    add_ranges(file)?;
    if let Some(b) = base {
        add_ranges(b)?;
    }
    candidates.sort_unstable();
    candidates.dedup();
    let block_len = usize::try_from(BLOCK).map_err(io::Error::other)?;
    let mut ours = vec![0u8; block_len];
    let mut theirs = vec![0u8; block_len];
    let mut blocks = Vec::new();
    for index in candidates.into_iter().filter(|i| i * BLOCK < size) {
        read_block(file, size, index, &mut ours)?;
        let differs = match base {
            None => ours.iter().any(|b| *b != 0),
            Some(b) => {
                read_block(b, size, index, &mut theirs)?;
                ours != theirs
            }
        };
        if differs {
            blocks.push(index);
        }
    }
    Ok(Plan { size, blocks })
}

/// CHS geometry by the VHD specification's algorithm.
pub fn geometry(size: u64) -> (u16, u8, u8) {
    let total = (size / SECTOR).min(65535 * 16 * 255);
    let (mut spt, mut heads, mut cth);
    if total >= 65535 * 16 * 63 {
        spt = 255;
        heads = 16;
        cth = total / spt;
    } else {
        spt = 17;
        cth = total / spt;
        heads = cth.div_ceil(1024);
        if heads < 4 {
            heads = 4;
        }
        if cth >= heads * 1024 || heads > 16 {
            spt = 31;
            heads = 16;
            cth = total / spt;
        }
        if cth >= heads * 1024 {
            spt = 63;
            heads = 16;
            cth = total / spt;
        }
    }
    let cylinders = u16::try_from(cth / heads).unwrap_or(u16::MAX);
    (
        cylinders,
        u8::try_from(heads).unwrap_or(16),
        u8::try_from(spt).unwrap_or(255),
    )
}

pub fn footer(size: u64, unique_id: &[u8; 16]) -> [u8; 512] {
    let mut f = [0u8; 512];
    f[0..8].copy_from_slice(b"conectix");
    f[8..12].copy_from_slice(&2u32.to_be_bytes());
    f[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    f[16..24].copy_from_slice(&512u64.to_be_bytes());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let stamp = u32::try_from(now.saturating_sub(VHD_EPOCH)).unwrap_or(0);
    f[24..28].copy_from_slice(&stamp.to_be_bytes());
    f[28..32].copy_from_slice(b"tap\0");
    f[32..36].copy_from_slice(&0x0001_0003u32.to_be_bytes());
    f[36..40].copy_from_slice(b"Lnux");
    f[40..48].copy_from_slice(&size.to_be_bytes());
    f[48..56].copy_from_slice(&size.to_be_bytes());
    let (c, h, s) = geometry(size);
    f[56..58].copy_from_slice(&c.to_be_bytes());
    f[58] = h;
    f[59] = s;
    f[60..64].copy_from_slice(&3u32.to_be_bytes());
    f[68..84].copy_from_slice(unique_id);
    let sum = checksum(&f, 64);
    f[64..68].copy_from_slice(&sum.to_be_bytes());
    f
}

fn dynamic_header(entries: u64) -> [u8; 1024] {
    let mut h = [0u8; 1024];
    h[0..8].copy_from_slice(b"cxsparse");
    h[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
    h[16..24].copy_from_slice(&1536u64.to_be_bytes());
    h[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    h[28..32].copy_from_slice(&u32::try_from(entries).unwrap_or(u32::MAX).to_be_bytes());
    h[32..36].copy_from_slice(&u32::try_from(BLOCK).unwrap_or(0).to_be_bytes());
    let sum = checksum(&h, 36);
    h[36..40].copy_from_slice(&sum.to_be_bytes());
    h
}

/// Writes the whole VHD for `plan` from `file`.
pub fn write(plan: &Plan, file: &File, out: &mut impl Write) -> io::Result<()> {
    let id = *uuid::Uuid::new_v4().as_bytes();
    let foot = footer(plan.size, &id);
    out.write_all(&foot)?;
    out.write_all(&dynamic_header(plan.entries()))?;
    let first_sector = (1536 + plan.bat_bytes()) / SECTOR;
    let per_block = (SECTOR + BLOCK) / SECTOR;
    let mut bat = vec![0xFFu8; usize::try_from(plan.bat_bytes()).map_err(io::Error::other)?];
    for (k, index) in plan.blocks.iter().enumerate() {
        let sector =
            u32::try_from(first_sector + k as u64 * per_block).map_err(io::Error::other)?;
        let at = usize::try_from(index * 4).map_err(io::Error::other)?;
        if let Some(slot) = bat.get_mut(at..at + 4) {
            slot.copy_from_slice(&sector.to_be_bytes());
        }
    }
    out.write_all(&bat)?;
    let mut data = vec![0u8; usize::try_from(BLOCK).map_err(io::Error::other)?];
    for index in &plan.blocks {
        let start = index * BLOCK;
        let in_disk = (plan.size - start).min(BLOCK) / SECTOR;
        let mut bitmap = [0u8; 512];
        for j in 0..in_disk {
            let j = usize::try_from(j).map_err(io::Error::other)?;
            bitmap[j / 8] |= 0x80 >> (j % 8);
        }
        read_block(file, plan.size, *index, &mut data)?;
        out.write_all(&bitmap)?;
        out.write_all(&data)?;
    }
    out.write_all(&foot)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_matches_the_specification() {
        // 131072 sectors: 17 per track, 8 heads, 963 cylinders.
        assert_eq!(geometry(64 << 20), (963, 8, 17));
        assert_eq!(geometry(200 << 30).2, 255);
    }

    #[test]
    fn plan_skips_zero_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        f.set_len(10 << 20).unwrap();
        f.write_all_at(&[1], (4 << 20) + 7).unwrap();
        f.write_all_at(&[0; 4096], 0).unwrap();
        let plan = plan(&f, 10 << 20, None).unwrap();
        assert_eq!(plan.blocks, vec![2]);
        let mut out = Vec::new();
        write(&plan, &f, &mut out).unwrap();
        assert_eq!(out.len() as u64, plan.len());
    }
}
