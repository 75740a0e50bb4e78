//! The xfs primary superblock: geometry, features, and the checks that
//! decide whether the allocation groups can be trusted.

use extents::ReadAt;

use super::bytes::{be16, be32, be64, crc_ok};
use crate::fs::MapError;

const MAGIC: u32 = 0x5846_5342; // "XFSB"
const CRC_OFF: usize = 224;
/// The superblock is read as one sector; 512 bytes cover every field we use.
const MIN_SECTOR: usize = 512;

// sb_versionnum bits (v4).
const VERSION_NUMBITS: u16 = 0x000F;
const VERSION_SHAREDBIT: u16 = 0x0200;
const VERSION_DIRV2BIT: u16 = 0x2000;
const VERSION_MOREBITSBIT: u16 = 0x8000;
/// sb_features2 bits a v4 filesystem may carry: lazy counters, attr2,
/// 32-bit project ids, file types in directories.
const FEATURES2_OK: u32 = 0x2 | 0x8 | 0x80 | 0x200;

/// v5 read-only-compatible features: finobt, rmapbt, reflink, inobtcount.
/// All of them only add used metadata: free space stays in the bnobt.
const RO_COMPAT_KNOWN: u32 = 0x1 | 0x2 | 0x4 | 0x8;
/// v5 incompatible features: ftype, sparse inodes, meta_uuid, bigtime,
/// nrext64, exchange-range, parent pointers. NEEDSREPAIR (0x10) is apart.
const INCOMPAT_KNOWN: u32 = 0x1 | 0x2 | 0x4 | 0x8 | 0x20 | 0x40 | 0x80;
const INCOMPAT_NEEDSREPAIR: u32 = 0x10;
pub(super) const INCOMPAT_META_UUID: u32 = 0x4;

/// What the mapper needs from the superblock, checked for consistency.
#[derive(Debug, Clone)]
pub(super) struct Superblock {
    pub block_size: u64,
    pub sector_size: u64,
    pub dblocks: u64,
    pub agblocks: u64,
    pub agcount: u64,
    /// Internal log start as (allocation group, block in it).
    pub log_start: (u64, u64),
    pub log_blocks: u64,
    pub crc: bool,
    /// The uuid metadata blocks are stamped with.
    pub meta_uuid: [u8; 16],
    pub fdblocks: u64,
}

