//! Shared by the filesystem mapper targets: a real image made once by the
//! real mkfs, and fuzz input read as patches aimed at the bytes the mapper
//! reads (a raw fuzz input almost never looks like a filesystem).
//!
//! Input: repeated records `[u32 LE position][u8 length][length bytes]`.
//! The position picks a byte among those the unpatched mapping read (even
//! positions) or anywhere in the image (odd positions).

use std::io;
use std::process::Command;
use std::sync::Mutex;

use disk::fs::MapError;
use extents::{Extent, ExtentMap, FileAt, ReadAt};

pub type Mapper = fn(&dyn ReadAt) -> Result<ExtentMap, MapError>;

/// An image made by `mkfs` (the image path is appended), its map and the
/// byte ranges the mapper read to make it.
pub struct Base {
    pub image: FileAt,
    pub map: ExtentMap,
    pub reads: ExtentMap,
}

impl Base {
    pub fn make(mkfs: &[&str], size: u64, mapper: Mapper) -> Base {
        let dir =
            std::env::temp_dir().join(format!("xenlift-fuzz-{}-{}", mkfs[0], std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the fuzz work directory");
        let path = dir.join("fs.img");
        let file = std::fs::File::create(&path).expect("creating the image");
        file.set_len(size).expect("sizing the image");
        let status = Command::new(mkfs[0])
            .args(&mkfs[1..])
            .arg(&path)
            .status()
            .expect("running mkfs (install e2fsprogs / xfsprogs)");
        assert!(status.success(), "{mkfs:?} failed");
        let image = FileAt::from_file(std::fs::File::open(&path).expect("opening the image"))
            .expect("image size");
        // The open file outlives its name: nothing is left behind.
        let _ = std::fs::remove_dir_all(&dir);
        let recorder = Recorder {
            inner: &image,
            reads: Mutex::new(Vec::new()),
        };
        let map = mapper(&recorder).expect("the fresh image maps");
        let reads = ExtentMap::from_unsorted(recorder.reads.into_inner().unwrap_or_default());
        Base { image, map, reads }
    }

    /// Runs `mapper` on the image patched by `data` and checks the answer.
    pub fn check(&self, data: &[u8], mapper: Mapper) {
        let size = self.image.size();
        let mut patches = Vec::new();
        let mut rest = data;
        while rest.len() >= 5 {
            let pos = u64::from(u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]));
            let len = usize::from(rest[4]).min(rest.len() - 5);
            let offset = if pos % 2 == 0 && self.reads.total_bytes() > 0 {
                nth_byte(&self.reads, (pos / 2) % self.reads.total_bytes())
            } else {
                pos.wrapping_mul(4099) % size
            };
            patches.push((offset, rest[5..5 + len].to_vec()));
            rest = &rest[5 + len..];
        }
        let touched = patches
            .iter()
            .any(|(o, b)| self.reads.bytes_in(Extent::new(*o, b.len() as u64)) > 0);
        let patched = Patched {
            base: &self.image,
            size,
            patches,
        };
        match mapper(&patched) {
            Ok(map) => {
                assert!(map.end() <= size, "map past the volume end");
                if !touched {
                    assert_eq!(map, self.map, "untouched metadata, different map");
                }
            }
            Err(MapError::Doubt(reason)) => assert!(!reason.is_empty()),
            Err(MapError::Io(e)) => panic!("i/o error instead of doubt: {e}"),
        }
    }
}

fn nth_byte(map: &ExtentMap, mut n: u64) -> u64 {
    for e in map {
        if n < e.len {
            return e.offset + n;
        }
        n -= e.len;
    }
    0
}

struct Patched<'a> {
    base: &'a dyn ReadAt,
    size: u64,
    patches: Vec<(u64, Vec<u8>)>,
}

impl ReadAt for Patched<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.size {
            return Ok(0);
        }
        let n = buf.len().min((self.size - offset) as usize);
        let buf = &mut buf[..n];
        self.base.read_exact_at(buf, offset)?;
        for (at, bytes) in &self.patches {
            let end = at + bytes.len() as u64;
            let (lo, hi) = ((*at).max(offset), end.min(offset + n as u64));
            if lo < hi {
                buf[(lo - offset) as usize..(hi - offset) as usize]
                    .copy_from_slice(&bytes[(lo - at) as usize..(hi - at) as usize]);
            }
        }
        Ok(n)
    }
    fn size(&self) -> u64 {
        self.size
    }
}

struct Recorder<'a> {
    inner: &'a dyn ReadAt,
    reads: Mutex<Vec<Extent>>,
}

impl ReadAt for Recorder<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let n = self.inner.read_at(buf, offset)?;
        if let Ok(mut r) = self.reads.lock() {
            r.push(Extent::new(offset, n as u64));
        }
        Ok(n)
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
}
