//! The overlay: source bytes, with written chunks held apart.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, RwLock};

use extents::{ExtentBuilder, ExtentMap, ReadAt};

use crate::error::{Error, Result};

/// Unit of copy-on-write: a write copies the source's chunk first. A
/// filesystem's page: the fix-up's writes are mostly scattered metadata
/// blocks, and a larger unit multiplies the memory they take.
const CHUNK: u64 = 4 << 10;

/// Where written chunks live.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Store {
    /// On the heap.
    #[default]
    Memory,
    /// In an unlinked file under this directory: the process's memory
    /// stays flat however much the fix-up writes.
    ScratchIn(std::path::PathBuf),
}

enum Chunks {
    Memory(BTreeMap<u64, Box<[u8]>>),
    /// Chunks packed in the order they were first written: chunk `i` is at
    /// slot `map[i]`. Packed rather than at the chunk's own offset, so the
    /// file is as large as the writes, not the disk (ext4 caps files at
    /// 16 TiB).
    File(File, BTreeMap<u64, u64>),
}

impl Chunks {
    fn has(&self, i: u64) -> bool {
        match self {
            Chunks::Memory(m) => m.contains_key(&i),
            Chunks::File(_, s) => s.contains_key(&i),
        }
    }

    fn indices(&self) -> Vec<u64> {
        match self {
            Chunks::Memory(m) => m.keys().copied().collect(),
            Chunks::File(_, s) => s.keys().copied().collect(),
        }
    }

    /// Reads from a present chunk `i` at `rel`.
    fn read(&self, i: u64, rel: usize, buf: &mut [u8]) -> io::Result<()> {
        match self {
            Chunks::Memory(m) => {
                let c = m.get(&i).ok_or_else(|| io::Error::other("chunk missing"))?;
                buf.copy_from_slice(&c[rel..rel + buf.len()]);
                Ok(())
            }
            Chunks::File(f, slots) => {
                let slot = slots
                    .get(&i)
                    .ok_or_else(|| io::Error::other("chunk missing"))?;
                f.read_exact_at(buf, slot * CHUNK + rel as u64)
            }
        }
    }

    /// Writes into chunk `i`, which `fill` first makes present.
    fn write(&mut self, i: u64, rel: usize, data: &[u8]) -> io::Result<()> {
        match self {
            Chunks::Memory(m) => {
                let c = m
                    .get_mut(&i)
                    .ok_or_else(|| io::Error::other("chunk missing"))?;
                c[rel..rel + data.len()].copy_from_slice(data);
                Ok(())
            }
            Chunks::File(f, slots) => {
                let slot = slots
                    .get(&i)
                    .ok_or_else(|| io::Error::other("chunk missing"))?;
                f.write_all_at(data, slot * CHUNK + rel as u64)
            }
        }
    }

    fn insert(&mut self, i: u64, data: Box<[u8]>) -> io::Result<()> {
        match self {
            Chunks::Memory(m) => {
                m.insert(i, data);
                Ok(())
            }
            Chunks::File(f, slots) => {
                let slot = slots.get(&i).copied().unwrap_or(slots.len() as u64);
                f.write_all_at(&data, slot * CHUNK)?;
                slots.insert(i, slot);
                Ok(())
            }
        }
    }
}

/// A writable view of a source: reads see the source with every write
/// applied; the source is only ever read.
pub struct Overlay {
    source: Arc<dyn ReadAt>,
    size: u64,
    chunks: RwLock<Chunks>,
}

impl std::fmt::Debug for Overlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlay")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Overlay {
    pub fn new(source: Arc<dyn ReadAt>, store: Store) -> Result<Overlay> {
        let chunks = match store {
            Store::Memory => Chunks::Memory(BTreeMap::new()),
            Store::ScratchIn(dir) => Chunks::File(
                tempfile::tempfile_in(dir).map_err(Error::Scratch)?,
                BTreeMap::new(),
            ),
        };
        Ok(Overlay {
            size: source.size(),
            source,
            chunks: RwLock::new(chunks),
        })
    }

    pub fn source(&self) -> &Arc<dyn ReadAt> {
        &self.source
    }

    fn chunk_len(&self, i: u64) -> usize {
        (self.size - i * CHUNK).min(CHUNK) as usize
    }

    fn source_chunk(&self, i: u64) -> Result<Box<[u8]>> {
        let mut buf = vec![0u8; self.chunk_len(i)].into_boxed_slice();
        self.source
            .read_exact_at(&mut buf, i * CHUNK)
            .map_err(|source| Error::Source {
                offset: i * CHUNK,
                source,
            })?;
        Ok(buf)
    }

    /// Writes `data` at `offset`; the size never changes.
    pub fn write_at(&self, data: &[u8], offset: u64) -> Result<()> {
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e <= self.size)
            .ok_or(Error::PastEnd {
                offset,
                len: data.len() as u64,
                size: self.size,
            })?;
        let mut chunks = self.chunks.write().unwrap_or_else(|p| p.into_inner());
        let mut at = offset;
        while at < end {
            let i = at / CHUNK;
            let rel = (at - i * CHUNK) as usize;
            let n = ((i + 1) * CHUNK).min(end) - at;
            if !chunks.has(i) {
                let copy = self.source_chunk(i)?;
                chunks.insert(i, copy).map_err(Error::Scratch)?;
            }
            let from = (at - offset) as usize;
            chunks
                .write(i, rel, &data[from..from + n as usize])
                .map_err(Error::Scratch)?;
            at += n;
        }
        Ok(())
    }

    /// Writes `len` zero bytes at `offset` (a punched hole or a zeroed range
    /// of the view); the size never changes.
    pub fn write_zeroes(&self, offset: u64, len: u64) -> Result<()> {
        static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
        if offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(Error::PastEnd {
                offset,
                len,
                size: self.size,
            });
        }
        let mut at = offset;
        while at < offset + len {
            let n = (offset + len - at).min(ZEROS.len() as u64);
            self.write_at(&ZEROS[..n as usize], at)?;
            at += n;
        }
        Ok(())
    }

    /// The bytes that differ from the source, exactly (a byte diff of the
    /// written chunks against the source).
    pub fn changed(&self) -> Result<ExtentMap> {
        let chunks = self.chunks.read().unwrap_or_else(|p| p.into_inner());
        let mut map = ExtentBuilder::new();
        for i in chunks.indices() {
            let original = self.source_chunk(i)?;
            let mut now = vec![0u8; original.len()];
            chunks.read(i, 0, &mut now).map_err(Error::Scratch)?;
            let base = i * CHUNK;
            let mut run: Option<usize> = None;
            for (k, (a, b)) in original.iter().zip(&now).enumerate() {
                match (a != b, run) {
                    (true, None) => run = Some(k),
                    (false, Some(s)) => {
                        map.push(base + s as u64, (k - s) as u64);
                        run = None;
                    }
                    _ => {}
                }
            }
            if let Some(s) = run {
                map.push(base + s as u64, (now.len() - s) as u64);
            }
        }
        Ok(map.build())
    }

    /// Bytes held apart from the source (memory or scratch use).
    pub fn held_bytes(&self) -> u64 {
        let chunks = self.chunks.read().unwrap_or_else(|p| p.into_inner());
        chunks
            .indices()
            .iter()
            .map(|&i| self.chunk_len(i) as u64)
            .sum()
    }
}

