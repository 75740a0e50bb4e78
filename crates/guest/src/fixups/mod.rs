//! The fix-ups, each a small unit that changes one kind of configuration,
//! reports every change and says why it did nothing when it did nothing.
//! They run in order: configuration first, the initramfs (which embeds
//! much of that configuration) last.

mod bootloader_config;
mod crypttab;
mod foreign_tools;
mod fstab;
mod initramfs;
mod kernel_args;
mod lvm_config;
mod network;
mod uefi_fallback;

use std::path::Path;

use crate::guestfs::GuestFs;
use crate::report::{Change, GuestInfo, Skipped};
use crate::Options;

pub(crate) use foreign_tools::find as find_foreign_tools;
pub use initramfs::DRIVERS;

/// What to write instead of a device name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rewrite {
    /// Already stable across hardware (or not a device): leave it.
    Keep,
    /// Write this instead (`UUID=...`, `PARTUUID=...`).
    Replace(String),
    /// Hardware-bound, but we cannot tell what it named.
    Unresolved(String),
}

/// Turns a device name from a guest file into a stable one.
pub(crate) trait Resolve {
    /// `fs_type` is what the file says lives there, when it says (`ext4`,
    /// `swap`; `None` for unknown or `auto`): a name whose target holds
    /// something else is not trusted.
    fn rewrite(&self, spec: &str, fs_type: Option<&str>) -> Rewrite;

    /// The partition's own name (`PARTUUID=`), for data with no stable
    /// header of its own (plain dm-crypt, random-key swap).
    fn rewrite_partition(&self, spec: &str) -> Rewrite;
}

/// What the fix-ups work with and write to.
pub(crate) struct Ctx<'a> {
    pub(crate) fs: &'a GuestFs,
    pub(crate) resolver: &'a dyn Resolve,
    pub(crate) options: &'a Options,
    pub(crate) info: &'a GuestInfo,
    /// The ESP's device, if the guest has one (read and written with mtools:
    /// the host may have no vfat driver).
    pub(crate) esp: Option<&'a Path>,
    pub(crate) changes: Vec<Change>,
    pub(crate) skipped: Vec<Skipped>,
}

impl Ctx<'_> {
    pub(crate) fn skip(&mut self, fixup: &str, reason: impl Into<String>) {
        let reason = reason.into();
        tracing::info!(fixup, %reason, "not done");
        self.skipped.push(Skipped {
            fixup: fixup.into(),
            reason,
        });
    }

    pub(crate) fn changed(&mut self, change: Change) {
        tracing::info!(fixup = %change.fixup, path = %change.path, action = ?change.action, "changed");
        self.changes.push(change);
    }

    /// Records a result: a change, or a skip with the error as the reason.
    pub(crate) fn record(&mut self, fixup: &str, what: &str, result: crate::Result<Change>) {
        match result {
            Ok(c) => self.changed(c),
            Err(e) => self.skip(fixup, format!("{what}: {e}")),
        }
    }
}

/// One fix-up: its name and its function.
pub(crate) type Fixup = (&'static str, fn(&mut Ctx<'_>) -> crate::Result<()>);

/// All fix-ups in the order they run.
pub(crate) fn all() -> &'static [Fixup] {
    &[
        ("fstab", fstab::run),
        ("crypttab", crypttab::run),
        ("bootloader-config", bootloader_config::run),
        ("lvm", lvm_config::run),
        ("network", network::run),
        ("foreign-tools", foreign_tools::run),
        ("uefi-fallback", uefi_fallback::run),
        ("initramfs", initramfs::run),
    ]
}

/// A resolver from a table, for unit tests of the rewrites.
#[cfg(test)]
pub(crate) mod test_resolver {
    use super::{Resolve, Rewrite};
    use crate::devices::{self, DeviceName};

    /// Kernel names of disk 0 resolve to `UUID=u<N>`; disk 1 is unknown;
    /// a `vfat` expectation on partition 9 is a mismatch.
    pub(crate) struct Table;

    impl Resolve for Table {
        fn rewrite(&self, spec: &str, fs_type: Option<&str>) -> Rewrite {
            match devices::parse(spec) {
                DeviceName::Kernel {
                    disk: 0,
                    partition: Some(9),
                } if fs_type == Some("vfat") => Rewrite::Unresolved("holds ext4, not vfat".into()),
                DeviceName::Kernel {
                    disk: 0,
                    partition: Some(n),
                }
                | DeviceName::Hardware { partition: Some(n) } => {
                    Rewrite::Replace(format!("UUID=u{n}"))
                }
                d if d.is_hardware_bound() => {
                    Rewrite::Unresolved(format!("{spec} is on no disk given"))
                }
                _ => Rewrite::Keep,
            }
        }

        fn rewrite_partition(&self, spec: &str) -> Rewrite {
            match self.rewrite(spec, None) {
                Rewrite::Replace(_) => Rewrite::Replace(format!("PARTUUID=p-{spec}")),
                other => other,
            }
        }
    }
}
