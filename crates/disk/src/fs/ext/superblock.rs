//! The ext2/3/4 superblock: geometry, features and the checks that decide
//! whether the rest of the filesystem can be trusted.

use extents::ReadAt;

use super::bytes::{le16, le32, le64};
use super::csum::crc32c;
use crate::fs::MapError;

/// The primary superblock lives at byte 1024 whatever the block size.
pub(super) const SB_OFFSET: u64 = 1024;
const SB_SIZE: usize = 1024;
const MAGIC: u16 = 0xEF53;
const MAX_GROUPS: u64 = 1 << 21;

// s_state bits.
const STATE_VALID: u16 = 0x1;
const STATE_ERROR: u16 = 0x2;

pub(super) mod compat {
    pub const HAS_JOURNAL: u32 = 0x4;
    pub const SPARSE_SUPER2: u32 = 0x200;
}

pub(super) mod incompat {
    pub const FILETYPE: u32 = 0x2;
    pub const RECOVER: u32 = 0x4;
    pub const JOURNAL_DEV: u32 = 0x8;
    pub const META_BG: u32 = 0x10;
    pub const EXTENTS: u32 = 0x40;
    pub const BIT64: u32 = 0x80;
    pub const MMP: u32 = 0x100;
    pub const FLEX_BG: u32 = 0x200;
    pub const EA_INODE: u32 = 0x400;
    pub const DIRDATA: u32 = 0x1000;
    pub const CSUM_SEED: u32 = 0x2000;
    pub const LARGEDIR: u32 = 0x4000;
    pub const INLINE_DATA: u32 = 0x8000;
    pub const ENCRYPT: u32 = 0x10000;
    pub const CASEFOLD: u32 = 0x20000;
}

pub(super) mod ro_compat {
    pub const SPARSE_SUPER: u32 = 0x1;
    pub const LARGE_FILE: u32 = 0x2;
    pub const HUGE_FILE: u32 = 0x8;
    pub const GDT_CSUM: u32 = 0x10;
    pub const DIR_NLINK: u32 = 0x20;
    pub const EXTRA_ISIZE: u32 = 0x40;
    pub const QUOTA: u32 = 0x100;
    pub const BIGALLOC: u32 = 0x200;
    pub const METADATA_CSUM: u32 = 0x400;
    pub const READONLY: u32 = 0x1000;
    pub const PROJECT: u32 = 0x2000;
    pub const SHARED_BLOCKS: u32 = 0x4000;
    pub const VERITY: u32 = 0x8000;
    pub const ORPHAN_PRESENT: u32 = 0x10000;
}

/// Incompatible features whose effect on block allocation we understand.
/// Not here on purpose: COMPRESSION (never finished upstream), RECOVER
/// (handled apart: the journal must be replayed first), JOURNAL_DEV (an
/// external journal device, not a filesystem).
const KNOWN_INCOMPAT: u32 = incompat::FILETYPE
    | incompat::META_BG
    | incompat::EXTENTS
    | incompat::BIT64
    | incompat::MMP
    | incompat::FLEX_BG
    | incompat::EA_INODE
    | incompat::DIRDATA
    | incompat::CSUM_SEED
    | incompat::LARGEDIR
    | incompat::INLINE_DATA
    | incompat::ENCRYPT
    | incompat::CASEFOLD;

/// Read-only compatible features we understand. Not here: BTREE_DIR (0x4,
/// never used), HAS_SNAPSHOT (0x80, out-of-tree snapshots that keep blocks
/// outside the bitmaps), REPLICA (0x800).
const KNOWN_RO_COMPAT: u32 = ro_compat::SPARSE_SUPER
    | ro_compat::LARGE_FILE
    | ro_compat::HUGE_FILE
    | ro_compat::GDT_CSUM
    | ro_compat::DIR_NLINK
    | ro_compat::EXTRA_ISIZE
    | ro_compat::QUOTA
    | ro_compat::BIGALLOC
    | ro_compat::METADATA_CSUM
    | ro_compat::READONLY
    | ro_compat::PROJECT
    | ro_compat::SHARED_BLOCKS
    | ro_compat::VERITY
    | ro_compat::ORPHAN_PRESENT;

/// What the mapper needs from the superblock, checked for consistency.
#[derive(Debug, Clone)]
pub(super) struct Superblock {
    pub block_size: u64,
    /// Blocks per allocation cluster (1 unless bigalloc).
    pub cluster_ratio: u64,
    pub blocks_count: u64,
    pub first_data_block: u64,
    pub blocks_per_group: u64,
    pub clusters_per_group: u64,
    pub inodes_per_group: u64,
    pub inode_size: u64,
    pub desc_size: u64,
    pub group_count: u64,
    pub reserved_gdt_blocks: u64,
    pub first_meta_bg: u64,
    pub free_blocks: u64,
    pub compat: u32,
    pub incompat: u32,
    pub ro_compat: u32,
    pub uuid: [u8; 16],
    /// Register that metadata_csum checksums start from.
    pub csum_seed: u32,
    pub journal_inum: u32,
    pub mmp_block: u64,
    pub backup_bgs: [u32; 2],
}

