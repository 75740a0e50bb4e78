//! What the inspection found and what the fix-up changed, for the agent's
//! JSON report and for people.

use serde::Serialize;

use crate::probe::Probe;

/// Where a volume is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Location {
    /// Partition `number` of the `disk`-th disk given (0 for a whole-disk filesystem).
    Partition { disk: usize, number: u32 },
    /// A logical volume, reached through its PV on `disk`/`number`.
    LogicalVolume {
        vg: String,
        lv: String,
        disk: usize,
        number: u32,
    },
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Partition { disk, number } => write!(f, "disk {disk} partition {number}"),
            Location::LogicalVolume { vg, lv, .. } => write!(f, "LV {vg}/{lv}"),
        }
    }
}

/// One volume seen on the disks.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeInfo {
    pub location: Location,
    pub size: u64,
    #[serde(flatten)]
    pub probe: Probe,
    pub part_uuid: Option<String>,
    /// Whether the filesystem was dirty and what was done about it.
    pub state: FsState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FsState {
    Clean,
    /// Not cleanly unmounted; the journal was replayed on the writable copy.
    Replayed,
    /// Not cleanly unmounted; left alone (inspection only).
    Dirty,
    /// Not a filesystem whose state we check.
    NotChecked,
}

/// The Linux system found on the disks.
#[derive(Debug, Clone, Serialize)]
pub struct GuestInfo {
    pub root: Location,
    pub os: OsInfo,
    /// Filesystems of the guest mounted for the work, by mount point.
    pub mounts: Vec<(String, Location)>,
    pub kernels: Vec<Kernel>,
    pub initramfs_tool: Option<InitramfsTool>,
    pub bootloaders: Vec<Bootloader>,
    /// Hypervisor guest tools of other platforms found installed.
    pub foreign_tools: Vec<String>,
}

/// From `/etc/os-release`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OsInfo {
    pub id: String,
    pub id_like: Vec<String>,
    pub version_id: Option<String>,
    pub pretty_name: Option<String>,
}

/// An installed kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kernel {
    pub version: String,
    /// Path inside the guest.
    pub image: Option<String>,
    pub initramfs: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitramfsTool {
    InitramfsTools,
    Dracut,
    Mkinitrd,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Bootloader {
    /// GRUB 2 for BIOS (modules in /boot/grub*/i386-pc).
    GrubBios,
    /// A UEFI loader in `\EFI\<dir>` of the ESP.
    Uefi {
        dir: String,
        shim: bool,
        /// Whether `\EFI\BOOT\BOOTX64.EFI` exists.
        fallback: bool,
    },
}

/// What [`crate::inspect`] found, changing nothing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Inspection {
    pub volumes: Vec<VolumeInfo>,
    pub guests: Vec<GuestInfo>,
    /// Volumes that could not be looked at, with why.
    pub unreachable: Vec<Skipped>,
}

/// Everything the fix-up did to the disks.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FixupReport {
    pub volumes: Vec<VolumeInfo>,
    pub guests: Vec<GuestReport>,
    /// Volumes that could not be looked at, with why (the copy is unchanged there).
    pub unreachable: Vec<Skipped>,
}

impl FixupReport {
    /// Every change to every guest.
    pub fn changes(&self) -> impl Iterator<Item = &Change> {
        self.guests.iter().flat_map(|g| g.changes.iter())
    }
}

/// One guest's inspection and fix-up.
#[derive(Debug, Clone, Serialize)]
pub struct GuestReport {
    pub info: GuestInfo,
    pub changes: Vec<Change>,
    pub skipped: Vec<Skipped>,
}

/// One change to one file in the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The fix-up that made it (`fstab`, `initramfs`...).
    pub fixup: String,
    /// Path inside the guest (`/etc/fstab`), or `ESP:\EFI\BOOT\BOOTX64.EFI`.
    pub path: String,
    pub action: Action,
    /// Where the original was kept, if there was one.
    pub backup: Option<String>,
    /// What changed, line by line or in words.
    pub details: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Edited,
    Created,
    /// Moved aside to the backup name, so it no longer takes effect.
    Disabled,
    /// Rebuilt by the guest's own tool.
    Regenerated,
    /// A symlink or file removed (its target is in the details).
    Removed,
}

/// A fix-up (or part of one) not done, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub fixup: String,
    pub reason: String,
}
