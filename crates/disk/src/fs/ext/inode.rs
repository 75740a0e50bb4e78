//! Just enough of ext inodes to list every block a special inode (the
//! journal) owns: extent trees and classic indirect maps.

use extents::{ExtentBuilder, ReadAt};

use super::bytes::{le16, le32};
use super::groups::GroupDesc;
use super::superblock::Superblock;
use crate::fs::MapError;

const EXTENTS_FL: u32 = 0x80000;
const EXTENT_MAGIC: u16 = 0xF30A;
/// The kernel refuses extent trees deeper than this.
const MAX_EXTENT_DEPTH: u16 = 5;
/// Initialised extents are at most this long; longer ones are unwritten
/// (still allocated) with the length biased by it.
const EXT_INIT_MAX_LEN: u64 = 1 << 15;

/// Pushes the byte extents of every block inode `ino` owns (data and the
/// tree or indirect blocks that map it) into `out`.
pub(super) fn push_inode_blocks(
    vol: &dyn ReadAt,
    sb: &Superblock,
    groups: &[GroupDesc],
    ino: u64,
    out: &mut ExtentBuilder,
) -> Result<(), MapError> {
    let raw = read_inode(vol, sb, groups, ino)?;
    let mut walk = Walk {
        vol,
        sb,
        out,
        ino,
        budget: sb.blocks_count,
    };
    let i_block = &raw[0x28..0x28 + 60];
    if le32(&raw, 0x20) & EXTENTS_FL != 0 {
        walk.extent_node(i_block, None)
    } else {
        for (i, depth) in (0usize..15).map(|i| (i, i.saturating_sub(11))) {
            let ptr = u64::from(le32(i_block, i * 4));
            walk.indirect(ptr, depth as u32)?;
        }
        Ok(())
    }
}

fn read_inode(
    vol: &dyn ReadAt,
    sb: &Superblock,
    groups: &[GroupDesc],
    ino: u64,
) -> Result<Vec<u8>, MapError> {
    let index = ino
        .checked_sub(1)
        .ok_or_else(|| MapError::doubt("inode 0 referenced"))?;
    let group = index / sb.inodes_per_group;
    let desc = usize::try_from(group)
        .ok()
        .and_then(|g| groups.get(g))
        .ok_or_else(|| MapError::doubt(format!("inode {ino} is past the last group")))?;
    let offset = desc.inode_table * sb.block_size + (index % sb.inodes_per_group) * sb.inode_size;
    Ok(vol.read_vec(offset, 128)?)
}

struct Walk<'a, 'b> {
    vol: &'a dyn ReadAt,
    sb: &'a Superblock,
    out: &'b mut ExtentBuilder,
    ino: u64,
    /// Blocks we may still visit: a loop in a corrupt tree ends in doubt.
    budget: u64,
}

impl Walk<'_, '_> {
    fn push_blocks(&mut self, start: u64, count: u64) -> Result<(), MapError> {
        let end = start.saturating_add(count);
        if start < self.sb.first_data_block || end > self.sb.blocks_count {
            return Err(MapError::doubt(format!(
                "inode {} maps blocks {start}..{end} outside the filesystem",
                self.ino
            )));
        }
        self.budget = self.budget.checked_sub(count).ok_or_else(|| {
            MapError::doubt(format!(
                "inode {} maps more blocks than the filesystem has",
                self.ino
            ))
        })?;
        self.out
            .push(start * self.sb.block_size, count * self.sb.block_size);
        Ok(())
    }

    fn read_block(&mut self, block: u64) -> Result<Vec<u8>, MapError> {
        self.push_blocks(block, 1)?;
        Ok(self
            .vol
            .read_vec(block * self.sb.block_size, self.sb.block_size as usize)?)
    }

    /// One extent tree node: the 60 bytes of i_block, or a whole block.
    fn extent_node(&mut self, node: &[u8], parent_depth: Option<u16>) -> Result<(), MapError> {
        let bad = |what: String| MapError::doubt(format!("inode {} extent tree: {what}", self.ino));
        if node.len() < 12 || le16(node, 0) != EXTENT_MAGIC {
            return Err(bad("bad node magic".into()));
        }
        let entries = le16(node, 2) as usize;
        let max = le16(node, 4) as usize;
        let depth = le16(node, 6);
        if entries > max || 12 + 12 * max > node.len() {
            return Err(bad(format!("{entries} of {max} entries")));
        }
        let depth_ok = match parent_depth {
            None => depth <= MAX_EXTENT_DEPTH,
            Some(p) => depth + 1 == p,
        };
        if !depth_ok {
            return Err(bad(format!("depth {depth}")));
        }
        for i in 0..entries {
            let e = &node[12 + 12 * i..24 + 12 * i];
            if depth == 0 {
                let mut len = u64::from(le16(e, 4));
                if len > EXT_INIT_MAX_LEN {
                    len -= EXT_INIT_MAX_LEN;
                }
                let start = u64::from(le32(e, 8)) | (u64::from(le16(e, 6)) << 32);
                self.push_blocks(start, len)?;
            } else {
                let child = u64::from(le32(e, 4)) | (u64::from(le16(e, 8)) << 32);
                let block = self.read_block(child)?;
                self.extent_node(&block, Some(depth))?;
            }
        }
        Ok(())
    }

    /// A block pointer `depth` levels above data (0: a data block).
    fn indirect(&mut self, ptr: u64, depth: u32) -> Result<(), MapError> {
        if ptr == 0 {
            return Ok(());
        }
        if depth == 0 {
            return self.push_blocks(ptr, 1);
        }
        let block = self.read_block(ptr)?;
        for chunk in block.chunks_exact(4) {
            let child = u64::from(le32(chunk, 0));
            self.indirect(child, depth - 1)?;
        }
        Ok(())
    }
}
