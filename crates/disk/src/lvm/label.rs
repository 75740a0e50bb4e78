//! The LVM2 label: a "LABELONE" sector among the first four, followed by the
//! PV header (UUID, size, data and metadata area descriptors, bootloader
//! areas).

use extents::{Extent, ReadAt};

use super::crc;
use crate::fs::le::{u32_at, u64_at};

pub const SECTOR: u64 = 512;
/// The label may be in any of the first four sectors.
pub const LABEL_SCAN_SECTORS: u64 = 4;
const LABEL_ID: &[u8] = b"LABELONE";
const LABEL_TYPE: &[u8] = b"LVM2 001";
/// The checksum covers the label sector from the `offset` field on.
const CRC_FROM: usize = 20;
const UUID_LEN: usize = 32;

/// Why a label could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("no LVM2 label in the first four sectors")]
    Missing,
    #[error("LVM2 label in sector {sector} has a bad checksum (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        sector: u64,
        stored: u32,
        computed: u32,
    },
    #[error("LVM2 label in sector {sector}: {what}")]
    Invalid { sector: u64, what: String },
    #[error("reading the LVM2 label: {0}")]
    Io(#[from] std::io::Error),
}

/// A parsed PV label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvLabel {
    pub sector: u64,
    /// The PV UUID as stored: 32 characters, no dashes.
    pub uuid: String,
    pub device_size: u64,
    pub data_areas: Vec<Extent>,
    pub metadata_areas: Vec<Extent>,
    pub bootloader_areas: Vec<Extent>,
}

/// Finds and checks the label of a PV.
pub fn read_label(pv: &dyn ReadAt) -> Result<PvLabel, LabelError> {
    let head = pv.read_vec(0, (LABEL_SCAN_SECTORS * SECTOR).min(pv.size()) as usize)?;
    for (i, sector) in head.chunks_exact(SECTOR as usize).enumerate() {
        if sector.get(..8) == Some(LABEL_ID) {
            return parse(sector, i as u64);
        }
    }
    Err(LabelError::Missing)
}

fn parse(b: &[u8], sector: u64) -> Result<PvLabel, LabelError> {
    let invalid = |what: String| LabelError::Invalid { sector, what };
    if u64_at(b, 8) != sector {
        return Err(invalid(format!("says it is sector {}", u64_at(b, 8))));
    }
    let stored = u32_at(b, 16);
    let computed = crc::update(crc::INITIAL, b.get(CRC_FROM..).unwrap_or_default());
    if stored != computed {
        return Err(LabelError::Checksum {
            sector,
            stored,
            computed,
        });
    }
    if b.get(24..32) != Some(LABEL_TYPE) {
        return Err(invalid("type is not \"LVM2 001\"".into()));
    }
    let header = u32_at(b, 20) as usize;
    let uuid = b
        .get(header..header + UUID_LEN)
        .filter(|u| u.iter().all(u8::is_ascii_alphanumeric))
        .ok_or_else(|| invalid("PV UUID is not 32 letters and digits".into()))?;
    let uuid = String::from_utf8_lossy(uuid).into_owned();
    let device_size = u64_at(b, header + UUID_LEN);
    let mut at = header + UUID_LEN + 8;
    let data_areas = locations(b, &mut at)
        .ok_or_else(|| invalid("data area list runs off the sector".into()))?;
    let metadata_areas = locations(b, &mut at)
        .ok_or_else(|| invalid("metadata area list runs off the sector".into()))?;
    // The extension (version, flags, bootloader areas) came with lvm2 2.02.110;
    // older labels end here with zeros.
    let version = u32_at(b, at);
    let bootloader_areas = if version >= 1 {
        at += 8;
        locations(b, &mut at)
            .ok_or_else(|| invalid("bootloader area list runs off the sector".into()))?
    } else {
        Vec::new()
    };
    Ok(PvLabel {
        sector,
        uuid,
        device_size,
        data_areas,
        metadata_areas,
        bootloader_areas,
    })
}

/// A zero-terminated list of (offset, size) pairs starting at `*at`.
fn locations(b: &[u8], at: &mut usize) -> Option<Vec<Extent>> {
    let mut out = Vec::new();
    loop {
        if *at + 16 > b.len() {
            return None;
        }
        let (offset, size) = (u64_at(b, *at), u64_at(b, *at + 8));
        *at += 16;
        if offset == 0 && size == 0 {
            return Some(out);
        }
        out.push(Extent::new(offset, size));
    }
}
