//! Mapping one volume group: for each LV, either its content mapped through
//! its segments, or all its extents (and those of the LVs it uses) copied
//! whole with the reason.

use std::collections::HashMap;

use extents::{ExtentBuilder, ExtentMap, ReadAt};

use super::layout::{LvLayout, LvReader, SegmentLayout};
use super::metadata::{SegmentKind, VgMetadata};
use super::probe;
use super::LogicalVolume;
use crate::content::Content;
use crate::fs::{map_content, VolumeMap};

const SECTOR: u64 = 512;

/// The VG's latest metadata and where its PVs are among the inputs.
pub struct VgInput<'a> {
    pub meta: &'a VgMetadata,
    /// Input index of each PV of `meta.pvs` (same order), when given and usable.
    pub present: Vec<Option<usize>>,
    pub readers: &'a [&'a dyn ReadAt],
}

/// What to copy of each input PV for this VG's LVs, and the LVs to report
/// with the input PVs each one touches.
#[derive(Default)]
pub struct VgOutcome {
    pub copy: HashMap<usize, ExtentBuilder>,
    pub volumes: Vec<(LogicalVolume, Vec<usize>)>,
}

/// A range of physical extents on PV `pv` (index into `meta.pvs`).
#[derive(Clone, Copy, Debug)]
struct PeRange {
    pv: usize,
    first: u64,
    count: u64,
}

struct Vg<'a> {
    input: &'a VgInput<'a>,
    extent_bytes: u64,
    pv_by_name: HashMap<&'a str, usize>,
    lv_by_name: HashMap<&'a str, usize>,
    /// Who uses each LV, if anyone: (LV name, segment type).
    used_by: Vec<Option<(String, String)>>,
    /// LVs whose extents are already accounted for.
    covered: Vec<bool>,
}

/// Maps every LV of a VG. An error means the metadata is unusable as a
/// whole: the caller copies the VG's PVs whole with that reason.
pub fn map_vg(input: &VgInput<'_>) -> Result<VgOutcome, String> {
    let meta = input.meta;
    let extent_bytes = meta.extent_sectors.checked_mul(SECTOR).ok_or_else(|| {
        format!(
            "VG {}: extent size {} overflows",
            meta.name, meta.extent_sectors
        )
    })?;
    let mut vg = Vg {
        input,
        extent_bytes,
        pv_by_name: meta
            .pvs
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), i))
            .collect(),
        lv_by_name: meta
            .lvs
            .iter()
            .enumerate()
            .map(|(i, l)| (l.name.as_str(), i))
            .collect(),
        used_by: vec![None; meta.lvs.len()],
        covered: vec![false; meta.lvs.len()],
    };
    vg.find_users();
    let mut out = VgOutcome::default();
    for (i, lv) in meta.lvs.iter().enumerate() {
        if lv.visible || vg.used_by[i].is_none() {
            vg.map_lv(i, None, &mut out);
        }
    }
    // LVs used only by internal LVs that nothing reaches (a cycle): copy them too.
    for i in 0..meta.lvs.len() {
        if !vg.covered[i] {
            vg.map_lv(i, Some("internal LV that no top-level LV uses"), &mut out);
        }
    }
    Ok(out)
}