impl Superblock {
    /// Reads and checks the primary superblock of `vol`.
    pub fn read(vol: &dyn ReadAt) -> Result<Self, MapError> {
        let mut raw = [0u8; SB_SIZE];
        vol.read_exact_at(&mut raw, SB_OFFSET)
            .map_err(|e| MapError::doubt(format!("cannot read the superblock: {e}")))?;
        let sb = Self::parse(&raw)?;
        let fs_bytes = sb.fs_bytes();
        if fs_bytes > vol.size() {
            return Err(MapError::doubt(format!(
                "filesystem is {fs_bytes} bytes but its volume only {} bytes",
                vol.size()
            )));
        }
        Ok(sb)
    }

    /// Parses the 1024 superblock bytes.
    pub fn parse(raw: &[u8; SB_SIZE]) -> Result<Self, MapError> {
        let doubt = |s: String| Err(MapError::doubt(s));
        if le16(raw, 0x38) != MAGIC {
            return doubt("no ext superblock magic".into());
        }
        let rev_level = le32(raw, 0x4C);
        if rev_level > 1 {
            return doubt(format!("unknown superblock revision {rev_level}"));
        }
        let (compat, incompat, ro_compat) = if rev_level == 0 {
            (0, 0, 0)
        } else {
            (le32(raw, 0x5C), le32(raw, 0x60), le32(raw, 0x64))
        };
        check_features(incompat, ro_compat)?;
        if ro_compat & ro_compat::METADATA_CSUM != 0 {
            let checksum_type = raw[0x175];
            if checksum_type != 1 {
                return doubt(format!("unknown checksum type {checksum_type}"));
            }
            let stored = le32(raw, 0x3FC);
            let computed = crc32c(!0, &[&raw[..0x3FC]]);
            if stored != computed {
                return doubt(format!(
                    "superblock checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
                ));
            }
        }
        let state = le16(raw, 0x3A);
        if state & STATE_VALID == 0 || state & STATE_ERROR != 0 {
            return doubt(format!(
                "filesystem state {state:#x} is not clean (not cleanly unmounted or has errors): \
                 run e2fsck on the source first"
            ));
        }

        let log_block = le32(raw, 0x18);
        if log_block > 6 {
            return doubt(format!("block size 1024 << {log_block} is beyond 64 KiB"));
        }
        let block_size = 1024u64 << log_block;
        let bigalloc = ro_compat & ro_compat::BIGALLOC != 0;
        let blocks_per_group = u64::from(le32(raw, 0x20));
        let (cluster_ratio, clusters_per_group) = if bigalloc {
            let log_cluster = le32(raw, 0x1C);
            if log_cluster < log_block || log_cluster - log_block > 16 {
                return doubt(format!(
                    "cluster size 1024 << {log_cluster} does not fit block size {block_size}"
                ));
            }
            (
                1u64 << (log_cluster - log_block),
                u64::from(le32(raw, 0x24)),
            )
        } else {
            (1, blocks_per_group)
        };
        if clusters_per_group < 8
            || clusters_per_group > 8 * block_size
            || blocks_per_group != clusters_per_group * cluster_ratio
        {
            return doubt(format!(
                "{blocks_per_group} blocks and {clusters_per_group} clusters per group \
                 do not fit {block_size}-byte bitmap blocks"
            ));
        }
        let inodes_per_group = u64::from(le32(raw, 0x28));
        if inodes_per_group == 0 || inodes_per_group > 8 * block_size {
            return doubt(format!("{inodes_per_group} inodes per group"));
        }
        let inode_size = if rev_level == 0 {
            128
        } else {
            u64::from(le16(raw, 0x58))
        };
        if inode_size < 128 || !inode_size.is_power_of_two() || inode_size > block_size {
            return doubt(format!("inode size {inode_size}"));
        }
        let is_64bit = incompat & incompat::BIT64 != 0;
        let desc_size = if is_64bit {
            let d = u64::from(le16(raw, 0xFE));
            if !(64..=1024).contains(&d) || !d.is_power_of_two() {
                return doubt(format!("group descriptor size {d}"));
            }
            d
        } else {
            32
        };
        let mut blocks_count = u64::from(le32(raw, 0x4));
        let mut free_blocks = u64::from(le32(raw, 0xC));
        if is_64bit {
            blocks_count |= u64::from(le32(raw, 0x150)) << 32;
            free_blocks |= u64::from(le32(raw, 0x158)) << 32;
        }
        let first_data_block = u64::from(le32(raw, 0x14));
        let expected_first = u64::from(block_size == 1024 && !bigalloc);
        if first_data_block != expected_first {
            return doubt(format!(
                "first data block {first_data_block} for {block_size}-byte blocks"
            ));
        }
        if blocks_count <= first_data_block {
            return doubt(format!("block count {blocks_count}"));
        }
        if blocks_count.checked_mul(block_size).is_none() {
            return doubt(format!("block count {blocks_count} overflows"));
        }
        let group_count = (blocks_count - first_data_block).div_ceil(blocks_per_group);
        let inodes_count = u64::from(le32(raw, 0x0));
        if group_count.checked_mul(inodes_per_group) != Some(inodes_count) {
            return doubt(format!(
                "{group_count} groups of {inodes_per_group} inodes do not make the \
                 {inodes_count} inodes the superblock counts"
            ));
        }
        // Each group costs the mapper some memory while it runs: 2^21 groups
        // is a 16 TiB filesystem of 1 KiB blocks, or 256 TiB of 4 KiB ones.
        if group_count > MAX_GROUPS {
            return doubt(format!(
                "{group_count} block groups, more than this mapper handles"
            ));
        }
        let reserved_gdt_blocks = u64::from(le16(raw, 0xCE));
        if reserved_gdt_blocks > block_size / 4 {
            return doubt(format!("{reserved_gdt_blocks} reserved GDT blocks"));
        }
        let first_meta_bg = u64::from(le32(raw, 0x104));
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&raw[0x68..0x78]);
        let csum_seed = if incompat & incompat::CSUM_SEED != 0 {
            le32(raw, 0x270)
        } else {
            crc32c(!0, &[&uuid])
        };
        let sb = Superblock {
            block_size,
            cluster_ratio,
            blocks_count,
            first_data_block,
            blocks_per_group,
            clusters_per_group,
            inodes_per_group,
            inode_size,
            desc_size,
            group_count,
            reserved_gdt_blocks,
            first_meta_bg,
            free_blocks,
            compat,
            incompat,
            ro_compat,
            uuid,
            csum_seed,
            journal_inum: le32(raw, 0xE0),
            mmp_block: le64(raw, 0x168),
            backup_bgs: [le32(raw, 0x24C), le32(raw, 0x250)],
        };
        if sb.meta_bg() && first_meta_bg > sb.gdt_blocks() {
            return doubt(format!(
                "first meta_bg {first_meta_bg} is past the {} descriptor blocks",
                sb.gdt_blocks()
            ));
        }
        Ok(sb)
    }

    pub fn fs_bytes(&self) -> u64 {
        self.blocks_count * self.block_size
    }

    pub fn meta_bg(&self) -> bool {
        self.incompat & incompat::META_BG != 0
    }

    pub fn metadata_csum(&self) -> bool {
        self.ro_compat & ro_compat::METADATA_CSUM != 0
    }

    /// gdt_csum counts only without metadata_csum (the kernel ignores it then).
    pub fn gdt_csum(&self) -> bool {
        !self.metadata_csum() && self.ro_compat & ro_compat::GDT_CSUM != 0
    }

    /// Whether group descriptors carry a checksum, which is also when the
    /// kernel honours the BLOCK_UNINIT flag.
    pub fn group_desc_csum(&self) -> bool {
        self.metadata_csum() || self.gdt_csum()
    }

    pub fn has_journal(&self) -> bool {
        self.compat & compat::HAS_JOURNAL != 0
    }

    pub fn mmp(&self) -> bool {
        self.incompat & incompat::MMP != 0
    }

    pub fn descs_per_block(&self) -> u64 {
        self.block_size / self.desc_size
    }

    /// Blocks the whole descriptor table takes.
    pub fn gdt_blocks(&self) -> u64 {
        self.group_count.div_ceil(self.descs_per_block())
    }

    pub fn cluster_bytes(&self) -> u64 {
        self.block_size * self.cluster_ratio
    }

    /// Blocks of one inode table.
    pub fn inode_table_blocks(&self) -> u64 {
        (self.inodes_per_group * self.inode_size).div_ceil(self.block_size)
    }
}

fn check_features(incompat: u32, ro_compat: u32) -> Result<(), MapError> {
    if incompat & incompat::RECOVER != 0 {
        return Err(MapError::doubt(
            "the journal needs recovery (not cleanly unmounted): the on-disk bitmaps may be stale; \
             mount and unmount the filesystem or run e2fsck on the source first",
        ));
    }
    if incompat & incompat::JOURNAL_DEV != 0 {
        return Err(MapError::doubt(
            "external ext journal device, not a filesystem",
        ));
    }
    let unknown = incompat & !KNOWN_INCOMPAT;
    if unknown != 0 {
        return Err(MapError::doubt(format!(
            "unknown incompatible feature flags {unknown:#x}"
        )));
    }
    let unknown = ro_compat & !KNOWN_RO_COMPAT;
    if unknown != 0 {
        return Err(MapError::doubt(format!(
            "unknown read-only-compatible feature flags {unknown:#x}"
        )));
    }
    Ok(())
}
