//! LVM2 physical volumes: label, metadata areas and allocated extents, and for
//! each logical volume, its content mapped through the segment map.
//!
//! Read from the on-disk format (lvm2's `format_text`): the label and PV
//! header, each metadata area's header and its latest committed text (both
//! checksummed), then the VG's text metadata. Per PV, the map copies the
//! label sectors, the metadata areas in full, bootloader areas, and for each
//! LV either the PV bytes behind its used content (linear and striped LVs
//! whose PVs were all given) or all its extents (any other segment type, a
//! PV missing, an LV used by another LV such as a snapshot origin or thin
//! pool), with the reason. Free extents are not copied.
//!
//! A PV whose label or metadata cannot be trusted (bad checksum, text that
//! does not parse, claimed by two VGs, truncated) is copied whole.

mod crc;
mod label;
mod layout;
mod mda;
pub mod metadata;
mod probe;
mod scan;
mod text;
mod vg;

use std::collections::HashMap;

use extents::{Extent, ExtentBuilder, ReadAt};
use serde::Serialize;

use crate::content::Content;
use crate::fs::{MapMethod, VolumeMap};

use metadata::VgMetadata;
use scan::PvScan;

/// One physical volume handed in by the caller (a partition or whole disk).
pub struct PhysicalVolume<'a> {
    pub reader: &'a dyn ReadAt,
}

/// The outcome for one PV: what to copy of it (relative to the PV start) and
/// the logical volumes found on it.
#[derive(Clone, Debug)]
pub struct PvMap {
    pub map: VolumeMap,
    pub volumes: Vec<LogicalVolume>,
}

/// A logical volume with at least one segment on the PV it is reported with.
#[derive(Clone, Debug, Serialize)]
pub struct LogicalVolume {
    pub vg: String,
    pub name: String,
    pub size: u64,
    pub content: Content,
    /// How the LV's own content was mapped; extents relative to the LV start.
    #[serde(skip)]
    pub map: VolumeMap,
}

/// Maps every PV given, together, so that logical volumes spanning several
/// PVs (and several disks) are mapped through all of them. Returns one map
/// per input PV, in order.
pub fn map_physical_volumes(pvs: &[PhysicalVolume<'_>]) -> Vec<PvMap> {
    let readers: Vec<&dyn ReadAt> = pvs.iter().map(|p| p.reader).collect();
    let mut state: Vec<PvState> = readers
        .iter()
        .map(|r| match scan::scan(*r) {
            Ok(scan) => PvState::Scanned(Box::new(scan)),
            Err(reason) => PvState::Whole(reason),
        })
        .collect();
    mark_duplicates(&mut state);
    let vgs = latest_metadata(&state);
    let owners = assign_owners(&mut state, &vgs);

    let mut copies: HashMap<usize, ExtentBuilder> = HashMap::new();
    let mut volumes: HashMap<usize, Vec<LogicalVolume>> = HashMap::new();
    for (v, meta) in vgs.iter().enumerate() {
        let mut present: Vec<Option<usize>> = meta
            .pvs
            .iter()
            .map(|pm| {
                owners
                    .iter()
                    .position(|&(input, vg)| vg == v && uuid_of(&state, input) == Some(&pm.id))
                    .and_then(|k| owners.get(k).map(|o| o.0))
                    .filter(|_| !pm.missing)
            })
            .collect();
        check_sizes(meta, &mut present, &readers, &mut state);
        let input = vg::VgInput {
            meta,
            present: present.clone(),
            readers: &readers,
        };
        match vg::map_vg(&input) {
            Ok(outcome) => {
                for (pv, b) in outcome.copy {
                    copies.entry(pv).or_default().extend_map(&b.build());
                }
                for (lv, touched) in outcome.volumes {
                    for pv in touched {
                        volumes.entry(pv).or_default().push(lv.clone());
                    }
                }
            }
            Err(reason) => {
                for pv in present.into_iter().flatten() {
                    if let Some(s) = state.get_mut(pv) {
                        *s = PvState::Whole(reason.clone());
                    }
                }
            }
        }
    }

    state
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let size = readers.get(i).map_or(0, |r| r.size());
            match s {
                PvState::Whole(reason) => {
                    tracing::warn!(pv = i, %reason, "copying the whole LVM physical volume");
                    PvMap {
                        map: VolumeMap::whole(size, reason),
                        volumes: Vec::new(),
                    }
                }
                PvState::Scanned(scan) => {
                    let mut b = copies.remove(&i).unwrap_or_default();
                    b.extend_map(&scan.reserved);
                    PvMap {
                        map: VolumeMap {
                            method: MapMethod::Lvm,
                            extents: b.build().clip(Extent::new(0, size)),
                            reason: None,
                        },
                        volumes: volumes.remove(&i).unwrap_or_default(),
                    }
                }
            }
        })
        .collect()
}

