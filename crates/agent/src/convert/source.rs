//! From a source disk to a block plan: the layout's map, minus the image
//! file's holes, minus (optionally) all-zero blocks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use disk::{DiskLayout, SourceDisk};
use wire::{BlockPlan, Format, ZeroScan};

/// A disk ready to stream.
pub struct Planned {
    pub disk: Arc<SourceDisk>,
    pub plan: BlockPlan,
    pub zero_scan: Option<(ZeroScan, Duration)>,
}

pub fn plan(
    disk: SourceDisk,
    layout: &DiskLayout,
    format: Format,
    zero_scan: bool,
) -> anyhow::Result<Planned> {
    let name = disk.path().display().to_string();
    let mut plan = BlockPlan::full(disk.info().size, &layout.map);
    // Refuse what the format cannot carry before reading anything.
    wire::stream_length(&plan, format).with_context(|| format!("encoding {name}"))?;
    if let Some(data) = disk
        .data_extents()
        .with_context(|| format!("finding the holes of {name}"))?
    {
        plan = plan.restricted_to(&data);
    }
    let disk = Arc::new(disk);
    let mut scan = None;
    if zero_scan {
        let started = Instant::now();
        let (without, found) = plan
            .without_zero_blocks(&*disk)
            .with_context(|| format!("scanning {name} for zero blocks"))?;
        tracing::info!(disk = %name, zero_blocks = found.zero_blocks, "zero scan done");
        plan = without;
        scan = Some((found, started.elapsed()));
    }
    Ok(Planned {
        disk,
        plan,
        zero_scan: scan,
    })
}
