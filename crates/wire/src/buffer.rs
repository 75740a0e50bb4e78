//! Block buffers: allocated once per stream, reused for every block.

use crate::BLOCK_SIZE;

/// Alignment of block buffers: enough for direct I/O on any common device.
const ALIGN: usize = 4096;

/// A zero-initialised 2 MiB buffer whose start is 4 KiB aligned. Made by
/// over-allocating a `Vec` and starting inside it, so no `unsafe` is needed.
#[derive(Debug)]
pub(crate) struct BlockBuf {
    storage: Vec<u8>,
    start: usize,
}

impl BlockBuf {
    pub(crate) fn new() -> BlockBuf {
        let len = BLOCK_SIZE as usize;
        let storage = vec![0u8; len + ALIGN];
        let misalign = storage.as_ptr() as usize % ALIGN;
        let start = if misalign == 0 { 0 } else { ALIGN - misalign };
        BlockBuf { storage, start }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.storage[self.start..self.start + BLOCK_SIZE as usize]
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + BLOCK_SIZE as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_full_size() {
        let mut b = BlockBuf::new();
        assert_eq!(b.as_slice().len(), BLOCK_SIZE as usize);
        assert_eq!(b.as_mut_slice().as_ptr() as usize % ALIGN, 0);
        assert!(b.as_slice().iter().all(|&x| x == 0));
    }
}
