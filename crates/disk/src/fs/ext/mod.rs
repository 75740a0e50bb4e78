//! Used-block map for ext2/3/4, read from the filesystem's own allocation
//! structures as partclone does.
//!
//! The map is the union of two sets:
//! - metadata computed from the superblock and group descriptors alone:
//!   boot block and superblock, every superblock backup with its descriptor
//!   table and reserved GDT blocks (or meta_bg descriptor blocks), every
//!   group's bitmaps and whole inode table, the MMP block, and every block of
//!   the internal journal (tree blocks included);
//! - the clusters each group's block bitmap marks used. A group flagged
//!   BLOCK_UNINIT (honoured only with gdt_csum or metadata_csum, like the
//!   kernel) has no bitmap on disk: only its metadata is used.
//!
//! Doubt (copy the whole volume) when anything is not understood or does not
//! add up: unknown incompat / ro_compat features, a journal that needs
//! recovery, a state that is not clean, a bad superblock, descriptor or
//! bitmap checksum, metadata outside the filesystem, or a group whose
//! descriptor free count differs from its bitmap (the kernel updates both in
//! one transaction; e2fsck reports a difference as an error). The
//! superblock's free count is not compared: the kernel updates it lazily
//! and e2fsck fixes it silently.
//!
//! Unknown compat features are accepted: a kernel that does not know them
//! may still write the filesystem, so whatever they own must be marked in
//! the bitmaps, which the map follows.
//!
//! A filesystem smaller than its volume maps only inside itself; a larger
//! one is doubt.
//!
//! Memory: the map is built from extents as the bitmaps stream by; per group
//! only a 40-byte descriptor summary is kept (5 MiB for 16 TiB of 4 KiB
//! blocks), and more than 2^21 groups is doubt.

mod bitmap;
mod bytes;
mod csum;
mod groups;
mod inode;
mod layout;
mod superblock;

use extents::{Extent, ExtentBuilder, ExtentMap, ReadAt};

use self::bitmap::{for_each_run, BitmapReader};
use self::csum::crc32c;
use self::groups::{GroupDesc, BLOCK_UNINIT};
use self::superblock::Superblock;
use super::MapError;

/// Extents of `vol` that hold data or metadata, relative to its start.
pub fn map(vol: &dyn ReadAt) -> Result<ExtentMap, MapError> {
    let sb = Superblock::read(vol)?;
    let groups = groups::read_all(vol, &sb)?;
    let metadata = metadata(vol, &sb, &groups)?;
    let used = bitmap_used(vol, &sb, &groups, &metadata)?;
    let all = used.union(&metadata);
    tracing::debug!(
        groups = sb.group_count,
        copy_bytes = all.total_bytes(),
        extents = all.len(),
        "ext mapped"
    );
    Ok(all.clip(Extent::new(0, sb.fs_bytes())))
}

/// Everything the format places without asking the bitmaps. Each kind of
/// metadata is collected in its own pass over the groups, so that with
/// flex_bg (bitmaps and tables packed together) every pass pushes adjacent
/// extents in order and the builder merges them as it goes.
fn metadata(
    vol: &dyn ReadAt,
    sb: &Superblock,
    groups: &[GroupDesc],
) -> Result<ExtentMap, MapError> {
    let bs = sb.block_size;
    let mut base = ExtentBuilder::new();
    // Boot block (boot loaders live there) and the primary superblock.
    base.push(0, bs.max(2048));
    for g in 0..sb.group_count {
        for (start, count) in sb.base_metadata(g) {
            if start + count > sb.blocks_count {
                return Err(MapError::doubt(format!(
                    "group {g} superblock backup and descriptors run past the filesystem end"
                )));
            }
            base.push(start * bs, count * bs);
        }
    }
    if sb.mmp() {
        if sb.mmp_block < sb.first_data_block || sb.mmp_block >= sb.blocks_count {
            return Err(MapError::doubt(format!(
                "MMP block {} lies outside the filesystem",
                sb.mmp_block
            )));
        }
        base.push(sb.mmp_block * bs, bs);
    }
    let itable_bytes = sb.inode_table_blocks() * bs;
    let mut all = base.build();
    for pass in 0..3 {
        let mut found = ExtentBuilder::new();
        for d in groups {
            match pass {
                0 => found.push(d.block_bitmap * bs, bs),
                1 => found.push(d.inode_bitmap * bs, bs),
                _ => found.push(d.inode_table * bs, itable_bytes),
            }
        }
        all = all.union(&found.build());
    }
    if sb.has_journal() && sb.journal_inum != 0 {
        let mut journal = ExtentBuilder::new();
        inode::push_inode_blocks(vol, sb, groups, u64::from(sb.journal_inum), &mut journal)?;
        all = all.union(&journal.build());
    }
    Ok(all)
}

