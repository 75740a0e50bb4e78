//! The JSON report (`--report FILE`): the plan, what each disk cost, hashes,
//! verification, warnings. It never holds a password or session id.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use super::plan::{DiskPlan, VmPlan};
use super::upload::Sent;
use super::verify::Verified;

pub const REPORT_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Report {
    pub version: u32,
    pub tool: String,
    /// "converted", "failed" or "dry-run".
    pub outcome: String,
    pub error: Option<String>,
    pub host: String,
    pub vm_uuid: Option<String>,
    /// What became of the VM on failure: "left incomplete" or "removed".
    pub cleanup: Option<String>,
    pub plan: Option<VmPlan>,
    pub disks: Vec<DiskReport>,
    pub seconds: f64,
    pub wire_bytes: u64,
    pub bytes_per_second: f64,
    pub warnings: Vec<String>,
    /// The guest fix-up: "skipped", "not_run" with why, or "done" with every
    /// change per file and every fix-up not done.
    pub fixup: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct DiskReport {
    pub source: String,
    pub vdi_uuid: String,
    pub userdevice: String,
    pub size: u64,
    #[serde(flatten)]
    pub sent: Sent,
    pub bytes_per_second: f64,
    pub disk_sha256: Option<String>,
    /// `[[block index, "sha256"], ...]` of every block sent.
    pub block_hashes: Vec<(u64, String)>,
    pub verify: Option<Verified>,
}

impl DiskReport {
    pub fn new(disk: &DiskPlan, vdi_uuid: String, sent: Sent) -> Self {
        DiskReport {
            bytes_per_second: sent.wire_bytes as f64 / sent.seconds.max(1e-6),
            disk_sha256: sent.disk_sha256.map(hex::encode),
            block_hashes: sent
                .hashes
                .iter()
                .map(|(i, h)| (*i, hex::encode(h)))
                .collect(),
            source: disk.source.clone(),
            vdi_uuid,
            userdevice: disk.userdevice.clone(),
            size: disk.size,
            sent,
            verify: None,
        }
    }
}

impl DiskReport {
    /// Takes the hashes of blocks sent again by a delta in place of the old
    /// ones, and the disk hash that follows.
    pub fn apply_patch(&mut self, patched: &[(u64, super::upload::Hash)]) {
        let hashes = &mut self.sent.hashes;
        for (index, hash) in patched {
            match hashes.binary_search_by_key(index, |(i, _)| *i) {
                Ok(at) => hashes[at].1 = *hash,
                Err(at) => hashes.insert(at, (*index, *hash)),
            }
        }
        let disk = wire::disk_hash_from_blocks(self.size, hashes.iter().map(|(i, h)| (*i, h)));
        self.sent.disk_sha256 = Some(disk);
        self.disk_sha256 = Some(hex::encode(disk));
        self.block_hashes = hashes.iter().map(|(i, h)| (*i, hex::encode(h))).collect();
    }
}

impl Report {
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_vec_pretty(self).context("encoding the report")?;
        text.push(b'\n');
        std::fs::write(path, text).with_context(|| format!("writing the report {}", path.display()))
    }
}
