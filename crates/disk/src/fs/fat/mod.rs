//! Used-block map for FAT12, FAT16 and FAT32, read from the BPB and the FATs
//! (Microsoft's FAT specification).
//!
//! Copied: the reserved area (boot sector, FAT32 FSInfo and backup boot
//! sector live there), every FAT copy, the FAT12/16 root directory region and
//! every cluster that any FAT copy marks non-free.
//!
//! Decisions:
//! - FAT copies that disagree: a cluster is copied when *any* copy marks it
//!   non-free (the union). A driver or fsck may trust either copy; copying a
//!   cluster too many costs little, dropping one loses data. So disagreement
//!   alone is no reason for doubt.
//! - Bad clusters (the BAD marker) are copied: they hold no file data, but
//!   some tools have hidden data behind that marker, and there are few.
//! - Doubt (whole copy): a BPB that contradicts itself (cluster count against
//!   the FAT type, a FAT too small for its clusters, a filesystem larger than
//!   its volume) and a live FAT whose entries link to clusters that do not
//!   exist.

mod bpb;
mod table;

use extents::{ExtentBuilder, ExtentMap, ReadAt};

use super::MapError;

pub use bpb::{FatGeometry, FatType};

/// Extents of `vol` that hold data or metadata, relative to its start.
pub fn map(vol: &dyn ReadAt) -> Result<ExtentMap, MapError> {
    let boot = vol.read_vec(0, 512)?;
    let geo = FatGeometry::parse(&boot, vol.size())?;
    let mut out = ExtentBuilder::new();
    // Reserved sectors, the FATs and the FAT12/16 root directory are one
    // run from the start of the volume.
    out.push(0, geo.data_start());
    table::scan(vol, &geo, |first, count| {
        out.push(geo.cluster_offset(first), count * geo.cluster_bytes());
    })?;
    Ok(out.build())
}
