//! The guest fix-up delivered onto the VDIs: after the faithful copy, the
//! fix-up runs on copy-on-write views of the sources and what it changed
//! goes as a delta onto the same VDIs; the manifest hashes of the blocks it
//! touched are replaced by the patched blocks' hashes.

use std::sync::Arc;

use anyhow::Context;
use disk::DiskLayout;
use extents::{Extent, ExtentMap, ReadAt};
use serde_json::{json, Value};
use wire::{Format, BLOCK_SIZE};
use xapi::{Session, VdiRef};

use super::plan::VmPlan;
use super::provision::Provisioned;
use super::report::DiskReport;
use super::upload::{self, Sent};
use super::Source;
use crate::convert::fixup::{fixup_on_views, print_summary};

/// A VDI holding the faithful copy of one source disk.
pub struct CopiedDisk<'a> {
    pub vdi: &'a VdiRef,
    pub vdi_uuid: &'a str,
    pub userdevice: &'a str,
    pub size: u64,
    /// The bytes the copy sent (everything else of the VDI reads zeros).
    pub copied: &'a ExtentMap,
    pub format: Format,
}

/// What the fix-up did and what it sent.
pub struct Delivered {
    /// The report's "fixup" entry.
    pub entry: Value,
    /// Per disk, the delta sent (None where the fix-up changed nothing).
    pub deltas: Vec<Option<Sent>>,
}

/// Runs the fix-up on views of `sources` and sends its changes onto the
/// VDIs in `disks` (same order). An error leaves the VDIs holding the
/// faithful copy, unpatched (no delta was sent), or partly patched when a
/// delta upload failed.
pub fn fix_and_send(
    session: &Session,
    sources: &[Arc<dyn ReadAt>],
    layouts: &[DiskLayout],
    options: &guest::Options,
    disks: &[CopiedDisk<'_>],
) -> anyhow::Result<Delivered> {
    let fixed = match fixup_on_views(sources, layouts, options).context(
        "the guest fix-up failed, nothing of it was sent: the VDIs hold the faithful copy; \
         fix the cause, or convert with --no-fixup to take the copy as it is",
    )? {
        Ok(fixed) => fixed,
        Err(not_run) => {
            println!("guest fix-up not run: {not_run}");
            return Ok(Delivered {
                entry: json!({"status": "not_run", "reason": not_run.to_string()}),
                deltas: Vec::new(),
            });
        }
    };

    let mut deltas = Vec::new();
    let mut delta_bytes = 0;
    for (i, changed) in fixed.disks.iter().enumerate() {
        if changed.changed.is_empty() {
            deltas.push(None);
            continue;
        }
        let disk = disks
            .get(i)
            .with_context(|| format!("the fix-up changed disk {i}, which has no VDI"))?;
        let ranges = delta_ranges(&changed.changed, disk.copied, disk.size);
        let sent = upload::send_delta(
            session,
            disk.vdi,
            changed.view.clone(),
            &ranges,
            disk.size,
            disk.format,
        )
        .with_context(|| {
            format!(
                "sending the fix-up's changes to disk {} (VDI {}); the VDI may be partly \
                 patched: run the fix-up again",
                disk.userdevice, disk.vdi_uuid
            )
        })?;
        delta_bytes += sent.wire_bytes;
        deltas.push(Some(sent));
    }

    print_summary(&fixed.report);
    let mut entry = serde_json::to_value(&fixed.report).context("encoding the fix-up report")?;
    if let Value::Object(m) = &mut entry {
        m.insert("status".into(), json!("done"));
        m.insert("delta_wire_bytes".into(), json!(delta_bytes));
    }
    Ok(Delivered { entry, deltas })
}

/// The fix-up inside `convert`: the copy's block hashes of every patched
/// block are replaced, so verification checks the patched disk.
pub fn deliver(
    session: &Session,
    plan: &VmPlan,
    sources: &[Source],
    made: &Provisioned,
    reports: &mut [DiskReport],
) -> anyhow::Result<Value> {
    let readers: Vec<Arc<dyn ReadAt>> = sources
        .iter()
        .map(|s| s.disk.clone() as Arc<dyn ReadAt>)
        .collect();
    let layouts: Vec<_> = sources.iter().map(|s| s.layout.clone()).collect();
    let options = guest::Options {
        nics: plan
            .nics
            .iter()
            .map(|n| guest::SourceNic {
                mac: n.mac.clone(),
                name: n.interface.clone(),
            })
            .collect(),
        ..guest::Options::default()
    };
    let mut disks = Vec::new();
    for ((source, (vdi, uuid)), disk_plan) in sources.iter().zip(&made.vdis).zip(&plan.disks) {
        let format = reports
            .iter()
            .find(|r| &r.vdi_uuid == uuid)
            .and_then(|r| r.sent.format)
            .unwrap_or(disk_plan.format);
        disks.push(CopiedDisk {
            vdi,
            vdi_uuid: uuid,
            userdevice: &disk_plan.userdevice,
            size: disk_plan.size,
            copied: source.plan.ranges(),
            format,
        });
    }
    let delivered = fix_and_send(session, &readers, &layouts, &options, &disks)?;
    for (disk, delta) in disks.iter().zip(&delivered.deltas) {
        let Some(delta) = delta else { continue };
        if let Some(report) = reports.iter_mut().find(|r| r.vdi_uuid == disk.vdi_uuid) {
            report.apply_patch(&delta.hashes);
        }
    }
    Ok(delivered.entry)
}

/// What a delta must carry so that the hash of each block it sends equals
/// the block the VDI then holds: inside every block the fix-up touched, the
/// changed bytes and the bytes the full copy sent (around them the VDI
/// holds zeros, as the delta block does).
fn delta_ranges(changed: &ExtentMap, copied: &ExtentMap, disk_size: u64) -> ExtentMap {
    let touched = changed
        .aligned_out(BLOCK_SIZE)
        .clip(Extent::new(0, disk_size.next_multiple_of(512)));
    let outside = ExtentMap::single(0, touched.end().max(copied.end())).subtract(&touched);
    changed.union(&copied.subtract(&outside))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_takes_the_copied_bytes_of_touched_blocks_only() {
        let copied = ExtentMap::from_unsorted(vec![
            Extent::new(0, 4096),
            Extent::new(BLOCK_SIZE + 8192, 4096),
            Extent::new(3 * BLOCK_SIZE, 4096),
        ]);
        let changed = ExtentMap::single(BLOCK_SIZE + 512, 512);
        let ranges = delta_ranges(&changed, &copied, 4 * BLOCK_SIZE);
        assert_eq!(
            ranges.extents(),
            &[
                Extent::new(BLOCK_SIZE + 512, 512),
                Extent::new(BLOCK_SIZE + 8192, 4096)
            ]
        );
    }
}
