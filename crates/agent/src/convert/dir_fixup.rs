//! The guest fix-up delivered onto a `dir:` target: the written images get
//! the changed ranges (VHD blocks patched or appended, chunked frames
//! appended), and `manifest.json` the new block hashes and the report
//! under "fixup".

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use disk::DiskLayout;
use extents::ReadAt;
use serde_json::{json, Map, Value};
use wire::Format;

use super::fixup::{fixup_on_views, print_summary, FixedUp};

/// Runs the fix-up on views of `sources` and patches the images that
/// `dir/manifest.json` lists (one per source, in order). On failure the
/// images are left as they were and the manifest says what was not done.
pub fn fixup_dir(
    dir: &Path,
    sources: &[Arc<dyn ReadAt>],
    layouts: &[DiskLayout],
    options: &guest::Options,
) -> anyhow::Result<()> {
    let manifest_path = dir.join("manifest.json");
    let mut manifest = read_manifest(&manifest_path)?;
    let count = manifest["disks"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(
        count == sources.len(),
        "{} lists {count} disks but {} were given: name the same source disks, in the same order, as the conversion did",
        manifest_path.display(),
        sources.len()
    );
    match fixup_on_views(sources, layouts, options) {
        Ok(Ok(fixed)) => {
            let done = deliver(dir, &mut manifest, &fixed);
            if let Err(e) = &done {
                manifest["fixup"] = json!({
                    "status": "failed",
                    "error": format!("{e:#}"),
                    "not_done": "patching the images failed part way: convert again",
                });
                write_manifest(&manifest_path, &manifest)?;
            }
            done?;
            let mut report = serde_json::to_value(&fixed.report)?;
            if let Value::Object(m) = &mut report {
                m.insert("status".into(), json!("done"));
            }
            manifest["fixup"] = report;
            write_manifest(&manifest_path, &manifest)?;
            print_summary(&fixed.report);
            Ok(())
        }
        Ok(Err(not_run)) => {
            manifest["fixup"] = json!({"status": "not_run", "reason": not_run.to_string()});
            write_manifest(&manifest_path, &manifest)?;
            println!("guest fix-up not run: {not_run}");
            Ok(())
        }
        Err(e) => {
            manifest["fixup"] = json!({
                "status": "failed",
                "error": format!("{e:#}"),
                "not_done": "every fix-up: the images are the faithful copy, unpatched",
            });
            write_manifest(&manifest_path, &manifest)?;
            Err(e.context(format!(
                "the images in {} are the faithful, unpatched copy; fix the cause and run \
                 `xenlift fixup --to dir:{} DISK...`, or convert with --no-fixup",
                dir.display(),
                dir.display()
            )))
        }
    }
}

/// Records in the manifest that the fix-up was skipped on request.
pub fn mark_skipped(dir: &Path) -> anyhow::Result<()> {
    let path = dir.join("manifest.json");
    let mut manifest = read_manifest(&path)?;
    manifest["fixup"] = json!({"status": "skipped", "reason": "--no-fixup"});
    write_manifest(&path, &manifest)
}

fn deliver(dir: &Path, manifest: &mut Value, fixed: &FixedUp) -> anyhow::Result<()> {
    let disks = manifest["disks"]
        .as_array_mut()
        .context("manifest.json has no disks list")?;
    for (entry, disk) in disks.iter_mut().zip(&fixed.disks) {
        let file = entry["file"]
            .as_str()
            .context("a disk in manifest.json has no file")?
            .to_string();
        let format: Format = entry["format"]
            .as_str()
            .context("a disk in manifest.json has no format")?
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?;
        let path = dir.join(&file);
        let image = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let patch = wire::patch_image(&image, format, &disk.changed, &*disk.view)
            .with_context(|| format!("patching {}", path.display()))?;
        update_entry(entry, &patch, disk, format)?;
    }
    Ok(())
}

/// New block hashes (over the patched image), disk hash, lengths, and what
/// the patch did.
fn update_entry(
    entry: &mut Value,
    patch: &wire::PatchReport,
    disk: &super::fixup::FixedDisk,
    format: Format,
) -> anyhow::Result<()> {
    let mut hashes: std::collections::BTreeMap<u64, String> = std::collections::BTreeMap::new();
    if let Some(list) = entry["block_hashes"].as_array() {
        for item in list {
            if let (Some(i), Some(h)) = (item[0].as_u64(), item[1].as_str()) {
                hashes.insert(i, h.to_string());
            }
        }
    }
    for (i, h) in &patch.block_hashes {
        hashes.insert(*i, hex::encode(h));
    }
    let size = entry["size"]
        .as_u64()
        .context("a disk in manifest.json has no size")?;
    if entry["disk_sha256"].is_string() {
        let decoded: Vec<(u64, [u8; 32])> = hashes
            .iter()
            .map(|(i, h)| {
                let mut b = [0u8; 32];
                hex::decode_to_slice(h, &mut b).map(|()| (*i, b))
            })
            .collect::<Result<_, _>>()
            .context("a block hash in manifest.json is not hex")?;
        let disk_hash = wire::disk_hash_from_blocks(size, decoded.iter().map(|(i, h)| (*i, h)));
        entry["disk_sha256"] = json!(hex::encode(disk_hash));
    }
    entry["block_hashes"] = Value::Array(hashes.into_iter().map(|(i, h)| json!([i, h])).collect());
    entry["stream_bytes"] = json!(patch.file_len);
    if format == Format::Vhd {
        let sent = entry["blocks_sent"].as_u64().unwrap_or(0);
        entry["blocks_sent"] = json!(sent + patch.blocks_added);
    }
    let mut fix = Map::new();
    fix.insert("changed_bytes".into(), json!(disk.changed.total_bytes()));
    fix.insert("changed_ranges".into(), json!(disk.changed.len()));
    fix.insert("data_bytes_written".into(), json!(patch.data_bytes));
    fix.insert("blocks_patched".into(), json!(patch.blocks_patched));
    fix.insert("blocks_added".into(), json!(patch.blocks_added));
    entry["fixup"] = Value::Object(fix);
    Ok(())
}

pub fn read_manifest(path: &Path) -> anyhow::Result<Value> {
    let text = fs::read_to_string(path).with_context(|| {
        format!(
            "reading {} (is this a directory `xenlift convert --to dir:` wrote?)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// Replaces the manifest atomically: a crash leaves the old or the new one.
fn write_manifest(path: &Path, manifest: &Value) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut out = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    serde_json::to_writer_pretty(&mut out, manifest)?;
    out.write_all(b"\n")?;
    out.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}
