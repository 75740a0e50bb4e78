//! The initramfs: a tree described in memory (path -> entry), written as one
//! sorted `newc` archive with fixed owners and mtimes, then compressed with
//! zstd (single-threaded, so the bytes depend only on the input).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use media::cpio::CpioWriter;

#[derive(Debug, Clone)]
pub enum Entry {
    Dir,
    /// Contents read from a file on the host at write time.
    File {
        source: PathBuf,
        mode: u32,
    },
    Bytes {
        data: Vec<u8>,
        mode: u32,
    },
    Symlink(String),
    CharDevice {
        major: u32,
        minor: u32,
        mode: u32,
    },
}

/// A file tree for the archive; parents are added as directories.
#[derive(Debug, Default)]
pub struct Tree {
    entries: BTreeMap<String, Entry>,
}

impl Tree {
    pub fn add(&mut self, path: &str, entry: Entry) {
        let path = path.trim_start_matches('/').to_string();
        let mut parent = Path::new(&path).parent();
        while let Some(p) = parent {
            let s = p.to_string_lossy().into_owned();
            if s.is_empty() {
                break;
            }
            self.entries.entry(s).or_insert(Entry::Dir);
            parent = p.parent();
        }
        self.entries.insert(path, entry);
    }

    pub fn count(&self) -> usize {
        self.entries.len()
    }

    /// The uncompressed archive. Paths sort so that a directory comes
    /// before what it holds.
    pub fn cpio(&self, mtime: u32) -> anyhow::Result<Vec<u8>> {
        let mut w = CpioWriter::new(Vec::new(), mtime);
        for (path, entry) in &self.entries {
            match entry {
                Entry::Dir => w.dir(path, 0o755)?,
                Entry::File { source, mode } => {
                    let data = std::fs::read(source)
                        .with_context(|| format!("reading {}", source.display()))?;
                    w.file(path, *mode, &data)?
                }
                Entry::Bytes { data, mode } => w.file(path, *mode, data)?,
                Entry::Symlink(target) => w.symlink(path, target)?,
                Entry::CharDevice { major, minor, mode } => {
                    w.char_device(path, *mode, *major, *minor)?
                }
            }
        }
        Ok(w.finish()?)
    }
}

/// zstd at a high level, padded with zeros to 4 bytes so another archive
/// can be appended (`xenlift pxe customize`).
pub fn compress(cpio: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = zstd::bulk::compress(cpio, 19).context("compressing the initramfs")?;
    while out.len() % 4 != 0 {
        out.push(0);
    }
    Ok(out)
}
