//! Reading a dynamic VHD stream forward (a VDI exported with format=vhd):
//! only the blocks the host holds travel, so checking a disk costs its data,
//! not its size. Sectors whose bitmap bit is clear read as zeros.

use std::io::{self, Read};

const FOOTER: usize = 512;
const HEADER: usize = 1024;
const SECTOR: u64 = 512;
const ABSENT: u32 = u32::MAX;

fn bad(why: impl Into<String>) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("VHD export: {}", why.into()),
    )
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be64(b: &[u8], at: usize) -> u64 {
    (u64::from(be32(b, at)) << 32) | u64::from(be32(b, at + 4))
}

pub struct VhdBlocks<R> {
    inner: R,
    pos: u64,
    /// Present blocks as (stream offset, block index), in stream order.
    order: Vec<(u64, u64)>,
    next: usize,
    block_size: u64,
    bitmap: Vec<u8>,
    size: u64,
}

impl<R: Read> VhdBlocks<R> {
    pub fn open(mut inner: R) -> io::Result<Self> {
        let mut footer = [0u8; FOOTER];
        inner.read_exact(&mut footer)?;
        if &footer[..8] != b"conectix" {
            return Err(bad("no footer cookie"));
        }
        if be32(&footer, 60) != 3 {
            return Err(bad(format!(
                "disk type {} is not dynamic",
                be32(&footer, 60)
            )));
        }
        let size = be64(&footer, 48);
        let mut me = VhdBlocks {
            inner,
            pos: FOOTER as u64,
            order: Vec::new(),
            next: 0,
            block_size: 0,
            bitmap: Vec::new(),
            size,
        };
        me.skip_to(be64(&footer, 16))?;
        let mut header = [0u8; HEADER];
        me.read(&mut header)?;
        if &header[..8] != b"cxsparse" {
            return Err(bad("no dynamic header cookie"));
        }
        let table = be64(&header, 16);
        let entries = u64::from(be32(&header, 28));
        me.block_size = u64::from(be32(&header, 32));
        if me.block_size == 0 || me.block_size % SECTOR != 0 || me.block_size > 64 << 20 {
            return Err(bad(format!("block size {}", me.block_size)));
        }
        if entries < size.div_ceil(me.block_size) || entries > 1 << 22 {
            return Err(bad(format!("{entries} BAT entries for {size} bytes")));
        }
        me.skip_to(table)?;
        let mut bat = vec![0u8; entries as usize * 4];
        me.read(&mut bat)?;
        me.order = bat
            .chunks_exact(4)
            .enumerate()
            .map(|(i, e)| (i as u64, be32(e, 0)))
            .filter(|(_, s)| *s != ABSENT)
            .map(|(i, s)| (u64::from(s) * SECTOR, i))
            .collect();
        me.order.sort_unstable();
        let sectors = me.block_size / SECTOR;
        me.bitmap = vec![0; (sectors.div_ceil(8)).div_ceil(SECTOR) as usize * SECTOR as usize];
        Ok(me)
    }

    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact(buf)?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn skip_to(&mut self, offset: u64) -> io::Result<()> {
        if offset < self.pos {
            return Err(bad(format!(
                "structure at {offset} behind the read position {}",
                self.pos
            )));
        }
        let n = io::copy(
            &mut (&mut self.inner).take(offset - self.pos),
            &mut io::sink(),
        )?;
        self.pos += n;
        if self.pos != offset {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    /// The next present block into `buf` (block size long; the disk's last
    /// block is short): its index and length, or None at the end.
    pub fn next_block(&mut self, buf: &mut [u8]) -> io::Result<Option<(u64, usize)>> {
        let Some(&(offset, index)) = self.order.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        self.skip_to(offset)?;
        let mut bitmap = std::mem::take(&mut self.bitmap);
        let read = self.read(&mut bitmap);
        let bs = self.block_size as usize;
        let data = read.and_then(|()| self.read(&mut buf[..bs]));
        for s in 0..bs / SECTOR as usize {
            if bitmap[s / 8] & (0x80 >> (s % 8)) == 0 {
                buf[s * SECTOR as usize..(s + 1) * SECTOR as usize].fill(0);
            }
        }
        self.bitmap = bitmap;
        data?;
        let len = self
            .size
            .saturating_sub(index * self.block_size)
            .min(self.block_size);
        Ok(Some((index, len as usize)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use extents::{Extent, ExtentMap};
    use wire::{BlockPlan, EncodedStream, Format};

    const MIB: u64 = 1 << 20;

    fn blocks_of(stream: Vec<u8>) -> Vec<(u64, Vec<u8>)> {
        let mut r = VhdBlocks::open(&stream[..]).unwrap();
        let mut buf = vec![0u8; r.block_size() as usize];
        let mut out = Vec::new();
        while let Some((i, len)) = r.next_block(&mut buf).unwrap() {
            out.push((i, buf[..len].to_vec()));
        }
        out
    }

    fn encode(disk: &[u8], plan: BlockPlan) -> Vec<u8> {
        let stream = EncodedStream::start(disk.to_vec(), plan, Format::Vhd).unwrap();
        let mut out = Vec::new();
        stream.write_to(&mut out).unwrap();
        out
    }

    #[test]
    fn reads_back_the_blocks_the_wire_encoder_wrote() {
        let size = 5 * MIB + 512;
        let disk: Vec<u8> = (0..size).map(|i| (i % 251) as u8 + 1).collect();
        let map =
            ExtentMap::from_unsorted(vec![Extent::new(0, MIB), Extent::new(4 * MIB, MIB + 512)]);
        let got = blocks_of(encode(&disk, BlockPlan::full(size, &map)));
        assert_eq!(got.iter().map(|b| b.0).collect::<Vec<_>>(), vec![0, 2]);
        // Full plans carry whole blocks: the map's bytes, zeros elsewhere.
        let mut want0 = disk[..2 * MIB as usize].to_vec();
        want0[MIB as usize..].fill(0);
        assert_eq!(got[0].1, want0);
        assert_eq!(got[1].1.len() as u64, MIB + 512, "the short last block");
        assert_eq!(got[1].1, disk[4 * MIB as usize..]);
    }

    #[test]
    fn sectors_outside_the_bitmap_read_as_zeros() {
        let size = 4 * MIB;
        let disk = vec![9u8; size as usize];
        let plan = BlockPlan::delta(size, &ExtentMap::single(MIB, 1024));
        let got = blocks_of(encode(&disk, plan));
        assert_eq!(got.len(), 1);
        let block = &got[0].1;
        assert!(block[..MIB as usize].iter().all(|b| *b == 0));
        assert!(block[MIB as usize..MIB as usize + 1024]
            .iter()
            .all(|b| *b == 9));
        assert!(block[MIB as usize + 1024..].iter().all(|b| *b == 0));
    }

    #[test]
    fn refuses_what_is_not_a_dynamic_vhd() {
        assert!(VhdBlocks::open(&[0u8; 4096][..]).is_err());
        let mut stream = encode(
            &vec![1u8; MIB as usize],
            BlockPlan::full(MIB, &ExtentMap::single(0, MIB)),
        );
        stream[60..64].copy_from_slice(&2u32.to_be_bytes());
        assert!(VhdBlocks::open(&stream[..]).is_err());
    }
}
