//! One Linux guest found on the disks, mounted for inspection or fix-up:
//! its root, the filesystems the work needs (/boot, /usr, /var) at their
//! places, and its ESP (addressed with mtools, never mounted).

use std::path::{Path, PathBuf};

use crate::esp::Esp;
use crate::guestfs::GuestFs;
use crate::inspect;
use crate::mounts::{Mount, MountStack};
use crate::report::{GuestInfo, Location, Skipped};
use crate::volumes::{Volume, Volumes};

/// Mount points the fix-ups read or write under.
const NEEDED: &[&str] = &["/usr", "/var", "/boot"];
const ROOT_TYPES: &[&str] = &["ext2", "ext3", "ext4", "xfs", "btrfs"];

/// A root candidate: the volume and the btrfs subvolume holding `/`.
#[derive(Debug, Clone)]
pub(crate) struct RootCandidate {
    pub(crate) volume: usize,
    pub(crate) subvol: Option<String>,
}

fn mount_options(fs_type: Option<&str>, writable: bool, subvol: Option<&str>) -> String {
    let mut o = match (fs_type, writable) {
        (_, true) => "rw".to_string(),
        // Never replay a journal when only looking.
        (Some("ext3" | "ext4"), false) => "ro,noload".to_string(),
        (Some("xfs"), false) => "ro,norecovery".to_string(),
        _ => "ro".to_string(),
    };
    if let Some(s) = subvol {
        o.push_str(",subvol=");
        o.push_str(s);
    }
    o
}

/// Finds the volumes holding a Linux root.
pub(crate) fn find_roots(volumes: &Volumes) -> crate::Result<Vec<RootCandidate>> {
    let mut out = Vec::new();
    for (i, v) in volumes.list.iter().enumerate() {
        let Some(t) = v.fs_type().filter(|t| ROOT_TYPES.contains(t)) else {
            continue;
        };
        let m = match Mount::temporary(v.device(), Some(t), &mount_options(Some(t), false, None)) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("{}: not mountable, not a root: {e}", v.info.location);
                continue;
            }
        };
        let top = GuestFs::new(m.path());
        if inspect::is_root(&top) {
            out.push(RootCandidate {
                volume: i,
                subvol: None,
            });
        } else if t == "btrfs" && inspect::is_root(&GuestFs::new(&m.path().join("@"))) {
            out.push(RootCandidate {
                volume: i,
                subvol: Some("@".into()),
            });
        }
    }
    Ok(out)
}

/// A guest mounted for work.
pub(crate) struct Session<'v> {
    pub(crate) fs: GuestFs,
    pub(crate) info: GuestInfo,
    pub(crate) esp: Option<&'v Volume>,
    pub(crate) notes: Vec<Skipped>,
    _mounts: MountStack,
}

impl<'v> Session<'v> {
    pub(crate) fn open(
        volumes: &'v Volumes,
        root: &RootCandidate,
        writable: bool,
    ) -> crate::Result<Session<'v>> {
        let rv = volumes
            .list
            .get(root.volume)
            .ok_or(crate::Error::NoRoot { looked_at: 0 })?;
        let mut mounts = MountStack::default();
        let top = Mount::temporary(
            rv.device(),
            rv.fs_type(),
            &mount_options(rv.fs_type(), writable, root.subvol.as_deref()),
        )?;
        let root_path: PathBuf = top.path().to_path_buf();
        mounts.push(top);
        let fs = GuestFs::new(&root_path);
        let mut notes = Vec::new();
        let mut mounted = vec![("/".to_string(), rv.info.location.clone())];
        let mut esp = None;
        let fstab = fs.read("/etc/fstab")?.unwrap_or_default();
        let mut entries = fstab_entries(&fstab);
        entries.sort_by_key(|e| e.mountpoint.matches('/').count());
        for e in entries {
            let is_esp = e.mountpoint == "/boot/efi" || e.mountpoint == "/efi";
            let needed = NEEDED.contains(&e.mountpoint.as_str());
            if !is_esp && !needed {
                continue;
            }
            let v = match volumes.locate(&e.spec) {
                Ok(Some(v)) => v,
                Ok(None) | Err(_) => {
                    notes.push(Skipped {
                        fixup: "inspect".into(),
                        reason: format!(
                            "{} ({}) is not on the disks given: not mounted",
                            e.mountpoint, e.spec
                        ),
                    });
                    continue;
                }
            };
            if is_esp {
                esp = Some(v);
                continue;
            }
            let target = fs.host_path(&e.mountpoint)?;
            let subvol = e
                .options
                .split(',')
                .find_map(|o| o.strip_prefix("subvol="))
                .map(str::to_string);
            match Mount::at(
                v.device(),
                &target,
                v.fs_type(),
                &mount_options(v.fs_type(), writable, subvol.as_deref()),
            ) {
                Ok(m) => {
                    mounts.push(m);
                    mounted.push((e.mountpoint.clone(), v.info.location.clone()));
                }
                Err(err) => notes.push(Skipped {
                    fixup: "inspect".into(),
                    reason: format!("{} not mounted: {err}", e.mountpoint),
                }),
            }
        }
        // No ESP in fstab: the one vfat volume with an \EFI directory.
        if esp.is_none() {
            esp = volumes
                .list
                .iter()
                .filter(|v| v.fs_type() == Some("vfat"))
                .find(|v| Esp::new(v.device()).exists("/EFI").unwrap_or(false));
        }
        if let Some(v) = esp {
            mounted.push(("ESP".into(), v.info.location.clone()));
        }
        let esp_access = esp.map(|v| Esp::new(v.device()));
        let info = GuestInfo {
            root: rv.info.location.clone(),
            os: inspect::os_release(&fs)?,
            mounts: mounted,
            kernels: inspect::kernels(&fs)?,
            initramfs_tool: inspect::initramfs_tool(&fs),
            bootloaders: inspect::bootloaders(&fs, esp_access.as_ref())?,
            foreign_tools: crate::fixups::find_foreign_tools(&fs),
        };
        Ok(Session {
            fs,
            info,
            esp,
            notes,
            _mounts: mounts,
        })
    }

    pub(crate) fn esp_device(&self) -> Option<&Path> {
        self.esp.map(|v| v.device())
    }

    pub(crate) fn root_location(&self) -> &Location {
        &self.info.root
    }
}

struct FstabEntry {
    spec: String,
    mountpoint: String,
    options: String,
}

fn fstab_entries(text: &str) -> Vec<FstabEntry> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(FstabEntry {
                spec: f.next()?.to_string(),
                mountpoint: f.next()?.to_string(),
                options: f.nth(1).unwrap_or("defaults").to_string(),
            })
        })
        .collect()
}