/// Clusters the block bitmaps mark used, checked against each group's
/// descriptor free count.
fn bitmap_used(
    vol: &dyn ReadAt,
    sb: &Superblock,
    groups: &[GroupDesc],
    metadata: &ExtentMap,
) -> Result<ExtentMap, MapError> {
    let uninit_honoured = sb.group_desc_csum();
    let cluster_bytes = sb.cluster_bytes();
    let bitmap_bytes = (sb.clusters_per_group / 8) as usize;
    let mut reader = BitmapReader::new(vol, sb.block_size);
    let mut out = ExtentBuilder::new();
    let mut free_total = 0u64;
    for (i, (g, d)) in (0u64..).zip(groups).enumerate() {
        let clusters = sb.group_clusters(g);
        let group_start = sb.group_first_block(g) * sb.block_size;
        if uninit_honoured && d.flags & BLOCK_UNINIT != 0 {
            let meta = clusters_covered(metadata, group_start, clusters, cluster_bytes);
            let free = clusters - meta;
            if free != u64::from(d.free_clusters) {
                return Err(MapError::doubt(format!(
                    "group {g} is marked BLOCK_UNINIT with {} free clusters, but its metadata \
                     leaves {free} free",
                    d.free_clusters
                )));
            }
            free_total += free;
            continue;
        }
        let following = groups
            .get(i + 1..)
            .unwrap_or_default()
            .iter()
            .map(|n| n.block_bitmap);
        let bits = reader.block(d.block_bitmap, following)?;
        if sb.metadata_csum() {
            let computed = crc32c(sb.csum_seed, &[&bits[..bitmap_bytes.min(bits.len())]]);
            let computed = if sb.desc_size >= 64 {
                computed
            } else {
                computed & 0xFFFF
            };
            if computed != d.block_bitmap_csum {
                return Err(MapError::doubt(format!(
                    "group {g} block bitmap checksum mismatch (stored {:#x}, computed {computed:#x})",
                    d.block_bitmap_csum
                )));
            }
        }
        let used = for_each_run(bits, clusters, |first, len| {
            out.push(group_start + first * cluster_bytes, len * cluster_bytes);
        });
        let free = clusters - used;
        if free != u64::from(d.free_clusters) {
            return Err(MapError::doubt(format!(
                "group {g}: the descriptor counts {} free clusters, the bitmap {free}",
                d.free_clusters
            )));
        }
        free_total += free;
    }
    if free_total * sb.cluster_ratio != sb.free_blocks {
        // Normal on a filesystem unmounted by a kernel that keeps the total
        // in memory only; the per-group counts above are what is authoritative.
        tracing::debug!(
            groups_free = free_total * sb.cluster_ratio,
            superblock_free = sb.free_blocks,
            "ext superblock free count differs from the groups' (lazily updated)"
        );
    }
    Ok(out.build())
}

/// Distinct clusters of the group starting at byte `group_start` that
/// `map` touches.
fn clusters_covered(map: &ExtentMap, group_start: u64, clusters: u64, cluster_bytes: u64) -> u64 {
    let range = Extent::new(group_start, clusters * cluster_bytes);
    let mut count = 0;
    let mut next_uncounted = 0u64;
    for e in map.overlapping(range) {
        let Some(part) = e.intersect(&range) else {
            continue;
        };
        let first = ((part.offset - group_start) / cluster_bytes).max(next_uncounted);
        let end = (part.end() - group_start).div_ceil(cluster_bytes);
        if end > first {
            count += end - first;
            next_uncounted = end;
        }
    }
    count
}
