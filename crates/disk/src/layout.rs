//! A disk's layout: table, partitions, contents, and the one disk-relative
//! map of the bytes to copy.
//!
//! The map of a disk is the union of: the first MiB (boot code, and the
//! gap where boot loaders hide), the partition table's own structures
//! (MBR, EBRs, both GPTs), every gap between partitions, and each
//! partition's own map. When the table cannot be trusted, the whole disk.

use extents::{Extent, ExtentBuilder, ExtentMap, ReadAt, Window};
use serde::Serialize;

use crate::content::{Content, ContentKind};
use crate::error::Error;
use crate::fs::{self, VolumeMap};
use crate::lvm::{self, LogicalVolume, PhysicalVolume};
use crate::probe::{self, Probe};
use crate::source::{DiskInfo, SourceDisk};
use crate::table::{self, Partition, PartitionRole, ProtectiveMbr, Table, TableKind};

/// Always copied: boot code and whatever boot loaders keep before the
/// first partition.
pub const FIRST_MIB: u64 = 1 << 20;

/// The table as reported (its partitions are in [`DiskLayout::partitions`]).
#[derive(Clone, Debug, Serialize)]
pub struct TableInfo {
    pub kind: TableKind,
    pub uuid: Option<String>,
    pub protective_mbr: Option<ProtectiveMbr>,
    pub warnings: Vec<String>,
    /// Disk bytes of the MBR, EBRs and GPT structures.
    #[serde(skip)]
    pub structures: ExtentMap,
}

/// One partition (or the pseudo-partition 0 of a disk without a table).
#[derive(Clone, Debug)]
pub struct PartitionLayout {
    pub partition: Partition,
    /// `None` for an MBR extended container, which is not probed.
    pub probe: Option<Probe>,
    /// Relative to the partition start; `None` for an extended container.
    pub map: Option<VolumeMap>,
    /// The logical volumes of an LVM physical volume.
    pub volumes: Option<Vec<LogicalVolume>>,
}

impl PartitionLayout {
    pub fn content(&self) -> Option<&Content> {
        self.probe.as_ref().map(|p| &p.content)
    }
}

/// Everything `inspect` learns about one disk.
#[derive(Clone, Debug)]
pub struct DiskLayout {
    pub disk: DiskInfo,
    pub table: TableInfo,
    pub partitions: Vec<PartitionLayout>,
    /// Why the whole disk is copied, when it is.
    pub whole_disk_reason: Option<String>,
    /// Disk-relative byte extents that must be copied, inside the disk.
    pub map: ExtentMap,
}

impl DiskLayout {
    pub fn copy_bytes(&self) -> u64 {
        self.map.total_bytes()
    }
}

/// A disk to inspect: its identity and something to read it through.
#[derive(Clone, Copy)]
pub struct DiskInput<'a> {
    pub info: &'a DiskInfo,
    pub reader: &'a dyn ReadAt,
}

/// Inspects the disks together (an LVM volume group may span several).
pub fn inspect(disks: &[SourceDisk]) -> Result<Vec<DiskLayout>, Error> {
    let inputs: Vec<DiskInput<'_>> = disks
        .iter()
        .map(|d| DiskInput {
            info: d.info(),
            reader: d,
        })
        .collect();
    inspect_readers(&inputs)
}

/// [`inspect`] over any readers: images in memory, windows, devices.
pub fn inspect_readers(disks: &[DiskInput<'_>]) -> Result<Vec<DiskLayout>, Error> {
    let mut layouts = Vec::with_capacity(disks.len());
    for d in disks {
        let _span = tracing::info_span!("inspect", disk = %d.info.path).entered();
        let layout = inspect_one(d).map_err(|e| Error::disk("reading", d.info.path.as_ref(), e))?;
        layouts.push(layout);
    }
    map_lvm(disks, &mut layouts);
    for (layout, d) in layouts.iter_mut().zip(disks) {
        layout.map = disk_map(layout, d.reader.size());
    }
    Ok(layouts)
}

/// Everything but LVM (mapped across disks afterwards) and the disk map.
fn inspect_one(d: &DiskInput<'_>) -> std::io::Result<DiskLayout> {
    let size = d.reader.size();
    let mut table = table::read(d.reader, d.info.logical_sector_size)?;
    let whole = probe::probe_volume(d.reader)?;
    let has_data_partitions = table.partitions.iter().any(Partition::holds_data);
    let mut whole_disk_reason = table.doubt.clone();

    // No table, or a table listing nothing: the disk is one volume (an
    // empty table over an unknown disk is copied whole, not trusted).
    if table.doubt.is_none() && !has_data_partitions {
        if table.kind != TableKind::None {
            table.warnings.push(format!(
                "the {} partition table lists no partitions: the whole disk is one volume ({})",
                table_name(table.kind),
                whole.content.kind
            ));
        }
        let partition = Partition {
            number: 0,
            start: 0,
            size,
            type_id: None,
            name: None,
            uuid: None,
            role: PartitionRole::WholeDisk,
        };
        let map = map_volume(&whole, d.reader);
        let part = PartitionLayout {
            partition,
            volumes: None,
            map: Some(map),
            probe: Some(whole),
        };
        return Ok(finish(d, table, vec![part], None));
    }

    if whole_disk_reason.is_none() {
        let rival = whole.signatures.iter().find(|s| !s.at_end);
        if let Some(sig) = rival {
            let reason = format!(
                "the disk carries both a partition table and a whole-disk {} signature: cannot tell which is current",
                sig.name.unwrap_or(sig.content.kind.name())
            );
            table.warnings.push(reason.clone());
            whole_disk_reason = Some(reason);
        }
    }

    let mut parts = Vec::with_capacity(table.partitions.len());
    for p in &table.partitions {
        if !p.holds_data() {
            parts.push(PartitionLayout {
                partition: p.clone(),
                probe: None,
                map: None,
                volumes: None,
            });
            continue;
        }
        let len = p.size.min(size.saturating_sub(p.start));
        let window = Window::new(d.reader, p.start, len);
        let found = probe::probe_volume(&window)?;
        let map = match &whole_disk_reason {
            Some(reason) => VolumeMap::whole(len, format!("the whole disk is copied: {reason}")),
            None => map_volume(&found, &window),
        };
        parts.push(PartitionLayout {
            partition: p.clone(),
            probe: Some(found),
            map: Some(map),
            volumes: None,
        });
    }
    Ok(finish(d, table, parts, whole_disk_reason))
}

fn table_name(kind: TableKind) -> &'static str {
    match kind {
        TableKind::Gpt => "GPT",
        TableKind::Mbr => "MBR",
        TableKind::None => "(no)",
    }
}

