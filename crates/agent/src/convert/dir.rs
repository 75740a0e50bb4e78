//! `--to dir:PATH`: each disk's stream as `diskN.vhd` (or `.chunked`) and a
//! `manifest.json` beside them.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use disk::SourceDisk;
use extents::ReadAt;
use wire::EncodedStream;

use super::dir_fixup;
use super::manifest::{DiskEntry, Manifest};
use super::source::plan;
use super::ConvertArgs;
use crate::units::human;

pub fn convert(dir: &Path, args: &ConvertArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.disks.is_empty(),
        "name the disks to convert (finding local disks is not implemented yet)"
    );
    let files: Vec<PathBuf> = (0..args.disks.len())
        .map(|i| dir.join(format!("disk{i}.{}", args.format().extension())))
        .collect();
    let manifest_path = dir.join("manifest.json");
    if !args.force {
        for f in files.iter().chain([&manifest_path]) {
            anyhow::ensure!(
                !f.exists(),
                "{} already exists: choose another directory, or add --force to overwrite it",
                f.display()
            );
        }
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    let disks = args
        .disks
        .iter()
        .map(|p| SourceDisk::open(p).with_context(|| format!("opening {}", p.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let layouts = disk::inspect(&disks).context("inspecting the disks")?;

    let mut entries = Vec::new();
    let mut readers: Vec<Arc<dyn ReadAt>> = Vec::new();
    for ((source, layout), file) in disks.into_iter().zip(&layouts).zip(&files) {
        let name = source.path().display().to_string();
        let _span = tracing::info_span!("disk", disk = %name).entered();
        let planned = plan(source, layout, args.format(), !args.no_zero_scan)?;
        readers.push(planned.disk.clone());
        let started = Instant::now();
        let stream = EncodedStream::start(planned.disk.clone(), planned.plan, args.format())
            .with_context(|| format!("encoding {name}"))?;
        let out = create(file, args.force)?;
        let written = stream
            .write_to_file(&out)
            .with_context(|| format!("writing {name} to {}", file.display()));
        let report = match written {
            Ok(report) => report,
            Err(e) => {
                // A partial stream is worse than none: it looks like a result.
                let _ = fs::remove_file(file);
                return Err(e);
            }
        };
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{name} -> {}: {} sent in {} blocks ({} zero blocks skipped), {:.1} s, {:.0} MiB/s",
            file.display(),
            human(report.stream_bytes),
            report.blocks_sent,
            report.zero_blocks_skipped,
            secs,
            report.data_bytes as f64 / (1 << 20) as f64 / secs.max(1e-6),
        );
        entries.push(DiskEntry {
            source: name,
            file: file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            zero_scan: planned.zero_scan.map(|(scan, _)| scan),
            stream: report,
        });
    }

    let manifest = Manifest::new(entries);
    let mut out = create(&manifest_path, args.force)?;
    serde_json::to_writer_pretty(&mut out, &manifest)
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.sync_all())
        .with_context(|| format!("writing {}", manifest_path.display()))?;
    drop(out);
    // The copy is faithful first; the fix-up patches it afterwards.
    if args.no_fixup {
        dir_fixup::mark_skipped(dir)
    } else {
        dir_fixup::fixup_dir(dir, &readers, &layouts, &guest::Options::default())
    }
}

/// Creates `path`, refusing to replace a file unless `force`.
fn create(path: &Path, force: bool) -> anyhow::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    opts.open(path).with_context(|| {
        if path.exists() && !force {
            format!(
                "{} already exists: add --force to overwrite it",
                path.display()
            )
        } else {
            format!("creating {}", path.display())
        }
    })
}
