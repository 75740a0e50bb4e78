//! `xenlift inspect`: what would be copied, as a table or as the stable
//! JSON document described in the README ("inspect --json").

use std::io::Write;
use std::path::PathBuf;

use crate::units::human;
use anyhow::Context;
use disk::layout::{DiskLayout, PartitionLayout};
use disk::lvm::LogicalVolume;
use disk::probe::Probe;
use disk::{
    Content, ContentKind, DiskKind, MapMethod, ProtectiveMbr, ReadOnlyPolicy, SourceDisk,
    TableKind, VolumeMap,
};
use extents::ExtentMap;
use serde::Serialize;

/// Arguments of `xenlift inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Print the stable JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Add the byte extents to copy, per disk.
    #[arg(long)]
    pub extents: bool,
    /// Block devices or disk image files (default: all local disks).
    pub disks: Vec<PathBuf>,
}

pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let paths = if args.disks.is_empty() {
        local_disks()?
    } else {
        args.disks.clone()
    };
    let policy = read_only_policy();
    let disks = paths
        .iter()
        .map(|p| SourceDisk::open_with(p, policy))
        .collect::<Result<Vec<_>, _>>()?;
    let layouts = disk::inspect(&disks).context("inspecting the disks")?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc = Document {
            disks: layouts
                .iter()
                .map(|l| DiskDoc::new(l, args.extents))
                .collect(),
        };
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        for layout in &layouts {
            write_table(&mut out, layout, args.extents)?;
        }
    }
    Ok(())
}

/// Every local disk worth converting, from sysfs.
fn local_disks() -> anyhow::Result<Vec<PathBuf>> {
    let found = disk::discover(&disk::SystemPaths::default())?;
    for (name, why) in &found.skipped {
        tracing::info!(device = %name, reason = %why, "skipped");
    }
    if found.disks.is_empty() {
        let skipped: Vec<String> = found
            .skipped
            .iter()
            .map(|(n, why)| format!("{n} ({why})"))
            .collect();
        anyhow::bail!(
            "no local disks found (skipped: {}); name disks or image files on the command line",
            if skipped.is_empty() {
                "none".to_string()
            } else {
                skipped.join(", ")
            }
        );
    }
    Ok(found.disks.into_iter().map(|d| d.path).collect())
}

/// The appliance (booted with `xenlift.*` options) leaves sources read-only
/// until power-off; a normal program puts the flag back.
pub fn read_only_policy() -> ReadOnlyPolicy {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    if cmdline
        .split_whitespace()
        .any(|o| o.starts_with("xenlift."))
    {
        ReadOnlyPolicy::LeaveSet
    } else {
        ReadOnlyPolicy::RestoreOnDrop
    }
}

// ---- the JSON document (README: "inspect --json") ----

#[derive(Serialize)]
struct Document<'a> {
    disks: Vec<DiskDoc<'a>>,
}

#[derive(Serialize)]
struct DiskDoc<'a> {
    path: &'a str,
    kind: DiskKind,
    size: u64,
    logical_sector_size: u32,
    physical_sector_size: u32,
    model: Option<&'a str>,
    serial: Option<&'a str>,
    table: TableDoc<'a>,
    partitions: Vec<PartitionDoc<'a>>,
    whole_disk_reason: Option<&'a str>,
    copy_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    extents: Option<&'a ExtentMap>,
}

#[derive(Serialize)]
struct TableDoc<'a> {
    kind: TableKind,
    uuid: Option<&'a str>,
    protective_mbr: Option<ProtectiveMbr>,
    warnings: &'a [String],
}

#[derive(Serialize)]
struct PartitionDoc<'a> {
    number: u32,
    start: u64,
    size: u64,
    #[serde(rename = "type")]
    type_id: Option<&'a str>,
    name: Option<&'a str>,
    uuid: Option<&'a str>,
    role: disk::PartitionRole,
    content: Option<ContentDoc<'a>>,
    map: Option<MapDoc<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    volumes: Option<Vec<VolumeDoc<'a>>>,
}

