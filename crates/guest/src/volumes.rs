//! Every volume on the disks given, each on its own loop device: partitions,
//! and logical volumes reached through their PV's metadata. Also the
//! resolver from device names in guest files to these volumes.

use std::fs::OpenOptions;
use std::path::Path;

use crate::devices::{self, DeviceName, Tag};
use crate::disk::WritableDisk;
use crate::error::{Error, Result};
use crate::fixups::{Resolve, Rewrite};
use crate::inspect::ext;
use crate::lvm::{self, Placement};
use crate::mounts::Loop;
use crate::probe::{self, Probe};
use crate::report::{FsState, Location, Skipped, VolumeInfo};

/// One volume on its loop device.
#[derive(Debug)]
pub(crate) struct Volume {
    pub(crate) info: VolumeInfo,
    pub(crate) part_label: Option<String>,
    loop_device: Loop,
}

impl Volume {
    pub(crate) fn device(&self) -> &Path {
        self.loop_device.path()
    }

    pub(crate) fn fs_type(&self) -> Option<&str> {
        self.info.probe.fs_type.as_deref()
    }
}

/// All volumes of the disks given.
#[derive(Debug)]
pub(crate) struct Volumes {
    pub(crate) disks: usize,
    pub(crate) list: Vec<Volume>,
    pub(crate) unreachable: Vec<Skipped>,
}

/// What to do with a filesystem that was not cleanly unmounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dirty {
    /// Replay the journal (e2fsck -p) on the writable copy.
    Replay,
    /// Fail: the caller does not allow writing before the fix-up.
    Refuse,
    /// Leave it and mount without replaying (read-only inspection).
    Leave,
}