fn finish(
    d: &DiskInput<'_>,
    table: Table,
    partitions: Vec<PartitionLayout>,
    reason: Option<String>,
) -> DiskLayout {
    if let Some(r) = &reason {
        tracing::warn!(disk = %d.info.path, reason = %r, "copying the whole disk");
    }
    DiskLayout {
        disk: d.info.clone(),
        table: TableInfo {
            kind: table.kind,
            uuid: table.uuid,
            protective_mbr: table.protective_mbr,
            warnings: table.warnings,
            structures: table.structures,
        },
        partitions,
        whole_disk_reason: reason,
        map: ExtentMap::new(),
    }
}

/// The map of one volume from its probed content. LVM PVs get a
/// placeholder here and their real map from [`map_lvm`].
fn map_volume(found: &Probe, vol: &dyn ReadAt) -> VolumeMap {
    match (&found.content.kind, &found.note) {
        (ContentKind::Unknown, Some(note)) => VolumeMap::whole(vol.size(), note.clone()),
        (ContentKind::LvmPv, _) => {
            VolumeMap::whole(vol.size(), "LVM: waiting for the volume group scan")
        }
        _ => fs::map_content(&found.content, vol),
    }
}

/// Maps every LVM PV of every disk in one call, so volume groups spanning
/// disks are seen whole.
fn map_lvm(disks: &[DiskInput<'_>], layouts: &mut [DiskLayout]) {
    let mut places = Vec::new();
    let mut windows = Vec::new();
    for (di, (layout, d)) in layouts.iter().zip(disks).enumerate() {
        if layout.whole_disk_reason.is_some() {
            continue;
        }
        for (pi, part) in layout.partitions.iter().enumerate() {
            if part.content().is_some_and(|c| c.kind == ContentKind::LvmPv) {
                let p = &part.partition;
                places.push((di, pi));
                windows.push(Window::new(
                    d.reader,
                    p.start,
                    p.size.min(d.reader.size().saturating_sub(p.start)),
                ));
            }
        }
    }
    if windows.is_empty() {
        return;
    }
    let pvs: Vec<PhysicalVolume<'_>> = windows
        .iter()
        .map(|w| PhysicalVolume { reader: w })
        .collect();
    let mut maps = lvm::map_physical_volumes(&pvs).into_iter();
    for ((di, pi), window) in places.into_iter().zip(&windows) {
        let Some(part) = layouts.get_mut(di).and_then(|l| l.partitions.get_mut(pi)) else {
            continue;
        };
        match maps.next() {
            Some(pv) => {
                part.map = Some(pv.map);
                part.volumes = Some(pv.volumes);
            }
            None => {
                part.map = Some(VolumeMap::whole(
                    window.size(),
                    "LVM: no map returned for this PV",
                ))
            }
        }
    }
}

/// The disk-relative map: first MiB, table structures, gaps between
/// partitions and partition maps; or everything, when in doubt.
fn disk_map(layout: &DiskLayout, size: u64) -> ExtentMap {
    let disk = Extent::new(0, size);
    if layout.whole_disk_reason.is_some() {
        return ExtentMap::single(0, size);
    }
    let mut map = ExtentBuilder::new();
    map.push(0, FIRST_MIB.min(size));
    map.extend_map(&layout.table.structures.clip(disk));

    let data: Vec<&Partition> = layout
        .partitions
        .iter()
        .map(|p| &p.partition)
        .filter(|p| p.holds_data())
        .collect();
    let covered: ExtentMap = data.iter().map(|p| Extent::new(p.start, p.size)).collect();
    let last_end = data.iter().map(|p| p.end()).max().unwrap_or(0).min(size);
    map.extend_map(&ExtentMap::single(0, last_end).subtract(&covered));

    for part in &layout.partitions {
        let p = &part.partition;
        if let Some(vm) = &part.map {
            let range = Extent::new(p.start, p.size).intersect(&disk);
            if let Some(range) = range {
                map.extend_map(&vm.extents.shifted(p.start).clip(range));
            }
        }
    }
    map.build().clip(disk)
}
