//! Guest inspection and boot-configuration fix-up for Linux, on writable
//! disks: a copy of the source, or a copy-on-write view of it. Never the
//! source itself.
//!
//! [`fixup`] attaches each partition (and each linear LVM logical volume,
//! found from the PV's own metadata, since the host may lack device-mapper)
//! as an offset loop device, finds Linux roots by their fstab and
//! os-release, mounts what the work needs, and runs the fix-ups: device
//! names to `UUID=`, the boot configuration, LVM filters, NIC names, the
//! UEFI fallback loader, and the initramfs rebuilt by the guest's own tool
//! in a chroot. Every change keeps the original as `*.xenlift-orig`, is
//! logged in the guest's `/var/log/xenlift-fixup.log` and listed in the
//! [`FixupReport`], with every fix-up not done and why.
//!
//! Needs root and, on the host: losetup, mount, blkid, e2fsck, chroot,
//! mtools (mdir, mcopy, mmd).

mod chroot;
mod cmd;
mod devices;
mod disk;
mod error;
mod esp;
mod fixups;
mod guestfs;
mod inspect;
mod lvm;
mod mounts;
mod probe;
mod report;
mod session;
mod volumes;

use serde::{Deserialize, Serialize};

pub use disk::{Partition, WritableDisk};
pub use error::{Error, Result};
pub use fixups::DRIVERS;
pub use guestfs::{BACKUP_SUFFIX, GUEST_LOG};
pub use probe::Probe;
pub use report::{
    Action, Bootloader, Change, FixupReport, FsState, GuestInfo, GuestReport, InitramfsTool,
    Inspection, Kernel, Location, OsInfo, Skipped, VolumeInfo,
};

use report::Skipped as Skip;
use session::Session;
use volumes::{Dirty, Volumes};

/// A NIC of the source machine, as the agent saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceNic {
    /// `aa:bb:cc:dd:ee:ff`; the VIF on XenServer gets the same.
    pub mac: String,
    /// The name the source OS gave it (`eno1`), when known.
    pub name: Option<String>,
}

/// What the fix-up may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// The source's NICs: configured interface names are pinned to these MACs.
    pub nics: Vec<SourceNic>,
    /// Disable the services of other hypervisors' guest tools (they are
    /// always reported).
    pub disable_foreign_tools: bool,
    /// Replay the journal of a filesystem that was not cleanly unmounted
    /// (on the writable view); when false, such a filesystem is an error.
    pub replay_dirty_journals: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nics: Vec::new(),
            disable_foreign_tools: false,
            replay_dirty_journals: true,
        }
    }
}

/// Looks at the guests on the disks without changing a byte: loop devices
/// are read-only and journals are not replayed.
pub fn inspect(disks: &[WritableDisk]) -> Result<Inspection> {
    let volumes = Volumes::attach(disks, false, Dirty::Leave)?;
    let roots = session::find_roots(&volumes)?;
    let mut guests = Vec::new();
    for root in &roots {
        guests.push(Session::open(&volumes, root, false)?.info);
    }
    Ok(Inspection {
        volumes: volumes.list.iter().map(|v| v.info.clone()).collect(),
        guests,
        unreachable: volumes.unreachable.clone(),
    })
}

/// Inspects and fixes every Linux guest on the writable disks so it boots
/// as a XenServer VM. Returns the report; an error only when nothing could
/// be done (a disk not writable, no Linux root, a dirty filesystem that may
/// not be replayed).
pub fn fixup(disks: &[WritableDisk], options: &Options) -> Result<FixupReport> {
    let dirty = if options.replay_dirty_journals {
        Dirty::Replay
    } else {
        Dirty::Refuse
    };
    let volumes = Volumes::attach(disks, true, dirty)?;
    let roots = session::find_roots(&volumes)?;
    if roots.is_empty() {
        return Err(Error::NoRoot {
            looked_at: volumes
                .list
                .iter()
                .filter(|v| v.fs_type().is_some())
                .count(),
        });
    }
    let mut report = FixupReport {
        volumes: volumes.list.iter().map(|v| v.info.clone()).collect(),
        guests: Vec::new(),
        unreachable: volumes.unreachable.clone(),
    };
    for root in &roots {
        let session = Session::open(&volumes, root, true)?;
        let span = tracing::info_span!("guest", root = %session.root_location());
        let _enter = span.enter();
        let mut ctx = fixups::Ctx {
            fs: &session.fs,
            resolver: &volumes,
            options,
            info: &session.info,
            esp: session.esp_device(),
            changes: Vec::new(),
            skipped: session.notes.clone(),
        };
        for (name, run) in fixups::all() {
            if let Err(e) = run(&mut ctx) {
                ctx.skip(name, format!("stopped: {e}"));
            }
        }
        let (changes, skipped) = (ctx.changes, ctx.skipped);
        let log = log_lines(&changes, &skipped);
        let mut skipped = skipped;
        if let Err(e) = session.fs.append_log(&log) {
            skipped.push(Skip {
                fixup: "log".into(),
                reason: format!("{GUEST_LOG} not written: {e}"),
            });
        }
        report.guests.push(GuestReport {
            info: session.info.clone(),
            changes,
            skipped,
        });
    }
    cmd::run("sync", &[] as &[&str])?;
    Ok(report)
}

fn log_lines(changes: &[Change], skipped: &[Skipped]) -> Vec<String> {
    let mut lines = vec![format!(
        "xenlift {} guest fix-up",
        env!("CARGO_PKG_VERSION")
    )];
    for c in changes {
        let backup = c
            .backup
            .as_deref()
            .map(|b| format!(" (original: {b})"))
            .unwrap_or_default();
        lines.push(format!("{} {:?} {}{backup}", c.fixup, c.action, c.path));
        lines.extend(c.details.iter().map(|d| format!("    {d}")));
    }
    for s in skipped {
        lines.push(format!("{} not done: {}", s.fixup, s.reason));
    }
    lines
}