enum PvState {
    Scanned(Box<PvScan>),
    Whole(String),
}

fn uuid_of(state: &[PvState], i: usize) -> Option<&String> {
    match state.get(i) {
        Some(PvState::Scanned(s)) => Some(&s.label.uuid),
        _ => None,
    }
}

/// The same PV UUID twice (multipath, a cloned disk): only the first is
/// mapped, the others are copied whole.
fn mark_duplicates(state: &mut [PvState]) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for i in 0..state.len() {
        let Some(uuid) = uuid_of(state, i).cloned() else {
            continue;
        };
        if let Some(first) = seen.get(&uuid) {
            let reason =
                format!("LVM PV UUID {uuid} was also found on input {first}: copied whole");
            if let Some(s) = state.get_mut(i) {
                *s = PvState::Whole(reason);
            }
        } else {
            seen.insert(uuid, i);
        }
    }
}

/// The metadata with the highest sequence number of each VG (by VG id).
fn latest_metadata(state: &[PvState]) -> Vec<VgMetadata> {
    let mut latest: Vec<VgMetadata> = Vec::new();
    for s in state {
        let PvState::Scanned(scan) = s else { continue };
        for m in &scan.metadata {
            match latest.iter_mut().find(|l| l.id == m.id) {
                Some(l) if l.seqno < m.seqno => *l = m.clone(),
                Some(_) => {}
                None => latest.push(m.clone()),
            }
        }
    }
    latest
}

/// Which VG each scanned PV belongs to: (input index, VG index). PVs in no
/// VG are orphans (only their label and metadata areas are copied) unless
/// they carry no metadata area at all, when nothing tells us what they hold.
fn assign_owners(state: &mut [PvState], vgs: &[VgMetadata]) -> Vec<(usize, usize)> {
    let mut owners = Vec::new();
    for (i, s) in state.iter_mut().enumerate() {
        let PvState::Scanned(scan) = s else { continue };
        let uuid = &scan.label.uuid;
        let claims: Vec<usize> = vgs
            .iter()
            .enumerate()
            .filter(|(_, vg)| vg.pvs.iter().any(|p| &p.id == uuid))
            .map(|(v, _)| v)
            .collect();
        match claims.as_slice() {
            [v] => owners.push((i, *v)),
            [] if scan.label.metadata_areas.is_empty() => {
                *s = PvState::Whole(format!(
                    "LVM PV {uuid} has no metadata area and no given PV's metadata lists it"
                ));
            }
            [] => {}
            many => {
                let names: Vec<&str> = many
                    .iter()
                    .filter_map(|&v| vgs.get(v).map(|g| g.name.as_str()))
                    .collect();
                *s = PvState::Whole(format!(
                    "LVM PV {uuid} is claimed by several VGs ({}): copied whole",
                    names.join(", ")
                ));
            }
        }
    }
    owners
}

/// A PV shorter than its extents says it was cut short: copy what there is
/// whole, and treat it as missing for the LVs on it.
fn check_sizes(
    meta: &VgMetadata,
    present: &mut [Option<usize>],
    readers: &[&dyn ReadAt],
    state: &mut [PvState],
) {
    for (pm, slot) in meta.pvs.iter().zip(present.iter_mut()) {
        let Some(input) = *slot else { continue };
        let needed = pm
            .pe_count
            .checked_mul(meta.extent_sectors)
            .and_then(|s| s.checked_add(pm.pe_start))
            .and_then(|s| s.checked_mul(512));
        let size = readers.get(input).map_or(0, |r| r.size());
        if needed.is_none_or(|n| n > size) {
            *slot = None;
            if let Some(s) = state.get_mut(input) {
                *s = PvState::Whole(format!(
                    "LVM PV {} of VG {} needs {} bytes for its extents but has {size} (truncated?)",
                    pm.id,
                    meta.name,
                    needed.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string())
                ));
            }
        }
    }
}
