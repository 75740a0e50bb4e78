//! Used-block maps per filesystem: one module per format, each reading the
//! format's own allocation structures (as partclone does).
//!
//! A mapper returns the byte extents of its volume that must be copied,
//! relative to the volume start, or a [`MapError`] that makes the caller copy
//! the whole volume and say why.

use extents::{ExtentMap, ReadAt};
use serde::Serialize;

use crate::content::{Content, ContentKind};

mod bitmap;
pub mod exfat;
pub mod ext;
pub mod fat;
pub(crate) mod le;
pub mod ntfs;
pub mod swap;
pub mod xfs;

/// How a volume's map was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MapMethod {
    ExtBitmap,
    XfsFreespace,
    NtfsBitmap,
    Fat,
    ExfatBitmap,
    SwapHeader,
    Lvm,
    Whole,
}

/// Why a mapper could not produce a map.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// The structures are not fully understood (unknown feature, bad
    /// checksum, inconsistent counts): copy everything.
    #[error("{0}")]
    Doubt(String),
    /// Reading the volume failed.
    #[error("reading metadata: {0}")]
    Io(#[from] std::io::Error),
}

impl MapError {
    pub fn doubt(reason: impl Into<String>) -> Self {
        MapError::Doubt(reason.into())
    }
}

/// The outcome for one volume: what to copy, how it was decided, and why
/// when it is a whole copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeMap {
    pub method: MapMethod,
    /// Relative to the volume start, inside `[0, volume size)`.
    pub extents: ExtentMap,
    /// Why the volume is copied whole; for a mapped volume, a remark worth
    /// reporting (a dirty or hibernated NTFS volume).
    pub reason: Option<String>,
}

impl VolumeMap {
    /// Copy all of a volume of `size` bytes, because of `reason`.
    pub fn whole(size: u64, reason: impl Into<String>) -> Self {
        VolumeMap {
            method: MapMethod::Whole,
            extents: ExtentMap::single(0, size),
            reason: Some(reason.into()),
        }
    }

    pub fn copy_bytes(&self) -> u64 {
        self.extents.total_bytes()
    }
}

/// Maps a volume whose content is already probed. LVM physical volumes are
/// not handled here (they need every PV of their volume group: see
/// [`crate::lvm`]); given one, this copies it whole.
pub fn map_content(content: &Content, vol: &dyn ReadAt) -> VolumeMap {
    let size = vol.size();
    // A remark that does not stop mapping (NTFS: dirty or hibernated).
    let mut note = None;
    let (method, result) = match content.kind {
        ContentKind::Ext2 | ContentKind::Ext3 | ContentKind::Ext4 => {
            (MapMethod::ExtBitmap, guarded(|| ext::map(vol)))
        }
        ContentKind::Xfs => (MapMethod::XfsFreespace, guarded(|| xfs::map(vol))),
        ContentKind::Ntfs => (
            MapMethod::NtfsBitmap,
            guarded(|| ntfs::map_noted(vol)).map(|m| {
                note = m.note;
                m.extents
            }),
        ),
        ContentKind::Vfat => (MapMethod::Fat, guarded(|| fat::map(vol))),
        ContentKind::Exfat => (MapMethod::ExfatBitmap, guarded(|| exfat::map(vol))),
        ContentKind::Swap => (MapMethod::SwapHeader, guarded(|| swap::map(vol))),
        other => return VolumeMap::whole(size, whole_copy_reason(other)),
    };
    match result {
        // A map reaching past the volume is inconsistent: it would hide the
        // bytes the filesystem really uses.
        Ok(extents) if extents.end() > size => VolumeMap::whole(
            size,
            format!(
                "{} map reaches byte {} of a {size}-byte volume",
                content.kind,
                extents.end()
            ),
        ),
        Ok(extents) => VolumeMap {
            method,
            extents,
            reason: note,
        },
        Err(e) => {
            tracing::warn!(kind = %content.kind, error = %e, "copying the whole volume");
            VolumeMap::whole(size, format!("{}: {e}", content.kind))
        }
    }
}

/// Runs a mapper so that a panic inside it (our bug, or a third-party parser
/// such as the `ntfs` crate meeting input it cannot handle) becomes a doubt:
/// the volume is copied whole instead of the agent going down. Release
/// builds keep `panic = "unwind"` for this.
fn guarded<T>(mapper: impl FnOnce() -> Result<T, MapError>) -> Result<T, MapError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(mapper)) {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(MapError::doubt(format!(
                "the mapper failed unexpectedly ({what})"
            )))
        }
    }
}

/// Why a kind of content is always copied whole.
pub fn whole_copy_reason(kind: ContentKind) -> &'static str {
    match kind {
        ContentKind::Btrfs => "btrfs: allocation is not mapped yet",
        ContentKind::Luks1 | ContentKind::Luks2 => "encrypted (LUKS): used blocks cannot be seen",
        ContentKind::Bitlocker => "encrypted (BitLocker): used blocks cannot be seen",
        ContentKind::LinuxRaid => "Linux RAID member: copied as is",
        ContentKind::Iso9660 => "iso9660: read-only image, copied as is",
        ContentKind::LvmPv => "LVM physical volume outside a volume group scan",
        ContentKind::Unknown => "unknown content",
        _ => "no mapper for this content",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_mapper_becomes_a_doubt() {
        let result: Result<(), MapError> = guarded(|| panic!("parser bug"));
        match result {
            Err(MapError::Doubt(reason)) => assert!(reason.contains("parser bug"), "{reason}"),
            other => panic!("expected a doubt, got {other:?}"),
        }
    }
}
