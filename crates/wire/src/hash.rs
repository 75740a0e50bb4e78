//! Block hashes and the whole-disk hash.
//!
//! The disk hash is SHA-256 over the concatenation of the SHA-256 of every
//! 2 MiB block of the virtual disk in order (the last block short), where a
//! block that is not sent counts as zeros of its length. It therefore costs
//! one hash per sent block plus 32 bytes per unsent one, never a pass over
//! terabytes of zeros, and anyone holding the target image can recompute it.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::BLOCK_SIZE;

pub type Hash = [u8; 32];

/// SHA-256 of one block's bytes.
pub(crate) fn block_hash(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

/// SHA-256 of `len` zero bytes; a full block's is computed once per process.
pub fn zero_block_hash(len: u64) -> Hash {
    static FULL: OnceLock<Hash> = OnceLock::new();
    if len == BLOCK_SIZE {
        return *FULL.get_or_init(|| hash_zeros(BLOCK_SIZE));
    }
    hash_zeros(len)
}

fn hash_zeros(len: u64) -> Hash {
    let chunk = [0u8; 64 << 10];
    let mut h = Sha256::new();
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        h.update(&chunk[..n]);
        left -= n as u64;
    }
    h.finalize().into()
}

/// Builds the disk hash from sent blocks given in increasing order.
#[derive(Clone, Debug)]
pub(crate) struct DiskHasher {
    size: u64,
    next: u64,
    outer: Sha256,
}

impl DiskHasher {
    pub(crate) fn new(size: u64) -> DiskHasher {
        DiskHasher {
            size,
            next: 0,
            outer: Sha256::new(),
        }
    }

    fn block_count(&self) -> u64 {
        self.size.div_ceil(BLOCK_SIZE)
    }

    fn zeros_until(&mut self, end: u64) {
        while self.next < end {
            let len = self
                .size
                .saturating_sub(self.next * BLOCK_SIZE)
                .min(BLOCK_SIZE);
            self.outer.update(zero_block_hash(len));
            self.next += 1;
        }
    }

    /// Adds block `index` (greater than any added before) with its hash.
    pub(crate) fn add(&mut self, index: u64, hash: &Hash) {
        self.zeros_until(index.min(self.block_count()));
        if index == self.next {
            self.outer.update(hash);
            self.next += 1;
        }
    }

    pub(crate) fn finish(mut self) -> Hash {
        self.zeros_until(self.block_count());
        self.outer.finalize().into()
    }
}

/// The disk hash of a virtual disk of `size` bytes (a multiple of 512) from
/// the hashes of its non-zero blocks, in increasing block order.
pub fn disk_hash_from_blocks<'a>(
    size: u64,
    blocks: impl IntoIterator<Item = (u64, &'a Hash)>,
) -> Hash {
    let mut h = DiskHasher::new(size);
    for (index, hash) in blocks {
        h.add(index, hash);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_hash_equals_hash_of_block_hashes_of_the_full_image() {
        let size = 2 * BLOCK_SIZE + 4096;
        let mut image = vec![0u8; size as usize];
        image[BLOCK_SIZE as usize + 7] = 1;
        image[size as usize - 1] = 9;
        let mut outer = Sha256::new();
        for chunk in image.chunks(BLOCK_SIZE as usize) {
            outer.update(Sha256::digest(chunk));
        }
        let expected: Hash = outer.finalize().into();

        let b1 = block_hash(&image[BLOCK_SIZE as usize..2 * BLOCK_SIZE as usize]);
        let b2 = block_hash(&image[2 * BLOCK_SIZE as usize..]);
        assert_eq!(disk_hash_from_blocks(size, [(1, &b1), (2, &b2)]), expected);
        // Sending a zero block explicitly gives the same answer.
        let z = zero_block_hash(BLOCK_SIZE);
        assert_eq!(
            disk_hash_from_blocks(size, [(0, &z), (1, &b1), (2, &b2)]),
            expected
        );
    }

    #[test]
    fn zero_hash_matches_direct_hash() {
        assert_eq!(
            zero_block_hash(BLOCK_SIZE),
            block_hash(&vec![0; BLOCK_SIZE as usize])
        );
        assert_eq!(zero_block_hash(512), block_hash(&[0; 512]));
    }
}