#[derive(Serialize)]
struct ContentDoc<'a> {
    kind: &'static str,
    uuid: Option<&'a str>,
    label: Option<&'a str>,
    version: Option<&'a str>,
    note: Option<&'a str>,
}

#[derive(Serialize)]
struct MapDoc<'a> {
    method: MapMethod,
    reason: Option<&'a str>,
    copy_bytes: u64,
}

#[derive(Serialize)]
struct VolumeDoc<'a> {
    vg: &'a str,
    name: &'a str,
    size: u64,
    content: ContentDoc<'a>,
    map: MapDoc<'a>,
}

impl<'a> DiskDoc<'a> {
    fn new(l: &'a DiskLayout, with_extents: bool) -> Self {
        DiskDoc {
            path: &l.disk.path,
            kind: l.disk.kind,
            size: l.disk.size,
            logical_sector_size: l.disk.logical_sector_size,
            physical_sector_size: l.disk.physical_sector_size,
            model: l.disk.model.as_deref(),
            serial: l.disk.serial.as_deref(),
            table: TableDoc {
                kind: l.table.kind,
                uuid: l.table.uuid.as_deref(),
                protective_mbr: l.table.protective_mbr,
                warnings: &l.table.warnings,
            },
            partitions: l.partitions.iter().map(PartitionDoc::new).collect(),
            whole_disk_reason: l.whole_disk_reason.as_deref(),
            copy_bytes: l.copy_bytes(),
            extents: with_extents.then_some(&l.map),
        }
    }
}

impl<'a> PartitionDoc<'a> {
    fn new(p: &'a PartitionLayout) -> Self {
        let part = &p.partition;
        PartitionDoc {
            number: part.number,
            start: part.start,
            size: part.size,
            type_id: part.type_id.as_deref(),
            name: part.name.as_deref(),
            uuid: part.uuid.as_deref(),
            role: part.role,
            content: p.probe.as_ref().map(ContentDoc::from_probe),
            map: p.map.as_ref().map(MapDoc::new),
            volumes: p
                .volumes
                .as_ref()
                .map(|v| v.iter().map(VolumeDoc::new).collect()),
        }
    }
}

impl<'a> ContentDoc<'a> {
    fn from_probe(p: &'a Probe) -> Self {
        ContentDoc {
            version: p.version.as_deref(),
            note: p.note.as_deref(),
            ..ContentDoc::new(&p.content)
        }
    }

    fn new(c: &'a Content) -> Self {
        ContentDoc {
            kind: c.kind.name(),
            uuid: c.uuid.as_deref(),
            label: c.label.as_deref(),
            version: None,
            note: None,
        }
    }
}

impl<'a> MapDoc<'a> {
    fn new(m: &'a VolumeMap) -> Self {
        MapDoc {
            method: m.method,
            reason: m.reason.as_deref(),
            copy_bytes: m.copy_bytes(),
        }
    }
}

impl<'a> VolumeDoc<'a> {
    fn new(v: &'a LogicalVolume) -> Self {
        VolumeDoc {
            vg: &v.vg,
            name: &v.name,
            size: v.size,
            content: ContentDoc::new(&v.content),
            map: MapDoc::new(&v.map),
        }
    }
}

// ---- the table for people ----

