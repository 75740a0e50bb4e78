//! Reading the FATs: which clusters are in use, and whether the live FATs
//! link only to clusters that exist.

use extents::ReadAt;

use super::bpb::{FatGeometry, FatType};
use crate::fs::le::{u16_at, u32_at};
use crate::fs::MapError;

/// Entries handled per read: an even number, so that FAT12 chunks start on
/// a byte boundary. 256 Ki entries is at most 1 MiB of FAT32.
const CHUNK_ENTRIES: u64 = 256 * 1024;

/// Calls `used(first, count)` for every run of clusters that any FAT copy
/// marks non-free (bad clusters included), in increasing order.
pub(super) fn scan(
    vol: &dyn ReadAt,
    geo: &FatGeometry,
    mut used: impl FnMut(u64, u64),
) -> Result<(), MapError> {
    let end = geo.clusters + 2;
    let mut run: Option<(u64, u64)> = None;
    let mut first = 0;
    while first < end {
        let count = CHUNK_ENTRIES.min(end - first);
        let copies = (0..geo.fat_count)
            .map(|i| read_entries(vol, geo, i, first, count))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, values) in copies.iter().enumerate() {
            if geo.live_fats.contains(&(i as u64)) {
                check_links(geo, i as u64, first, values)?;
            }
        }
        for k in 0..count {
            let cluster = first + k;
            let in_use = cluster >= 2
                && copies
                    .iter()
                    .any(|v| v.get(k as usize).is_some_and(|&e| e != 0));
            run = match (in_use, run) {
                (true, Some((s, n))) => Some((s, n + 1)),
                (true, None) => Some((cluster, 1)),
                (false, Some((s, n))) => {
                    used(s, n);
                    None
                }
                (false, None) => None,
            };
        }
        first += count;
    }
    if let Some((s, n)) = run {
        used(s, n);
    }
    Ok(())
}

/// Entries `first..first + count` of FAT copy `index` (FAT32 entries
/// masked to their 28 bits).
fn read_entries(
    vol: &dyn ReadAt,
    geo: &FatGeometry,
    index: u64,
    first: u64,
    count: u64,
) -> Result<Vec<u32>, MapError> {
    let bits = geo.fat_type.entry_bits();
    let byte_start = first * bits / 8;
    let byte_len = (count * bits).div_ceil(8);
    let bytes = vol.read_vec(geo.fat_offset(index) + byte_start, byte_len as usize)?;
    let values = (0..count as usize).map(|k| match geo.fat_type {
        FatType::Fat12 => {
            // Entry k sits at byte 3k/2; odd entries in the high 12 bits.
            let word = u16_at(&bytes, k * 3 / 2);
            u32::from(if k % 2 == 0 { word & 0x0FFF } else { word >> 4 })
        }
        FatType::Fat16 => u32::from(u16_at(&bytes, k * 2)),
        FatType::Fat32 => u32_at(&bytes, k * 4) & 0x0FFF_FFFF,
    });
    Ok(values.collect())
}

/// A live FAT may only link to clusters that exist.
fn check_links(geo: &FatGeometry, fat: u64, first: u64, values: &[u32]) -> Result<(), MapError> {
    let end = geo.clusters + 2;
    let bad = geo.fat_type.bad_marker();
    for (k, &v) in values.iter().enumerate() {
        let cluster = first + k as u64;
        if cluster < 2 || v == 0 || v >= bad {
            continue;
        }
        if v == 1 || u64::from(v) >= end {
            return Err(MapError::Doubt(format!(
                "{} {} lists cluster {cluster} -> {v}, outside clusters 2..{}",
                geo.fat_type,
                fat + 1,
                end - 1
            )));
        }
    }
    Ok(())
}
