//! Used-block map for NTFS, from the `$Bitmap` file (read with the `ntfs`
//! crate): one bit per cluster, cluster size from the boot sector.
//!
//! Copied: every cluster `$Bitmap` marks in use (the boot file, `$MFT`,
//! `$MFTMirr`, `$LogFile` and bad clusters included), and the last sector of
//! the volume, where the backup boot sector lives. `$MFT`, `$MFTMirr` and
//! `$Bitmap` itself are checked to be inside the map: if they are not, the
//! bitmap is not trustworthy and the volume is copied whole.
//!
//! A volume marked dirty or hibernated by Windows is still mapped (`$Bitmap`
//! is journaled, and hiberfil.sys is a file like any other), with a note.
//! Anything the crate cannot parse is a doubt: the volume is copied whole.

use std::io::{Read, Seek, SeekFrom};

use extents::{Extent, ExtentBuilder, ExtentMap, ReadAt};
use ntfs::indexes::NtfsFileNameIndex;
use ntfs::structured_values::NtfsVolumeFlags;
use ntfs::{KnownNtfsFileRecordNumber, Ntfs, NtfsFile, NtfsReadSeek};

use super::bitmap::for_each_run;
use super::MapError;

mod guard;
mod io;

use guard::checked_file;
use io::Bounded;

/// `$Bitmap` bytes read at a time.
const CHUNK: usize = 1 << 20;

/// A map with the remarks that do not stop mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NtfsMap {
    pub extents: ExtentMap,
    /// Dirty or hibernated volume: mapped anyway, but worth telling.
    pub note: Option<String>,
}

/// Extents of `vol` that hold data or metadata, relative to its start.
pub fn map(vol: &dyn ReadAt) -> Result<ExtentMap, MapError> {
    map_noted(vol).map(|m| m.extents)
}

/// Like [`map`], with a note for dirty and hibernated volumes.
pub fn map_noted(vol: &dyn ReadAt) -> Result<NtfsMap, MapError> {
    // A volume shorter than its boot sector fails here, as an I/O error,
    // before the crate could stumble on it.
    let boot = vol.read_vec(0, 512)?;
    if boot.get(3..11) != Some(b"NTFS    ".as_slice()) {
        return Err(MapError::doubt("NTFS boot sector: no \"NTFS\" OEM ID"));
    }
    let mut fs = Bounded::new(vol);
    let mapped = map_inner(vol, &mut fs);
    if fs.overran() {
        return Err(MapError::doubt(
            "NTFS structures point past the end of the volume",
        ));
    }
    mapped
}

fn map_inner<T: Read + Seek>(vol: &dyn ReadAt, fs: &mut T) -> Result<NtfsMap, MapError> {
    let ntfs = Ntfs::new(fs).map_err(|e| doubt("boot sector", e))?;
    let sector = u64::from(ntfs.sector_size());
    let cluster = u64::from(ntfs.cluster_size());
    if !sector.is_power_of_two() || !cluster.is_power_of_two() || cluster < sector {
        return Err(MapError::Doubt(format!(
            "NTFS boot sector: {sector}-byte sectors, {cluster}-byte clusters"
        )));
    }
    if ntfs.size() > vol.size() {
        return Err(MapError::Doubt(format!(
            "NTFS: the filesystem is {} bytes but its volume only {} (truncated?)",
            ntfs.size(),
            vol.size()
        )));
    }
    let clusters = ntfs.size() / cluster;

    let mut out = ExtentBuilder::new();
    read_bitmap(&ntfs, fs, clusters, cluster, &mut out)?;
    // The boot sector is in cluster 0, which the bitmap marks; the backup
    // sits in the last sector, outside every cluster.
    out.push(0, sector);
    out.push(ntfs.size(), sector.min(vol.size() - ntfs.size()));
    out.push(vol.size().saturating_sub(sector), sector.min(vol.size()));
    let extents = out.build();

    for (record, name) in [
        (KnownNtfsFileRecordNumber::MFT, "$MFT"),
        (KnownNtfsFileRecordNumber::MFTMirr, "$MFTMirr"),
        (KnownNtfsFileRecordNumber::Bitmap, "$Bitmap"),
    ] {
        check_covered(&ntfs, fs, record, name, cluster, &extents)?;
    }
    let note = note(fs, ntfs)?;
    Ok(NtfsMap { extents, note })
}

fn doubt(what: &str, e: ntfs::NtfsError) -> MapError {
    MapError::Doubt(format!("NTFS {what}: {e}"))
}

fn system_file<'n, T: Read + Seek>(
    ntfs: &'n Ntfs,
    fs: &mut T,
    record: KnownNtfsFileRecordNumber,
    name: &str,
) -> Result<NtfsFile<'n>, MapError> {
    checked_file(ntfs, fs, record as u64, name)
}

