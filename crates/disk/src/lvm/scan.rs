//! What one PV says about itself: its label, the regions LVM keeps for
//! itself (label sectors, metadata areas, bootloader areas) and the VG
//! metadata found in its metadata areas.

use extents::{Extent, ExtentBuilder, ExtentMap, ReadAt};

use super::label::{self, PvLabel, LABEL_SCAN_SECTORS, SECTOR};
use super::mda;
use super::metadata::VgMetadata;

/// A PV whose label and metadata areas were read and checked.
#[derive(Debug, Clone)]
pub struct PvScan {
    pub label: PvLabel,
    /// Label sectors, metadata areas and bootloader areas: always copied.
    pub reserved: ExtentMap,
    /// One entry per metadata area that held metadata.
    pub metadata: Vec<VgMetadata>,
}

/// Reads a PV's label and metadata. An error is the reason to copy the PV
/// whole.
pub fn scan(pv: &dyn ReadAt) -> Result<PvScan, String> {
    let label = label::read_label(pv).map_err(|e| e.to_string())?;
    let mut reserved = ExtentBuilder::new();
    reserved.push(0, LABEL_SCAN_SECTORS * SECTOR);
    let mut metadata = Vec::new();
    for &area in &label.metadata_areas {
        reserved.push_extent(area);
        let text = mda::read_text(pv, area).map_err(|e| format!("LVM2 {e}"))?;
        if let Some(text) = text {
            let text = String::from_utf8_lossy(&text);
            metadata.push(VgMetadata::parse(&text).map_err(|e| e.to_string())?);
        }
    }
    for &area in &label.bootloader_areas {
        reserved.push_extent(area);
    }
    let reserved = reserved.build().clip(Extent::new(0, pv.size()));
    Ok(PvScan {
        label,
        reserved,
        metadata,
    })
}
