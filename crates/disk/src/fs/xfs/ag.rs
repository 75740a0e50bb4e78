//! Allocation group headers: the AGF (free-space roots and counters) and
//! the AGFL (blocks set aside for free-space tree growth).

use extents::ReadAt;

use super::bytes::{be32, crc_ok};
use super::superblock::Superblock;
use crate::fs::MapError;

const AGF_MAGIC: u32 = 0x5841_4746; // "XAGF"
const AGFL_MAGIC: u32 = 0x5841_464C; // "XAFL"
const AGF_CRC_OFF: usize = 216;
const AGFL_CRC_OFF: usize = 32;
/// v5 AGFL header: magic, seqno, uuid, lsn, crc.
const AGFL_V5_HEADER: usize = 36;
/// Deepest free-space tree we accept; real ones stay well below.
pub(super) const MAX_LEVELS: u32 = 16;

/// What the mapper needs from one AGF.
#[derive(Debug, Clone)]
pub(super) struct Agf {
    pub length: u64,
    pub bno_root: u64,
    pub bno_level: u32,
    pub freeblks: u64,
    pub longest: u64,
    /// Blocks on the free list (agbno), in list order.
    pub free_list: Vec<u64>,
}

pub(super) fn read(vol: &dyn ReadAt, sb: &Superblock, agno: u64) -> Result<Agf, MapError> {
    let sect = sb.sector_size as usize;
    let base = sb.ag_byte(agno, 0);
    let raw = vol.read_vec(base + sb.sector_size, sect)?;
    let bad = |what: String| MapError::doubt(format!("AG {agno} AGF: {what}"));
    if be32(&raw, 0) != AGF_MAGIC || be32(&raw, 4) != 1 {
        return Err(bad("bad magic or version".into()));
    }
    if sb.crc {
        if !crc_ok(&raw, AGF_CRC_OFF) {
            return Err(bad("checksum mismatch".into()));
        }
        if raw[64..80] != sb.meta_uuid {
            return Err(bad("uuid is not the filesystem's".into()));
        }
    }
    let expected_len = sb.ag_blocks(agno);
    let agf = Agf {
        length: u64::from(be32(&raw, 12)),
        bno_root: u64::from(be32(&raw, 16)),
        bno_level: be32(&raw, 28),
        freeblks: u64::from(be32(&raw, 52)),
        longest: u64::from(be32(&raw, 56)),
        free_list: Vec::new(),
    };
    if u64::from(be32(&raw, 8)) != agno || agf.length != expected_len {
        return Err(bad(format!(
            "sequence {} of length {}, expected {agno} of length {expected_len}",
            be32(&raw, 8),
            agf.length
        )));
    }
    if agf.bno_level == 0 || agf.bno_level > MAX_LEVELS || agf.bno_root >= agf.length {
        return Err(bad(format!(
            "free-space tree root {} at level {}",
            agf.bno_root, agf.bno_level
        )));
    }
    if agf.freeblks > agf.length || agf.longest > agf.freeblks {
        return Err(bad(format!(
            "{} free blocks (longest {}) in {} blocks",
            agf.freeblks, agf.longest, agf.length
        )));
    }
    let free_list = read_free_list(vol, sb, agno, &raw)?;
    Ok(Agf { free_list, ..agf })
}

/// The AGFL entries between flfirst and fllast, range-checked.
fn read_free_list(
    vol: &dyn ReadAt,
    sb: &Superblock,
    agno: u64,
    agf: &[u8],
) -> Result<Vec<u64>, MapError> {
    let bad = |what: String| MapError::doubt(format!("AG {agno} AGFL: {what}"));
    let sect = sb.sector_size as usize;
    let raw = vol.read_vec(sb.ag_byte(agno, 0) + 3 * sb.sector_size, sect)?;
    let header = if sb.crc {
        if be32(&raw, 0) != AGFL_MAGIC || u64::from(be32(&raw, 4)) != agno {
            return Err(bad("bad magic or sequence".into()));
        }
        if !crc_ok(&raw, AGFL_CRC_OFF) {
            return Err(bad("checksum mismatch".into()));
        }
        AGFL_V5_HEADER
    } else {
        0
    };
    let size = ((sect - header) / 4) as u64;
    let (first, last, count) = (
        u64::from(be32(agf, 40)),
        u64::from(be32(agf, 44)),
        u64::from(be32(agf, 48)),
    );
    if count > size || first >= size || last >= size {
        return Err(bad(format!(
            "list {first}..{last} ({count} entries) in {size} slots"
        )));
    }
    let span = if count == 0 {
        0
    } else {
        (last + size - first) % size + 1
    };
    if span != count {
        return Err(bad(format!(
            "list {first}..{last} does not hold {count} entries"
        )));
    }
    let length = sb.ag_blocks(agno);
    let mut out = Vec::with_capacity(count as usize);
    for i in 0..count {
        let slot = ((first + i) % size) as usize;
        let agbno = u64::from(be32(&raw, header + slot * 4));
        if agbno < sb.ag_header_blocks() || agbno >= length {
            return Err(bad(format!("entry {agbno} outside the AG")));
        }
        out.push(agbno);
    }
    Ok(out)
}
