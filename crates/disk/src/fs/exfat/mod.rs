//! Used-block map for exFAT (Microsoft's exFAT specification).
//!
//! Copied: the main and backup boot regions (12 sectors each), the FAT(s)
//! and every cluster the allocation bitmap marks in use. The allocation
//! bitmap, the up-case table and the root directory are found through the
//! root directory and must themselves be marked in the bitmap.
//!
//! The bitmap, not the FAT, is the authority: files written contiguously
//! ("NoFatChain") have no FAT entries at all.
//!
//! Doubt (whole copy): a boot region whose checksum does not match, a volume
//! marked dirty (exFAT has no journal, so the bitmap of an interrupted
//! writer may be stale), and any layout or chain that contradicts itself.

mod boot;
mod directory;

use extents::{Extent, ExtentBuilder, ExtentMap, ReadAt};

use super::bitmap::for_each_run;
use super::MapError;

pub use boot::{boot_checksum, ExfatBoot};

/// Bitmap bytes handled per read.
const CHUNK: usize = 1 << 20;

/// Extents of `vol` that hold data or metadata, relative to its start.
pub fn map(vol: &dyn ReadAt) -> Result<ExtentMap, MapError> {
    let boot = ExfatBoot::read(vol)?;
    let root = directory::read_root(vol, &boot)?;
    let mut out = ExtentBuilder::new();
    out.push(0, 24 * boot.bytes_per_sector);
    out.push(
        boot.fat_offset(0),
        boot.fat_bytes() * u64::from(boot.fat_count),
    );
    for bitmap in &root.bitmaps {
        add_bitmap(vol, &boot, bitmap, &mut out)?;
    }
    let map = out.build();
    // The structures we walked must be allocated in the bitmap; if they are
    // not, the bitmap cannot be trusted for anything else either.
    for (what, clusters) in root.structures() {
        for run in clusters {
            let range = Extent::new(boot.cluster_offset(run.0), run.1 * boot.cluster_bytes());
            if map.bytes_in(range) != range.len {
                return Err(MapError::Doubt(format!(
                    "exFAT {what} uses clusters {}..{} that the allocation bitmap marks free",
                    run.0,
                    run.0 + run.1
                )));
            }
        }
    }
    Ok(map)
}

/// Adds the clusters marked in one allocation bitmap.
fn add_bitmap(
    vol: &dyn ReadAt,
    boot: &ExfatBoot,
    bitmap: &directory::Stream,
    out: &mut ExtentBuilder,
) -> Result<(), MapError> {
    let needed = boot.cluster_count.div_ceil(8);
    if bitmap.length < needed {
        return Err(MapError::Doubt(format!(
            "exFAT allocation bitmap is {} bytes, {needed} needed for {} clusters",
            bitmap.length, boot.cluster_count
        )));
    }
    let mut bit = 0u64;
    for &(first, count) in &bitmap.clusters {
        let mut at = boot.cluster_offset(first);
        let mut left = count * boot.cluster_bytes();
        while left > 0 && bit < boot.cluster_count {
            let n = left.min(CHUNK as u64);
            let bytes = vol.read_vec(at, n as usize)?;
            let nbits = (n * 8).min(boot.cluster_count - bit);
            for_each_run(&bytes, bit, nbits, |c, len| {
                // Bit 0 stands for cluster 2, the first of the heap.
                out.push(boot.cluster_offset(c + 2), len * boot.cluster_bytes());
            });
            bit += nbits;
            at += n;
            left -= n;
        }
    }
    Ok(())
}
