//! The exFAT root directory and the streams it points to (allocation
//! bitmap, up-case table), followed through the FAT.

use extents::ReadAt;

use super::boot::{ExfatBoot, BAD_CLUSTER};
use crate::fs::le::{u32_at, u64_at};
use crate::fs::MapError;

const END_OF_DIRECTORY: u8 = 0x00;
const ALLOCATION_BITMAP: u8 = 0x81;
const UPCASE_TABLE: u8 = 0x82;
const ENTRY: usize = 32;
/// Directory bytes read at a time (clusters can be up to 32 MiB).
const BLOCK: u64 = 64 * 1024;

/// Runs of clusters `(first, count)` in chain order.
pub type Runs = Vec<(u64, u64)>;

/// A stream found through a directory entry.
#[derive(Clone, Debug, Default)]
pub struct Stream {
    pub length: u64,
    pub clusters: Runs,
}

/// What the root directory tells the map.
#[derive(Debug)]
pub struct Root {
    pub directory: Runs,
    pub bitmaps: Vec<Stream>,
    pub upcase: Stream,
}

impl Root {
    /// The system structures that must be allocated in the bitmap.
    pub fn structures(&self) -> Vec<(&'static str, &Runs)> {
        let mut out = vec![
            ("root directory", &self.directory),
            ("up-case table", &self.upcase.clusters),
        ];
        out.extend(
            self.bitmaps
                .iter()
                .map(|b| ("allocation bitmap", &b.clusters)),
        );
        out
    }
}

/// Reads the root directory and the system streams it lists.
pub fn read_root(vol: &dyn ReadAt, boot: &ExfatBoot) -> Result<Root, MapError> {
    let mut fat = Fat::new(vol, boot);
    let directory = fat.chain(boot.root_cluster, None)?;
    let mut bitmaps = Vec::new();
    let mut upcase = None;
    'clusters: for &(first, count) in &directory {
        let start = boot.cluster_offset(first);
        let len = count * boot.cluster_bytes();
        let mut at = 0;
        while at < len {
            let block = vol.read_vec(start + at, BLOCK.min(len - at) as usize)?;
            for entry in block.chunks_exact(ENTRY) {
                let kind = entry.first().copied().unwrap_or(END_OF_DIRECTORY);
                match kind {
                    END_OF_DIRECTORY => break 'clusters,
                    ALLOCATION_BITMAP => {
                        if bitmaps.len() == usize::from(boot.fat_count) {
                            return Err(doubt(format!(
                                "more allocation bitmaps than the {} FATs",
                                boot.fat_count
                            )));
                        }
                        bitmaps.push(stream(&mut fat, entry)?);
                    }
                    UPCASE_TABLE if upcase.is_none() => upcase = Some(stream(&mut fat, entry)?),
                    _ => {}
                }
            }
            at += BLOCK;
        }
    }
    if bitmaps.is_empty() {
        return Err(doubt("the root directory has no allocation bitmap".into()));
    }
    let upcase = upcase.ok_or_else(|| doubt("the root directory has no up-case table".into()))?;
    Ok(Root {
        directory,
        bitmaps,
        upcase,
    })
}

fn doubt(msg: String) -> MapError {
    MapError::Doubt(format!("exFAT: {msg}"))
}

/// The stream of a bitmap or up-case entry: first cluster at 20, length at 24.
fn stream(fat: &mut Fat<'_>, entry: &[u8]) -> Result<Stream, MapError> {
    let first = u64::from(u32_at(entry, 20));
    let length = u64_at(entry, 24);
    let clusters = if length == 0 {
        Vec::new()
    } else {
        fat.chain(first, Some(length))?
    };
    Ok(Stream { length, clusters })
}

/// Reads entries of the active FAT, one sector cached.
struct Fat<'a> {
    vol: &'a dyn ReadAt,
    boot: &'a ExfatBoot,
    cached: Option<(u64, Vec<u8>)>,
}

impl<'a> Fat<'a> {
    fn new(vol: &'a dyn ReadAt, boot: &'a ExfatBoot) -> Self {
        Fat {
            vol,
            boot,
            cached: None,
        }
    }

    fn entry(&mut self, cluster: u64) -> Result<u32, MapError> {
        let at = self.boot.fat_offset(self.boot.active_fat) + cluster * 4;
        let sector = at / self.boot.bytes_per_sector * self.boot.bytes_per_sector;
        let hit = matches!(&self.cached, Some((s, _)) if *s == sector);
        if !hit {
            let bytes = self
                .vol
                .read_vec(sector, self.boot.bytes_per_sector as usize)?;
            self.cached = Some((sector, bytes));
        }
        let bytes = self
            .cached
            .as_ref()
            .map(|(_, b)| b.as_slice())
            .unwrap_or_default();
        Ok(u32_at(bytes, (at - sector) as usize))
    }

    /// The clusters of the chain starting at `first`, as runs: `length`
    /// bytes of it, or up to its end-of-chain mark when `None`.
    fn chain(&mut self, first: u64, length: Option<u64>) -> Result<Runs, MapError> {
        let end = self.boot.cluster_count + 2;
        let wanted = length.map(|l| l.div_ceil(self.boot.cluster_bytes()));
        if wanted.is_some_and(|w| w > self.boot.cluster_count) {
            return Err(doubt(format!(
                "a stream of {length:?} bytes is larger than the volume"
            )));
        }
        let mut runs: Runs = Vec::new();
        let mut cluster = first;
        let mut taken = 0u64;
        loop {
            if !(2..end).contains(&cluster) {
                return Err(doubt(format!(
                    "a chain reaches cluster {cluster}, outside 2..{end}"
                )));
            }
            match runs.last_mut() {
                Some((s, n)) if *s + *n == cluster => *n += 1,
                _ => runs.push((cluster, 1)),
            }
            taken += 1;
            if wanted == Some(taken) {
                return Ok(runs);
            }
            if taken > self.boot.cluster_count {
                return Err(doubt(format!("the chain from cluster {first} loops")));
            }
            let next = self.entry(cluster)?;
            if next > BAD_CLUSTER {
                return match wanted {
                    None => Ok(runs),
                    Some(w) => Err(doubt(format!(
                        "the chain from cluster {first} ends after {taken} of {w} clusters"
                    ))),
                };
            }
            if next == BAD_CLUSTER || next < 2 {
                return Err(doubt(format!(
                    "the chain from cluster {first} meets FAT entry {next:#x} at cluster {cluster}"
                )));
            }
            cluster = u64::from(next);
        }
    }
}
