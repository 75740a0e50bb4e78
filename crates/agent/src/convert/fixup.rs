//! The guest fix-up on copy-on-write views of the source disks: the
//! source is never written; what the fix-up changed comes back as byte
//! ranges and a reader of the patched view, for any target to deliver
//! (a `dir:` image patch, or a VHD delta onto the VDIs).

use std::sync::Arc;

use anyhow::Context;
use cow::{CowView, Overlay, Store};
use disk::{ContentKind, DiskLayout};
use extents::{ExtentMap, ReadAt};

/// One disk after the fix-up.
pub struct FixedDisk {
    /// Bytes of the disk that differ from the source (exact, not aligned).
    pub changed: ExtentMap,
    /// The source as the fix-up left it (reads the changes, else the source).
    pub view: Arc<dyn ReadAt>,
}

/// What the fix-up did.
pub struct FixedUp {
    /// In the order of the sources given.
    pub disks: Vec<FixedDisk>,
    pub report: guest::FixupReport,
}

/// Why the fix-up was not run at all (not an error: nothing to fix).
#[derive(Debug, thiserror::Error)]
pub enum NotRun {
    #[error("no Linux filesystem on the disks (only {found})")]
    NoLinuxFilesystem { found: String },
    #[error("{0}")]
    NoRoot(String),
}

/// Runs the guest fix-up on copy-on-write views of `sources` (read-only
/// readers, in the source's disk order, with the layouts `disk::inspect`
/// found). `Ok(Err(NotRun))` when there is no Linux guest to fix; `Err`
/// when the fix-up failed (nothing was delivered anywhere yet).
pub fn fixup_on_views(
    sources: &[Arc<dyn ReadAt>],
    layouts: &[DiskLayout],
    options: &guest::Options,
) -> anyhow::Result<Result<FixedUp, NotRun>> {
    anyhow::ensure!(
        sources.len() == layouts.len(),
        "{} disks but {} layouts",
        sources.len(),
        layouts.len()
    );
    if let Err(not) = any_linux(layouts) {
        return Ok(Err(not));
    }
    // Changes go to files under TMPDIR: memory stays flat however much the
    // fix-up writes (an initramfs rebuild alone writes tens of MiB per kernel).
    let scratch = std::env::temp_dir();
    let mut views = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let view =
            CowView::new(source.clone(), Store::ScratchIn(scratch.clone())).with_context(|| {
                format!(
                    "making a copy-on-write view of disk {i} (its changes go to a file in {}; \
                     set TMPDIR to choose another directory)",
                    scratch.display()
                )
            })?;
        views.push(view);
    }
    let disks: Vec<guest::WritableDisk> = views
        .iter()
        .zip(layouts)
        .map(|(v, l)| writable(v, l))
        .collect();
    let report = match guest::fixup(&disks, options) {
        Ok(r) => r,
        Err(guest::Error::NoRoot { looked_at }) => {
            let e = guest::Error::NoRoot { looked_at };
            return Ok(Err(NotRun::NoRoot(e.to_string())));
        }
        Err(e) => return Err(e).context("the guest fix-up failed"),
    };
    let mut out = Vec::new();
    for (i, view) in views.into_iter().enumerate() {
        let changed = view
            .changed()
            .with_context(|| format!("finding what the fix-up changed on disk {i}"))?;
        let overlay: Arc<Overlay> = view.overlay().clone();
        drop(view); // unmounts; the overlay stays readable
        out.push(FixedDisk {
            changed,
            view: overlay,
        });
    }
    Ok(Ok(FixedUp { disks: out, report }))
}

fn any_linux(layouts: &[DiskLayout]) -> Result<(), NotRun> {
    let mut found = Vec::new();
    for p in layouts.iter().flat_map(|l| &l.partitions) {
        let Some(c) = p.content() else { continue };
        match c.kind {
            ContentKind::Ext2
            | ContentKind::Ext3
            | ContentKind::Ext4
            | ContentKind::Xfs
            | ContentKind::Btrfs
            | ContentKind::LvmPv => return Ok(()),
            k => found.push(k.name()),
        }
    }
    found.dedup();
    Err(NotRun::NoLinuxFilesystem {
        found: if found.is_empty() {
            "no filesystems".into()
        } else {
            found.join(", ")
        },
    })
}

fn writable(view: &CowView, layout: &DiskLayout) -> guest::WritableDisk {
    let partitions = layout
        .partitions
        .iter()
        .filter(|p| p.partition.holds_data())
        .map(|p| guest::Partition {
            number: p.partition.number,
            offset: p.partition.start,
            size: p.partition.size,
            part_uuid: p.partition.uuid.as_ref().map(|u| u.to_lowercase()),
            part_label: p.partition.name.clone().filter(|n| !n.is_empty()),
        })
        .collect();
    guest::WritableDisk {
        path: view.path().to_path_buf(),
        partitions,
    }
}

/// One line per guest, then each change and each fix-up not done.
pub fn print_summary(report: &guest::FixupReport) {
    for g in &report.guests {
        println!(
            "guest fix-up ({}): {} changes, {} not done",
            g.info.root,
            g.changes.len(),
            g.skipped.len()
        );
        for c in &g.changes {
            println!("  {} {:?} {}", c.fixup, c.action, c.path);
        }
        for s in &g.skipped {
            println!("  not done: {}: {}", s.fixup, s.reason);
        }
    }
}