impl Superblock {
    pub fn read(vol: &dyn ReadAt) -> Result<Self, MapError> {
        let mut head = [0u8; MIN_SECTOR];
        vol.read_exact_at(&mut head, 0)
            .map_err(|e| MapError::doubt(format!("cannot read the superblock: {e}")))?;
        let sector_size = u64::from(be16(&head, 102));
        if !(512..=32768).contains(&sector_size) || !sector_size.is_power_of_two() {
            return Err(MapError::doubt(format!("sector size {sector_size}")));
        }
        let raw = vol
            .read_vec(0, sector_size as usize)
            .map_err(|e| MapError::doubt(format!("cannot read the superblock sector: {e}")))?;
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

    /// Parses the superblock sector.
    pub fn parse(raw: &[u8]) -> Result<Self, MapError> {
        let doubt = |s: String| Err(MapError::doubt(s));
        if raw.len() < MIN_SECTOR || be32(raw, 0) != MAGIC {
            return doubt("no xfs superblock magic".into());
        }
        let versionnum = be16(raw, 100);
        let crc = match versionnum & VERSION_NUMBITS {
            4 => {
                check_v4_features(versionnum, be32(raw, 200))?;
                false
            }
            5 => {
                check_v5_features(raw)?;
                if !crc_ok(raw, CRC_OFF) {
                    return doubt("superblock checksum mismatch".into());
                }
                true
            }
            v => return doubt(format!("unsupported superblock version {v}")),
        };
        if raw[126] != 0 {
            return doubt("mkfs did not finish (sb_inprogress is set)".into());
        }
        let block_size = u64::from(be32(raw, 4));
        let blocklog = u32::from(raw[120]);
        if !(512..=65536).contains(&block_size) || Some(block_size) != 1u64.checked_shl(blocklog) {
            return doubt(format!("block size {block_size} (log {blocklog})"));
        }
        let sector_size = u64::from(be16(raw, 102));
        if Some(sector_size) != 1u64.checked_shl(u32::from(raw[121]))
            || sector_size > block_size
            || raw.len() as u64 != sector_size
        {
            return doubt(format!("sector size {sector_size} (log {})", raw[121]));
        }
        let dblocks = be64(raw, 8);
        let agblocks = u64::from(be32(raw, 84));
        let agcount = u64::from(be32(raw, 88));
        let agblklog = u32::from(raw[124]);
        // Four header sectors must fit in an AG with room to spare.
        if agblocks < 4
            || agcount == 0
            || agblklog > 32
            || agblocks > 1 << agblklog
            || (agblklog > 0 && agblocks <= 1 << (agblklog - 1))
        {
            return doubt(format!(
                "{agcount} allocation groups of {agblocks} blocks (log {agblklog})"
            ));
        }
        if dblocks > agcount * agblocks || dblocks <= (agcount - 1) * agblocks {
            return doubt(format!(
                "{dblocks} blocks do not make {agcount} allocation groups of {agblocks}"
            ));
        }
        if dblocks.checked_mul(block_size).is_none() {
            return doubt(format!("{dblocks} blocks overflow"));
        }
        let logstart = be64(raw, 48);
        if logstart == 0 {
            return doubt(
                "external log: whether it is clean cannot be checked from this volume, and the \
                 free-space trees may be stale until it is replayed"
                    .into(),
            );
        }
        let log_start = (logstart >> agblklog, logstart & ((1u64 << agblklog) - 1));
        let log_blocks = u64::from(be32(raw, 96));
        if log_start.0 >= agcount || log_blocks == 0 || log_start.1 + log_blocks > agblocks {
            return doubt(format!(
                "internal log of {log_blocks} blocks at AG {} block {} does not fit",
                log_start.0, log_start.1
            ));
        }
        let rblocks = be64(raw, 16);
        if rblocks > 0 {
            tracing::info!(
                rblocks,
                "xfs realtime section lives on another device: not mapped here"
            );
        }
        let mut meta_uuid = [0u8; 16];
        let incompat = if crc { be32(raw, 216) } else { 0 };
        let uuid_at = if incompat & INCOMPAT_META_UUID != 0 {
            248
        } else {
            32
        };
        meta_uuid.copy_from_slice(&raw[uuid_at..uuid_at + 16]);
        let sb = Superblock {
            block_size,
            sector_size,
            dblocks,
            agblocks,
            agcount,

            log_start,
            log_blocks,
            crc,
            meta_uuid,
            fdblocks: be64(raw, 144),
        };
        if sb.log_byte_range().1 > sb.fs_bytes() {
            return doubt("internal log runs past the end of the filesystem".into());
        }
        Ok(sb)
    }

    pub fn fs_bytes(&self) -> u64 {
        self.dblocks * self.block_size
    }

    /// Blocks of allocation group `agno` (the last one may be short).
    pub fn ag_blocks(&self, agno: u64) -> u64 {
        self.agblocks
            .min(self.dblocks.saturating_sub(agno * self.agblocks))
    }

    /// Byte offset of block `agbno` of AG `agno`.
    pub fn ag_byte(&self, agno: u64, agbno: u64) -> u64 {
        (agno * self.agblocks + agbno) * self.block_size
    }

    /// Blocks at the start of every AG that hold its four header sectors
    /// (superblock copy, AGF, AGI, AGFL).
    pub fn ag_header_blocks(&self) -> u64 {
        (4 * self.sector_size).div_ceil(self.block_size)
    }

    /// The internal log as (first byte, end byte).
    pub fn log_byte_range(&self) -> (u64, u64) {
        let start = self.ag_byte(self.log_start.0, self.log_start.1);
        (start, start + self.log_blocks * self.block_size)
    }
}

fn check_v4_features(versionnum: u16, features2: u32) -> Result<(), MapError> {
    if versionnum & VERSION_DIRV2BIT == 0 {
        return Err(MapError::doubt(
            "v4 filesystem without version 2 directories",
        ));
    }
    if versionnum & VERSION_SHAREDBIT != 0 {
        return Err(MapError::doubt(
            "v4 filesystem with the shared-superblock bit",
        ));
    }
    if versionnum & VERSION_MOREBITSBIT != 0 && features2 & !FEATURES2_OK != 0 {
        return Err(MapError::doubt(format!(
            "unknown v4 feature bits {:#x}",
            features2 & !FEATURES2_OK
        )));
    }
    Ok(())
}

fn check_v5_features(raw: &[u8]) -> Result<(), MapError> {
    let compat = be32(raw, 208);
    let ro_compat = be32(raw, 212);
    let incompat = be32(raw, 216);
    let log_incompat = be32(raw, 220);
    if incompat & INCOMPAT_NEEDSREPAIR != 0 {
        return Err(MapError::doubt(
            "the filesystem is flagged as needing xfs_repair: run it on the source first",
        ));
    }
    let unknown = [
        ("compatible", compat),
        ("read-only-compatible", ro_compat & !RO_COMPAT_KNOWN),
        ("incompatible", incompat & !INCOMPAT_KNOWN),
    ];
    for (what, bits) in unknown {
        if bits != 0 {
            return Err(MapError::doubt(format!(
                "unknown {what} feature flags {bits:#x}"
            )));
        }
    }
    if log_incompat != 0 {
        // These are cleared at a clean unmount: set, the log holds items to replay.
        return Err(MapError::doubt(format!(
            "log-incompatible features {log_incompat:#x} are set: the log was not cleanly \
             unmounted; mount and unmount the filesystem first"
        )));
    }
    Ok(())
}