fn write_table(out: &mut impl Write, l: &DiskLayout, with_extents: bool) -> std::io::Result<()> {
    let d = &l.disk;
    let identity: Vec<&str> = [d.model.as_deref(), d.serial.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    writeln!(out, "{}  {}  {}", d.path, human(d.size), identity.join(" "))?;
    let table = match (l.table.kind, l.table.protective_mbr) {
        (TableKind::Gpt, Some(ProtectiveMbr::Hybrid)) => "GPT (hybrid MBR)",
        (TableKind::Gpt, _) => "GPT",
        (TableKind::Mbr, _) => "MBR",
        (TableKind::None, _) => "no partition table",
    };
    writeln!(
        out,
        "  {table} {}  sectors {}/{} bytes",
        l.table.uuid.as_deref().unwrap_or(""),
        d.logical_sector_size,
        d.physical_sector_size
    )?;
    for w in &l.table.warnings {
        writeln!(out, "  warning: {w}")?;
    }
    writeln!(
        out,
        "  {:>3}  {:>10}  {:>10}  {:<20}  {:<12}  {:<18}  {:<14}  {:>10}",
        "#", "START", "SIZE", "TYPE", "NAME", "CONTENT", "MAP", "COPY"
    )?;
    for p in &l.partitions {
        write_partition(out, p)?;
    }
    if let Some(reason) = &l.whole_disk_reason {
        writeln!(out, "  whole disk copied: {reason}")?;
    }
    let percent = if d.size == 0 {
        0.0
    } else {
        l.copy_bytes() as f64 * 100.0 / d.size as f64
    };
    writeln!(
        out,
        "  copy {} of {} ({percent:.1}%)",
        human(l.copy_bytes()),
        human(d.size)
    )?;
    if with_extents {
        for e in &l.map {
            writeln!(out, "    extent {:>14} {:>14}", e.offset, e.len)?;
        }
    }
    writeln!(out)
}

fn write_partition(out: &mut impl Write, p: &PartitionLayout) -> std::io::Result<()> {
    let part = &p.partition;
    let type_text = part
        .type_id
        .as_deref()
        .map(|t| disk::table::type_name(t).map_or_else(|| t.to_string(), str::to_string))
        .unwrap_or_else(|| "-".into());
    let content = match &p.probe {
        Some(probe) => {
            let c = &probe.content;
            let mut text = c.kind.name().to_string();
            // Versions that tell formats apart (FAT12/16/32, md metadata).
            let telling = matches!(c.kind, ContentKind::Vfat | ContentKind::LinuxRaid);
            if let Some(v) = probe.version.as_ref().filter(|_| telling) {
                text = format!("{text} {v}");
            }
            if let Some(label) = &c.label {
                text = format!("{text} \"{label}\"");
            }
            text
        }
        None => "(container)".into(),
    };
    let (method, copy) = match &p.map {
        Some(m) => (method_name(m.method), human(m.copy_bytes())),
        None => ("-", "-".into()),
    };
    writeln!(
        out,
        "  {:>3}  {:>10}  {:>10}  {:<20}  {:<12}  {:<18}  {:<14}  {:>10}",
        part.number,
        human(part.start),
        human(part.size),
        clip(&type_text, 20),
        clip(part.name.as_deref().unwrap_or("-"), 12),
        clip(&content, 18),
        method,
        copy
    )?;
    if let Some(reason) = p.map.as_ref().and_then(|m| m.reason.as_ref()) {
        writeln!(out, "       copied whole: {reason}")?;
    }
    for v in p.volumes.iter().flatten() {
        writeln!(
            out,
            "       LV {}/{}  {}  {}  {}  copy {}",
            v.vg,
            v.name,
            human(v.size),
            v.content.kind,
            method_name(v.map.method),
            human(v.map.copy_bytes())
        )?;
    }
    Ok(())
}

fn method_name(m: MapMethod) -> &'static str {
    match m {
        MapMethod::ExtBitmap => "ext-bitmap",
        MapMethod::XfsFreespace => "xfs-freespace",
        MapMethod::NtfsBitmap => "ntfs-bitmap",
        MapMethod::Fat => "fat",
        MapMethod::ExfatBitmap => "exfat-bitmap",
        MapMethod::SwapHeader => "swap-header",
        MapMethod::Lvm => "lvm",
        MapMethod::Whole => "whole",
    }
}

fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1 << 20), "1.0 MiB");
        assert_eq!(human(3 << 29), "1.5 GiB");
    }

    #[test]
    fn method_names_match_serde() {
        for m in [
            MapMethod::ExtBitmap,
            MapMethod::SwapHeader,
            MapMethod::Whole,
            MapMethod::ExfatBitmap,
        ] {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", method_name(m)));
        }
    }
}