impl Vg<'_> {
    fn find_users(&mut self) {
        for (user, lv) in self.input.meta.lvs.iter().enumerate() {
            for seg in &lv.segments {
                let names: Vec<&str> = match &seg.kind {
                    SegmentKind::Striped { stripes, .. } => {
                        stripes.iter().map(|a| a.target.as_str()).collect()
                    }
                    SegmentKind::Other { names, areas, .. } => names
                        .iter()
                        .map(String::as_str)
                        .chain(areas.iter().map(|a| a.target.as_str()))
                        .collect(),
                };
                for name in names {
                    if let Some(&used) = self.lv_by_name.get(name) {
                        if used != user && self.used_by[used].is_none() {
                            self.used_by[used] =
                                Some((lv.name.clone(), seg.kind.type_name().to_string()));
                        }
                    }
                }
            }
        }
    }

    /// Maps or copies LV `i` and records it. `forced` is a reason to copy it
    /// whole regardless.
    fn map_lv(&mut self, i: usize, forced: Option<&str>, out: &mut VgOutcome) {
        let meta = self.input.meta;
        let Some(lv) = meta.lvs.get(i) else { return };
        let size = lv.extent_count().saturating_mul(self.extent_bytes);
        let layout = self.layout(i);
        let reason = forced
            .map(str::to_string)
            .or_else(|| self.why_whole(i, &layout));
        let readers = self.input.readers;
        let (content, map, pieces) = match (&reason, &layout) {
            (None, Ok(layout)) => {
                let reader = LvReader {
                    layout,
                    pvs: readers,
                };
                let content = probe::probe(&reader);
                let map = map_content(&content, &reader);
                let mut pieces = layout.to_pvs(&map.extents);
                // Report the LV with every PV it has a segment on, even
                // where none of its used bytes land.
                for seg in &layout.segments {
                    for &(pv, _) in &seg.stripes {
                        if !pieces.iter().any(|(p, _)| *p == pv) {
                            pieces.push((pv, ExtentMap::new()));
                        }
                    }
                }
                self.covered[i] = true;
                (content, map, pieces)
            }
            (reason, _) => {
                let reason = reason.clone().unwrap_or_else(|| "LV copied whole".into());
                let content = match &layout {
                    Ok(layout) => probe::probe(&LvReader {
                        layout,
                        pvs: readers,
                    }),
                    Err(_) => Content::unknown(),
                };
                let mut ranges = Vec::new();
                let mut visited = vec![false; meta.lvs.len()];
                self.footprint(i, &mut visited, &mut ranges);
                for (covered, seen) in self.covered.iter_mut().zip(visited) {
                    *covered |= seen;
                }
                (
                    content,
                    VolumeMap::whole(size, reason),
                    self.ranges_to_pvs(&ranges),
                )
            }
        };
        let mut touched = Vec::new();
        for (pv, extents) in pieces {
            out.copy.entry(pv).or_default().extend_map(&extents);
            touched.push(pv);
        }
        touched.sort_unstable();
        touched.dedup();
        if let Some(reason) = &map.reason {
            tracing::info!(vg = %meta.name, lv = %lv.name, %reason, "LV copied whole or noted");
        }
        out.volumes.push((
            LogicalVolume {
                vg: meta.name.clone(),
                name: lv.name.clone(),
                size,
                content,
                map,
            },
            touched,
        ));
    }

    fn why_whole(&self, i: usize, layout: &Result<LvLayout, String>) -> Option<String> {
        let meta = self.input.meta;
        let lv = meta.lvs.get(i)?;
        if let Some((user, kind)) = &self.used_by[i] {
            return Some(format!(
                "LV {} is used by LV {user} ({kind}): its extents are copied whole",
                lv.name
            ));
        }
        if let Some(seg) = lv
            .segments
            .iter()
            .find(|s| !matches!(s.kind, SegmentKind::Striped { .. }))
        {
            return Some(format!(
                "LV {} has a {} segment, which is not mapped: its extents (and those of \
                 the LVs it uses) are copied whole",
                lv.name,
                seg.kind.type_name()
            ));
        }
        layout.as_ref().err().cloned()
    }

    /// Byte layout of an LV of linear and striped segments on given PVs.
    fn layout(&self, i: usize) -> Result<LvLayout, String> {
        let meta = self.input.meta;
        let lv = meta.lvs.get(i).ok_or("no such LV")?;
        let overflow = || format!("LV {}: sizes overflow", lv.name);
        let mut segments = Vec::new();
        let mut next_extent = 0u64;
        for seg in &lv.segments {
            let SegmentKind::Striped {
                stripe_sectors,
                stripes,
            } = &seg.kind
            else {
                return Err(format!("LV {}: {} segment", lv.name, seg.kind.type_name()));
            };
            if seg.start_extent != next_extent || seg.extent_count == 0 {
                return Err(format!(
                    "LV {}: segment at extent {} for {} extents where extent {next_extent} was expected",
                    lv.name, seg.start_extent, seg.extent_count
                ));
            }
            let n = stripes.len() as u64;
            if n == 0 || seg.extent_count % n != 0 {
                return Err(format!(
                    "LV {}: {} extents over {n} stripes",
                    lv.name, seg.extent_count
                ));
            }
            let per_stripe = seg.extent_count / n;
            let len = seg
                .extent_count
                .checked_mul(self.extent_bytes)
                .ok_or_else(overflow)?;
            let stripe_bytes = if n == 1 {
                len
            } else {
                stripe_sectors.checked_mul(SECTOR).ok_or_else(overflow)?
            };
            let per_stripe_bytes = per_stripe
                .checked_mul(self.extent_bytes)
                .ok_or_else(overflow)?;
            if per_stripe_bytes % stripe_bytes != 0 {
                return Err(format!(
                    "LV {}: stripe size {stripe_bytes} does not divide {per_stripe_bytes} bytes per stripe",
                    lv.name
                ));
            }
            let mut resolved = Vec::new();
            for area in stripes {
                let pv = *self.pv_by_name.get(area.target.as_str()).ok_or_else(|| {
                    format!(
                        "LV {} has a segment on LV {}, not on a PV",
                        lv.name, area.target
                    )
                })?;
                let pv_meta = meta.pvs.get(pv).ok_or("no such PV")?;
                let input = self
                    .input
                    .present
                    .get(pv)
                    .copied()
                    .flatten()
                    .ok_or_else(|| {
                        format!(
                            "PV {} ({}) of VG {} is not among the given devices (or unusable): \
                         the extents of LV {} on the others are copied whole",
                            pv_meta.name, pv_meta.id, meta.name, lv.name
                        )
                    })?;
                if area
                    .start
                    .checked_add(per_stripe)
                    .is_none_or(|end| end > pv_meta.pe_count)
                {
                    return Err(format!(
                        "LV {}: extents {}+{per_stripe} past the {} extents of PV {}",
                        lv.name, area.start, pv_meta.pe_count, pv_meta.name
                    ));
                }
                let offset = area
                    .start
                    .checked_mul(meta.extent_sectors)
                    .and_then(|s| s.checked_add(pv_meta.pe_start))
                    .and_then(|s| s.checked_mul(SECTOR))
                    .ok_or_else(overflow)?;
                resolved.push((input, offset));
            }
            segments.push(SegmentLayout {
                lv_start: next_extent
                    .checked_mul(self.extent_bytes)
                    .ok_or_else(overflow)?,
                len,
                stripe_bytes,
                stripes: resolved,
            });
            next_extent += seg.extent_count;
        }
        Ok(LvLayout { segments })
    }

    /// Every physical extent LV `i` occupies, through the LVs it uses too.
    /// `visited` guards against LVs that use each other; an explicit stack
    /// keeps hostile metadata from exhausting the call stack.
    fn footprint(&self, i: usize, visited: &mut [bool], out: &mut Vec<PeRange>) {
        let meta = self.input.meta;
        let mut stack = vec![i];
        while let Some(i) = stack.pop() {
            match visited.get_mut(i) {
                Some(seen) if !*seen => *seen = true,
                _ => continue,
            }
            let Some(lv) = meta.lvs.get(i) else { continue };
            for seg in &lv.segments {
                let (areas, per_area, names): (Vec<_>, u64, &[String]) = match &seg.kind {
                    SegmentKind::Striped { stripes, .. } => (
                        stripes.iter().collect(),
                        seg.extent_count / (stripes.len().max(1) as u64),
                        &[],
                    ),
                    // Mirror legs span the whole segment: over-counting is safe.
                    SegmentKind::Other { areas, names, .. } => {
                        (areas.iter().collect(), seg.extent_count, names)
                    }
                };
                for area in areas {
                    match self.pv_by_name.get(area.target.as_str()) {
                        Some(&pv) => {
                            let pe_count = meta.pvs.get(pv).map_or(0, |p| p.pe_count);
                            let first = area.start.min(pe_count);
                            out.push(PeRange {
                                pv,
                                first,
                                count: per_area.min(pe_count - first),
                            });
                        }
                        None => stack.extend(self.lv_by_name.get(area.target.as_str()).copied()),
                    }
                }
                stack.extend(
                    names
                        .iter()
                        .filter_map(|n| self.lv_by_name.get(n.as_str()).copied()),
                );
            }
        }
    }

    fn ranges_to_pvs(&self, ranges: &[PeRange]) -> Vec<(usize, ExtentMap)> {
        let meta = self.input.meta;
        let mut by_pv: HashMap<usize, ExtentBuilder> = HashMap::new();
        for r in ranges {
            let (Some(pv), Some(Some(input))) = (meta.pvs.get(r.pv), self.input.present.get(r.pv))
            else {
                continue;
            };
            let start = r
                .first
                .saturating_mul(meta.extent_sectors)
                .saturating_add(pv.pe_start)
                .saturating_mul(SECTOR);
            by_pv
                .entry(*input)
                .or_default()
                .push(start, r.count.saturating_mul(self.extent_bytes));
        }
        by_pv.into_iter().map(|(pv, b)| (pv, b.build())).collect()
    }
}
