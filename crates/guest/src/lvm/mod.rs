//! Where the logical volumes of an LVM physical volume lie, read from the
//! PV's own metadata, so they can be reached through offset loop devices on
//! hosts without device-mapper.
//!
//! Minimal on purpose and behind [`logical_volumes`] alone: the disk crate
//! grows a full LVM reader, and this module switches to it when it lands.

mod metadata;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub(crate) use metadata::Value;

const SECTOR: u64 = 512;
const LABEL_ID: &[u8; 8] = b"LABELONE";
const MDA_MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";

/// A logical volume as seen from one PV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogicalVolume {
    pub(crate) vg: String,
    pub(crate) name: String,
    pub(crate) placement: Placement,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Placement {
    /// One contiguous run of this PV: bytes `offset..offset+size` from the PV start.
    Linear { offset: u64, size: u64 },
    /// Anything else (striped, mirrored, thin, spread over PVs or gaps): not
    /// reachable without device-mapper.
    Unreachable(String),
}

/// The logical volumes of the VG that the PV at `pv` belongs to.
pub(crate) fn logical_volumes(pv: &Path) -> Result<Vec<LogicalVolume>, String> {
    let file = File::open(pv).map_err(|e| format!("opening {}: {e}", pv.display()))?;
    let (pv_id, text) = read_metadata_text(&file)?;
    let root = metadata::parse(&text)?;
    volumes_from_metadata(&root, &pv_id)
}

/// Finds the label, the first metadata area and its current text.
fn read_metadata_text(file: &File) -> Result<(String, String), String> {
    let mut head = [0u8; 4 * SECTOR as usize];
    file.read_exact_at(&mut head, 0)
        .map_err(|e| format!("reading the PV label: {e}"))?;
    let label = (0..4usize)
        .map(|s| s * SECTOR as usize)
        .find(|&at| head.get(at..at + 8) == Some(LABEL_ID.as_slice()))
        .ok_or("no LVM2 label in the first four sectors")?;
    let pv_header = label + le32(&head, label + 20)? as usize;
    let pv_id = String::from_utf8_lossy(
        head.get(pv_header..pv_header + 32)
            .ok_or("PV header out of range")?,
    )
    .into_owned();
    // Data areas, then metadata areas; each list ends with a zero entry.
    let mut at = pv_header + 32 + 8;
    let mut lists = [Vec::new(), Vec::new()];
    for list in &mut lists {
        loop {
            let offset = le64(&head, at)?;
            let size = le64(&head, at + 8)?;
            at += 16;
            if offset == 0 {
                break;
            }
            list.push((offset, size));
        }
    }
    let &(mda_offset, mda_size) = lists[1].first().ok_or("PV has no metadata area")?;
    let mut mda = [0u8; SECTOR as usize];
    file.read_exact_at(&mut mda, mda_offset)
        .map_err(|e| format!("reading the metadata area header: {e}"))?;
    if mda.get(4..20) != Some(MDA_MAGIC.as_slice()) {
        return Err("metadata area header has a bad magic".into());
    }
    let text_offset = le64(&mda, 40)?;
    let text_size = le64(&mda, 48)?;
    if text_offset == 0 || text_size == 0 {
        return Err("metadata area holds no metadata".into());
    }
    // The text area is a ring after the header sector.
    let ring = mda_size
        .checked_sub(SECTOR)
        .ok_or("metadata area too small")?;
    let first_len = text_size.min(mda_size.saturating_sub(text_offset));
    let mut text = vec![0u8; usize::try_from(text_size).map_err(|_| "metadata too large")?];
    if text_size > ring || text_size > 64 << 20 {
        return Err("metadata larger than its area".into());
    }
    let (first, rest) = text.split_at_mut(first_len as usize);
    file.read_exact_at(first, mda_offset + text_offset)
        .map_err(|e| format!("reading metadata: {e}"))?;
    if !rest.is_empty() {
        file.read_exact_at(rest, mda_offset + SECTOR)
            .map_err(|e| format!("reading wrapped metadata: {e}"))?;
    }
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    Ok((pv_id, String::from_utf8_lossy(&text[..end]).into_owned()))
}

fn le32(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| "PV header out of range".to_string())
}

fn le64(b: &[u8], at: usize) -> Result<u64, String> {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| "PV header out of range".to_string())
}

fn volumes_from_metadata(root: &Value, pv_id: &str) -> Result<Vec<LogicalVolume>, String> {
    let (vg, body) = root
        .sections()
        .next()
        .ok_or("metadata holds no volume group")?;
    let extent = body.int("extent_size").ok_or("no extent_size")? * SECTOR;
    let plain = |s: &str| s.replace('-', "");
    let pvs = body.get("physical_volumes").ok_or("no physical_volumes")?;
    let (pv_key, pv) = pvs
        .sections()
        .find(|(_, pv)| pv.str("id").map(plain) == Some(plain(pv_id)))
        .ok_or("this PV is not listed in its own metadata")?;
    let pe_start = pv.int("pe_start").ok_or("no pe_start")? * SECTOR;
    let mut out = Vec::new();
    let Some(lvs) = body.get("logical_volumes") else {
        return Ok(out);
    };
    for (name, lv) in lvs.sections() {
        let placement = match linear_run(lv, pv_key) {
            Ok((first_pe, count)) => Placement::Linear {
                offset: pe_start + first_pe * extent,
                size: count * extent,
            },
            Err(reason) => Placement::Unreachable(reason),
        };
        out.push(LogicalVolume {
            vg: vg.to_string(),
            name: name.to_string(),
            placement,
        });
    }
    Ok(out)
}

/// The first PE and extent count when the LV is one contiguous run on `pv_key`.
fn linear_run(lv: &Value, pv_key: &str) -> Result<(u64, u64), String> {
    let mut segments: Vec<&Value> = lv
        .sections()
        .filter(|(k, _)| k.starts_with("segment"))
        .map(|(_, s)| s)
        .collect();
    segments.sort_by_key(|s| s.int("start_extent"));
    let mut run: Option<(u64, u64)> = None;
    for s in segments {
        if s.str("type") != Some("striped") || s.int("stripe_count") != Some(1) {
            return Err(format!(
                "segment type {} is not linear",
                s.str("type").unwrap_or("?")
            ));
        }
        let stripes = s.list("stripes").ok_or("segment without stripes")?;
        let (Some(Value::Str(pv)), Some(Value::Int(pe))) = (stripes.first(), stripes.get(1)) else {
            return Err("unreadable stripes".into());
        };
        if pv != pv_key {
            return Err(format!("spread over more than one PV ({pv})"));
        }
        let count = s
            .int("extent_count")
            .ok_or("segment without extent_count")?;
        run = match run {
            None => Some((*pe, count)),
            Some((first, len)) if first + len == *pe => Some((first, len + count)),
            Some(_) => return Err("not contiguous on its PV".into()),
        };
    }
    run.ok_or_else(|| "no segments".to_string())
}

#[cfg(test)]
mod tests;