impl ReadAt for Overlay {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        let n = buf
            .len()
            .min((self.size - offset).min(usize::MAX as u64) as usize);
        let chunks = self.chunks.read().unwrap_or_else(|p| p.into_inner());
        let mut done = 0usize;
        while done < n {
            let at = offset + done as u64;
            let i = at / CHUNK;
            let rel = (at - i * CHUNK) as usize;
            let take = (((i + 1) * CHUNK - at) as usize).min(n - done);
            let out = &mut buf[done..done + take];
            if chunks.has(i) {
                chunks.read(i, rel, out)?;
            } else {
                self.source.read_exact_at(out, at)?;
            }
            done += take;
        }
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.size
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
    }

    fn diff(a: &[u8], b: &[u8]) -> ExtentMap {
        let mut m = ExtentBuilder::new();
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            if x != y {
                m.push(k as u64, 1);
            }
        }
        m.build()
    }

    #[test]
    fn writes_stay_in_the_overlay_and_changes_are_exact() {
        let size = 3 * CHUNK as usize + 1000;
        let source: Arc<dyn ReadAt> = Arc::new(pattern(size));
        for store in [Store::Memory, Store::ScratchIn(std::env::temp_dir())] {
            let o = Overlay::new(source.clone(), store).unwrap();
            let mut expect = pattern(size);
            // Across a chunk boundary, into the short last chunk, a write of
            // bytes equal to the source (no change), single bytes.
            let writes: Vec<(u64, Vec<u8>)> = vec![
                (CHUNK - 10, vec![0xAA; 30]),
                (size as u64 - 5, vec![1, 2, 3, 4, 5]),
                (100, expect[100..200].to_vec()),
                (2 * CHUNK + 3, vec![!expect[2 * CHUNK as usize + 3]]),
            ];
            for (at, data) in &writes {
                o.write_at(data, *at).unwrap();
                expect[*at as usize..*at as usize + data.len()].copy_from_slice(data);
            }
            let got = o.read_vec(0, size).unwrap();
            assert_eq!(got, expect);
            assert_eq!(source.read_vec(0, size).unwrap(), pattern(size));
            assert_eq!(o.changed().unwrap(), diff(&pattern(size), &expect));
            assert!(o.write_at(&[0; 8], size as u64 - 4).is_err());
        }
    }

    /// 64 TiB of zeros, read without memory.
    struct Zeros;

    impl ReadAt for Zeros {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            let n = (self.size().saturating_sub(offset)).min(buf.len() as u64) as usize;
            buf[..n].fill(0);
            Ok(n)
        }

        fn size(&self) -> u64 {
            64 << 40
        }
    }

    #[test]
    fn the_scratch_file_grows_with_the_writes_not_with_the_disk() {
        let source: Arc<dyn ReadAt> = Arc::new(Zeros);
        let o = Overlay::new(source, Store::ScratchIn(std::env::temp_dir())).unwrap();
        let end = o.size() - 3;
        o.write_at(b"end", end).unwrap();
        o.write_at(b"start", 10).unwrap();
        o.write_at(b"END", end).unwrap();
        assert_eq!(o.read_vec(end, 3).unwrap(), b"END");
        assert_eq!(o.read_vec(10, 5).unwrap(), b"start");
        assert_eq!(o.read_vec(CHUNK, 4).unwrap(), [0; 4]);
        let chunks = o.chunks.read().unwrap();
        let Chunks::File(file, _) = &*chunks else {
            panic!("not a scratch file")
        };
        assert_eq!(file.metadata().unwrap().len(), 2 * CHUNK);
    }
}