fn read_bitmap<T: Read + Seek>(
    ntfs: &Ntfs,
    fs: &mut T,
    clusters: u64,
    cluster: u64,
    out: &mut ExtentBuilder,
) -> Result<(), MapError> {
    let file = system_file(ntfs, fs, KnownNtfsFileRecordNumber::Bitmap, "$Bitmap")?;
    let item = file
        .data(fs, "")
        .ok_or_else(|| MapError::doubt("NTFS $Bitmap has no data"))?
        .map_err(|e| doubt("$Bitmap", e))?;
    let attribute = item.to_attribute().map_err(|e| doubt("$Bitmap", e))?;
    let mut value = attribute.value(fs).map_err(|e| doubt("$Bitmap", e))?;
    if value.len().saturating_mul(8) < clusters {
        return Err(MapError::Doubt(format!(
            "NTFS $Bitmap has {} bits for {clusters} clusters",
            value.len().saturating_mul(8)
        )));
    }
    let mut buf = vec![0u8; CHUNK];
    let mut bit = 0u64;
    while bit < clusters {
        let n = value.read(fs, &mut buf).map_err(|e| doubt("$Bitmap", e))?;
        if n == 0 {
            return Err(MapError::doubt("NTFS $Bitmap ended early"));
        }
        let nbits = (n as u64 * 8).min(clusters - bit);
        for_each_run(buf.get(..n).unwrap_or_default(), bit, nbits, |c, len| {
            out.push(c * cluster, len * cluster);
        });
        bit += nbits;
    }
    Ok(())
}

/// Every cluster of a system file's data must be in the map.
fn check_covered<T: Read + Seek>(
    ntfs: &Ntfs,
    fs: &mut T,
    record: KnownNtfsFileRecordNumber,
    name: &str,
    cluster: u64,
    map: &ExtentMap,
) -> Result<(), MapError> {
    let file = system_file(ntfs, fs, record, name)?;
    let item = file
        .data(fs, "")
        .ok_or_else(|| MapError::Doubt(format!("NTFS {name} has no data")))?
        .map_err(|e| doubt(name, e))?;
    let attribute = item.to_attribute().map_err(|e| doubt(name, e))?;
    let mut value = attribute.value(fs).map_err(|e| doubt(name, e))?;
    // Walk the value a cluster at a time; each step is relative, so the
    // crate advances through its data runs without rescanning them.
    let len = value.len();
    let mut at = 0u64;
    while at < len {
        if let Some(pos) = value.data_position().value() {
            let pos = pos.get();
            if map.bytes_in(Extent::new(pos, cluster.min(len - at))) < cluster.min(len - at) {
                return Err(MapError::Doubt(format!(
                    "NTFS {name} has data at byte {pos} that $Bitmap marks free"
                )));
            }
        }
        let step = cluster.min(len - at);
        value
            .seek(fs, SeekFrom::Current(step as i64))
            .map_err(|e| doubt(name, e))?;
        at += step;
    }
    Ok(())
}

/// Dirty and hibernated volumes are mapped, with a remark.
fn note<T: Read + Seek>(fs: &mut T, mut ntfs: Ntfs) -> Result<Option<String>, MapError> {
    let mut notes = Vec::new();
    let info = ntfs.volume_info(fs).map_err(|e| doubt("$Volume", e))?;
    if info.flags().contains(NtfsVolumeFlags::IS_DIRTY) {
        notes.push("NTFS volume is marked dirty (Windows did not finish with it cleanly)");
    }
    match hibernated(fs, &mut ntfs) {
        Ok(true) => notes.push(
            "Windows is hibernated or fast-started on this volume (hiberfil.sys): \
             the copy will not resume it",
        ),
        Ok(false) => {}
        Err(e) => {
            tracing::debug!(error = %e, "NTFS: could not look for hiberfil.sys");
            notes.push("NTFS: could not look for hiberfil.sys in the root directory");
        }
    }
    Ok((!notes.is_empty()).then(|| notes.join("; ")))
}

/// Whether `\hiberfil.sys` starts with the "hibr" signature of a saved
/// system (Windows writes "wake" or zeros once it resumed).
fn hibernated<T: Read + Seek>(fs: &mut T, ntfs: &mut Ntfs) -> Result<bool, String> {
    let e = |e: ntfs::NtfsError| e.to_string();
    checked_file(
        ntfs,
        fs,
        KnownNtfsFileRecordNumber::UpCase as u64,
        "$UpCase",
    )
    .map_err(|e| e.to_string())?;
    ntfs.read_upcase_table(fs).map_err(e)?;
    let ntfs = &*ntfs;
    let root = checked_file(
        ntfs,
        fs,
        KnownNtfsFileRecordNumber::RootDirectory as u64,
        "root directory",
    )
    .map_err(|e| e.to_string())?;
    let index = root.directory_index(fs).map_err(e)?;
    let mut finder = index.finder();
    let Some(entry) = NtfsFileNameIndex::find(&mut finder, ntfs, fs, "hiberfil.sys") else {
        return Ok(false);
    };
    let record = entry.map_err(e)?.file_reference().file_record_number();
    let file = checked_file(ntfs, fs, record, "hiberfil.sys").map_err(|e| e.to_string())?;
    let Some(item) = file.data(fs, "") else {
        return Ok(false);
    };
    let item = item.map_err(e)?;
    let attribute = item.to_attribute().map_err(e)?;
    let mut value = attribute.value(fs).map_err(e)?;
    let mut magic = [0u8; 4];
    let n = value.read(fs, &mut magic).map_err(e)?;
    Ok(n == 4 && magic.eq_ignore_ascii_case(b"hibr"))
}