impl Volumes {
    pub(crate) fn attach(disks: &[WritableDisk], writable: bool, dirty: Dirty) -> Result<Volumes> {
        let mut out = Volumes {
            disks: disks.len(),
            list: Vec::new(),
            unreachable: Vec::new(),
        };
        for (index, disk) in disks.iter().enumerate() {
            check_disk(disk, writable)?;
            for p in &disk.partitions {
                let location = Location::Partition {
                    disk: index,
                    number: p.number,
                };
                let l = Loop::attach(&disk.path, p.offset, p.size, writable)?;
                let probe = probe::probe(l.path())?;
                if probe.fs_type.as_deref() == Some("LVM2_member") {
                    out.attach_lvs(disk, index, p.number, p.offset, l.path(), writable, dirty)?;
                }
                out.push(
                    l,
                    location,
                    p.size,
                    probe,
                    p.part_uuid.clone(),
                    p.part_label.clone(),
                    dirty,
                )?;
            }
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn attach_lvs(
        &mut self,
        disk: &WritableDisk,
        index: usize,
        number: u32,
        pv_offset: u64,
        pv: &Path,
        writable: bool,
        dirty: Dirty,
    ) -> Result<()> {
        let lvs = match lvm::logical_volumes(pv) {
            Ok(lvs) => lvs,
            Err(reason) => {
                self.unreachable.push(Skipped {
                    fixup: "lvm".into(),
                    reason: format!(
                        "disk {index} partition {number}: LVM metadata not readable: {reason}"
                    ),
                });
                return Ok(());
            }
        };
        for lv in lvs {
            let location = Location::LogicalVolume {
                vg: lv.vg.clone(),
                lv: lv.name.clone(),
                disk: index,
                number,
            };
            match lv.placement {
                Placement::Linear { offset, size } => {
                    let l = Loop::attach(&disk.path, pv_offset + offset, size, writable)?;
                    let probe = probe::probe(l.path())?;
                    self.push(l, location, size, probe, None, None, dirty)?;
                }
                Placement::Unreachable(reason) => self.unreachable.push(Skipped {
                    fixup: "lvm".into(),
                    reason: format!(
                        "LV {}/{}: {reason}; not inspected (needs device-mapper)",
                        lv.vg, lv.name
                    ),
                }),
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        l: Loop,
        location: Location,
        size: u64,
        probe: Probe,
        part_uuid: Option<String>,
        part_label: Option<String>,
        dirty: Dirty,
    ) -> Result<()> {
        let state = match probe.fs_type.as_deref() {
            Some("ext2" | "ext3" | "ext4") => ext_state(l.path(), dirty)?,
            _ => FsState::NotChecked,
        };
        self.list.push(Volume {
            info: VolumeInfo {
                location,
                size,
                probe,
                part_uuid,
                state,
            },
            part_label,
            loop_device: l,
        });
        Ok(())
    }

    /// The volume a device name in a guest file points at, if it is on these disks.
    pub(crate) fn locate(&self, spec: &str) -> Result<Option<&Volume>, String> {
        let eq =
            |a: &Option<String>, b: &str| a.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(b));
        match devices::parse(spec) {
            DeviceName::Tag { kind, value } => Ok(self.list.iter().find(|v| match kind {
                Tag::Uuid => eq(&v.info.probe.uuid, &value),
                Tag::Label => v.info.probe.label.as_deref() == Some(value.as_str()),
                Tag::PartUuid => eq(&v.info.part_uuid, &value),
                Tag::PartLabel => v.part_label.as_deref() == Some(value.as_str()),
            })),
            DeviceName::Kernel { disk, partition } => {
                if disk >= self.disks {
                    return Err(format!(
                        "names disk {} of the source, but {} disk(s) were given",
                        disk + 1,
                        self.disks
                    ));
                }
                Ok(self.partition(disk, partition.unwrap_or(0)))
            }
            DeviceName::Hardware { partition } => {
                if self.disks != 1 {
                    return Err(
                        "names the source's hardware, and with several disks which one is unknown"
                            .into(),
                    );
                }
                Ok(self.partition(0, partition.unwrap_or(0)))
            }
            DeviceName::Logical => {
                let name = spec
                    .trim_start_matches("/dev/")
                    .trim_start_matches("mapper/");
                Ok(self.list.iter().find(|v| match &v.info.location {
                    Location::LogicalVolume { vg, lv, .. } => {
                        name == format!("{vg}/{lv}")
                            || name
                                == format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--"))
                    }
                    _ => false,
                }))
            }
            DeviceName::NotADevice => Ok(None),
        }
    }

    fn partition(&self, disk: usize, number: u32) -> Option<&Volume> {
        self.list
            .iter()
            .find(|v| v.info.location == Location::Partition { disk, number })
    }
}

impl Resolve for Volumes {
    fn rewrite(&self, spec: &str, fs_type: Option<&str>) -> Rewrite {
        let name = devices::parse(spec);
        if !name.is_hardware_bound() {
            return Rewrite::Keep;
        }
        let v = match self.resolved(spec) {
            Ok(v) => v,
            Err(r) => return r,
        };
        let found = v.fs_type();
        if let Some(expected) = fs_type {
            if !same_kind(expected, found) {
                return Rewrite::Unresolved(format!(
                    "{} holds {}, not {expected}",
                    v.info.location,
                    found.unwrap_or("nothing recognisable")
                ));
            }
        }
        if let Some(uuid) = &v.info.probe.uuid {
            Rewrite::Replace(format!("UUID={uuid}"))
        } else if let Some(p) = &v.info.part_uuid {
            Rewrite::Replace(format!("PARTUUID={p}"))
        } else {
            Rewrite::Unresolved(format!(
                "{} has neither a filesystem UUID nor a PARTUUID",
                v.info.location
            ))
        }
    }

    fn rewrite_partition(&self, spec: &str) -> Rewrite {
        if !devices::parse(spec).is_hardware_bound() {
            return Rewrite::Keep;
        }
        match self.resolved(spec) {
            Ok(v) => match &v.info.part_uuid {
                Some(p) => Rewrite::Replace(format!("PARTUUID={p}")),
                None => Rewrite::Unresolved(format!("{} has no PARTUUID", v.info.location)),
            },
            Err(r) => r,
        }
    }
}

impl Volumes {
    fn resolved(&self, spec: &str) -> Result<&Volume, Rewrite> {
        match self.locate(spec) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(Rewrite::Unresolved(
                "no such partition on the disks given".into(),
            )),
            Err(why) => Err(Rewrite::Unresolved(why)),
        }
    }
}

/// Whether what a file expects matches what was found (a line saying ext3
/// may sit on an ext4 filesystem; `udf,iso9660` lists alternatives).
fn same_kind(expected: &str, found: Option<&str>) -> bool {
    let Some(found) = found else {
        return false;
    };
    fn family(t: &str) -> &str {
        match t {
            "ext2" | "ext3" | "ext4" => "ext",
            "vfat" | "msdos" | "fat" => "fat",
            other => other,
        }
    }
    expected.split(',').any(|e| family(e) == family(found))
}

fn check_disk(disk: &WritableDisk, writable: bool) -> Result<()> {
    let opened = OpenOptions::new()
        .read(true)
        .write(writable)
        .open(&disk.path);
    opened.map(drop).map_err(|e| Error::Disk {
        path: disk.path.clone(),
        reason: if writable {
            format!("cannot open for writing ({e}); the fix-up needs a writable copy or copy-on-write view, never the source")
        } else {
            format!("cannot open ({e})")
        },
    })
}

fn ext_state(device: &Path, dirty: Dirty) -> Result<FsState> {
    let Some(state) = ext::state(device)? else {
        return Ok(FsState::NotChecked);
    };
    if !state.dirty() {
        return Ok(FsState::Clean);
    }
    let name = device.display().to_string();
    match dirty {
        Dirty::Leave => Ok(FsState::Dirty),
        Dirty::Refuse => Err(Error::Dirty {
            device: name,
            fs_type: "ext".into(),
        }),
        Dirty::Replay => {
            let out = crate::cmd::output("e2fsck", &["-p".as_ref(), device.as_os_str()])?;
            // 0: clean, 1: errors fixed, 2: fixed and a reboot would be wanted.
            match out.status.code() {
                Some(0..=2) => Ok(FsState::Replayed),
                code => Err(Error::Fsck {
                    device: name,
                    code: code.unwrap_or(-1),
                    output: String::from_utf8_lossy(&out.stdout).trim().to_string(),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filesystem_kinds_match_loosely() {
        assert!(same_kind("ext3", Some("ext4")));
        assert!(same_kind("udf,iso9660", Some("iso9660")));
        assert!(same_kind("vfat", Some("vfat")));
        assert!(!same_kind("vfat", Some("ext4")));
        assert!(!same_kind("swap", None));
    }
}
