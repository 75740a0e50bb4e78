//! Block bitmaps: batched reads (flex_bg packs them together) and the runs
//! of set bits they hold.

use extents::ReadAt;

use crate::fs::MapError;

/// Most bytes one batched bitmap read fetches.
const BATCH_BYTES: u64 = 1 << 20;

/// Calls `run(first, len)` for every run of set bits among the first
/// `nbits` bits of `bitmap` (ext's order: bit i is bit i%8 of byte i/8), and
/// returns how many bits are set.
pub(super) fn for_each_run(bitmap: &[u8], nbits: u64, mut run: impl FnMut(u64, u64)) -> u64 {
    let nbits = nbits.min(bitmap.len() as u64 * 8);
    let mut set = 0u64;
    let mut open: Option<u64> = None;
    let mut base = 0u64;
    for chunk in bitmap.chunks(8) {
        if base >= nbits {
            break;
        }
        let mut bytes = [0u8; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        let mut word = u64::from_le_bytes(bytes);
        let valid = (nbits - base).min(64);
        if valid < 64 {
            word &= (1u64 << valid) - 1;
        }
        set += u64::from(word.count_ones());
        // Fast paths for words that are all one way.
        if word == u64::MAX {
            open.get_or_insert(base);
        } else if word == 0 {
            if let Some(start) = open.take() {
                run(start, base - start);
            }
        } else {
            let mut bit = 0u64;
            while bit < 64 {
                let rest = word >> bit;
                if rest & 1 == 1 {
                    let ones = u64::from(rest.trailing_ones()).min(64 - bit);
                    open.get_or_insert(base + bit);
                    bit += ones;
                } else {
                    if let Some(start) = open.take() {
                        run(start, base + bit - start);
                    }
                    if rest == 0 {
                        break;
                    }
                    bit += u64::from(rest.trailing_zeros());
                }
            }
        }
        base += 64;
    }
    if let Some(start) = open {
        run(start, nbits - start);
    }
    set
}

/// Reads bitmap blocks through a window that covers neighbours laid out
/// next to each other, so a flex_bg filesystem reads its bitmaps in large
/// requests instead of one block at a time.
pub(super) struct BitmapReader<'a> {
    vol: &'a dyn ReadAt,
    block_size: u64,
    first: u64,
    count: u64,
    buf: Vec<u8>,
}

impl<'a> BitmapReader<'a> {
    pub fn new(vol: &'a dyn ReadAt, block_size: u64) -> Self {
        BitmapReader {
            vol,
            block_size,
            first: 0,
            count: 0,
            buf: Vec::new(),
        }
    }

    /// The content of `block`. `following` lists the bitmap blocks wanted
    /// next, in order: the contiguous ones are read with it.
    pub fn block(
        &mut self,
        block: u64,
        following: impl Iterator<Item = u64>,
    ) -> Result<&[u8], MapError> {
        if !(self.first..self.first + self.count).contains(&block) {
            let max = (BATCH_BYTES / self.block_size).max(1);
            let mut count = 1;
            for next in following {
                if count >= max || next != block + count {
                    break;
                }
                count += 1;
            }
            let len = (count * self.block_size) as usize;
            self.buf.resize(len, 0);
            self.vol
                .read_exact_at(&mut self.buf, block * self.block_size)?;
            self.first = block;
            self.count = count;
        }
        let start = ((block - self.first) * self.block_size) as usize;
        let end = start + self.block_size as usize;
        Ok(&self.buf[start..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn runs(bitmap: &[u8], nbits: u64) -> (Vec<(u64, u64)>, u64) {
        let mut v = Vec::new();
        let set = for_each_run(bitmap, nbits, |s, l| v.push((s, l)));
        (v, set)
    }

    fn reference(bitmap: &[u8], nbits: u64) -> (Vec<(u64, u64)>, u64) {
        let mut v: Vec<(u64, u64)> = Vec::new();
        let mut set = 0;
        for i in 0..nbits.min(bitmap.len() as u64 * 8) {
            if bitmap[(i / 8) as usize] >> (i % 8) & 1 == 1 {
                set += 1;
                match v.last_mut() {
                    Some((s, l)) if *s + *l == i => *l += 1,
                    _ => v.push((i, 1)),
                }
            }
        }
        (v, set)
    }

    #[test]
    fn simple_runs() {
        assert_eq!(
            runs(&[0b0000_0110, 0xFF, 0x01], 24),
            (vec![(1, 2), (8, 9)], 11)
        );
        assert_eq!(runs(&[0xFF; 16], 100), (vec![(0, 100)], 100));
        assert_eq!(runs(&[0xFF; 16], 128), (vec![(0, 128)], 128));
    }

    proptest! {
        #[test]
        fn matches_bit_by_bit(bitmap in prop::collection::vec(
            prop_oneof![Just(0u8), Just(0xFFu8), any::<u8>()], 0..80), nbits in 0u64..700) {
            prop_assert_eq!(runs(&bitmap, nbits), reference(&bitmap, nbits));
        }
    }
}
