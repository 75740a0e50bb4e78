//! Used-block map for xfs, read from the filesystem's own allocation
//! structures as partclone does.
//!
//! Free space is exactly what each allocation group's by-block-number
//! free-space B-tree (bnobt) lists; everything else of the data section is
//! used: superblock copies, AGF, AGI, AGFL sectors, every B-tree block,
//! inode chunks, the internal log, file data.
//!
//! Blocks on the AGFL (the free list that refills the free-space trees) are
//! not in the bnobt, so they count as used and are copied. Their content is
//! meaningless, but the free list names them, and copying a few blocks per
//! AG is cheaper than any doubt about how a future kernel or xfs_repair
//! treats them. So, exactly: copied = data blocks - bnobt free blocks.
//!
//! Doubt (copy the whole volume) on: unknown features, NEEDSREPAIR, a bad
//! magic or v5 checksum of the superblock, AGF, AGFL or a bnobt block, a
//! tree whose records are unsorted, overlapping or outside the AG's free
//! area, an AGF whose free count or longest extent differ from the records,
//! an AGFL block listed as free, free space over the log, a log that is not
//! clean, and an external log (its cleanliness cannot be checked here).
//! A realtime section lives on another device and is only noted.

mod ag;
mod btree;
mod bytes;
mod log;
mod superblock;

use extents::{ExtentBuilder, ExtentMap, ReadAt};

use self::superblock::Superblock;
use super::MapError;

/// Extents of `vol` that hold data or metadata, relative to its start.
pub fn map(vol: &dyn ReadAt) -> Result<ExtentMap, MapError> {
    let sb = Superblock::read(vol)?;
    log::check_clean(vol, &sb)?;
    let bs = sb.block_size;
    let (log_start, log_end) = sb.log_byte_range();
    let mut out = ExtentBuilder::new();
    let mut free_total = 0u64;
    for agno in 0..sb.agcount {
        let agf = ag::read(vol, &sb, agno)?;
        let mut cursor = sb.ag_byte(agno, 0);
        let mut sum = 0u64;
        let mut longest = 0u64;
        let mut free_list = agf.free_list.clone();
        free_list.sort_unstable();
        let mut failure = None;
        btree::walk(vol, &sb, agno, &agf, |(start, count)| {
            sum += count;
            longest = longest.max(count);
            let from = sb.ag_byte(agno, start);
            let to = from + count * bs;
            if failure.is_none() {
                if from < log_end && log_start < to {
                    failure = Some(format!("free extent {start}+{count} overlaps the log"));
                }
                let i = free_list.partition_point(|&b| b < start);
                if free_list.get(i).is_some_and(|&b| b < start + count) {
                    failure = Some(format!("free extent {start}+{count} holds an AGFL block"));
                }
            }
            out.push(cursor, from - cursor);
            cursor = to;
        })?;
        if let Some(why) = failure {
            return Err(MapError::doubt(format!("AG {agno}: {why}")));
        }
        if sum != agf.freeblks || longest != agf.longest {
            return Err(MapError::doubt(format!(
                "AG {agno}: the AGF counts {} free blocks (longest {}), its tree {sum} (longest {longest})",
                agf.freeblks, agf.longest
            )));
        }
        out.push(cursor, sb.ag_byte(agno, agf.length) - cursor);
        free_total += sum;
    }
    let map = out.build();
    tracing::debug!(
        agcount = sb.agcount,
        free_blocks = free_total,
        superblock_fdblocks = sb.fdblocks,
        copy_bytes = map.total_bytes(),
        extents = map.len(),
        "xfs mapped"
    );
    Ok(map)
}
