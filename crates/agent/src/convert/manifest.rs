//! `manifest.json` of a dir: target (documented in the README).

use serde::Serialize;
use wire::{StreamReport, ZeroScan};

/// Bumped on any change a reader of the manifest would notice.
pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub version: u32,
    pub tool: String,
    pub disks: Vec<DiskEntry>,
}

#[derive(Debug, Serialize)]
pub struct DiskEntry {
    /// The source disk as named on the command line.
    pub source: String,
    /// The stream file, relative to the manifest.
    pub file: String,
    /// The zero scan's figures, absent when it was turned off.
    pub zero_scan: Option<ZeroScan>,
    #[serde(flatten)]
    pub stream: StreamReport,
}

impl Manifest {
    pub fn new(disks: Vec<DiskEntry>) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            tool: concat!("xenlift ", env!("CARGO_PKG_VERSION")).to_string(),
            disks,
        }
    }
}
