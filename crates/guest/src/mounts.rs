//! Offset loop devices and mounts, released on drop.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::cmd;
use crate::error::{Error, Result};

/// A loop device on a byte range of a disk (the host scans no partitions on
/// loop devices, and device-mapper may be absent, so every partition and
/// logical volume gets its own). Detached on drop.
#[derive(Debug)]
pub(crate) struct Loop {
    device: PathBuf,
}

impl Loop {
    pub(crate) fn attach(file: &Path, offset: u64, size: u64, writable: bool) -> Result<Loop> {
        let mut args = vec![
            "--find".to_string(),
            "--show".to_string(),
            "--offset".to_string(),
            offset.to_string(),
            "--sizelimit".to_string(),
            size.to_string(),
        ];
        if !writable {
            args.push("--read-only".to_string());
        }
        args.push(file.to_string_lossy().into_owned());
        let device = cmd::run("losetup", &args)?.trim().to_string();
        if device.is_empty() {
            return Err(Error::Disk {
                path: file.to_path_buf(),
                reason: "losetup printed no device".into(),
            });
        }
        Ok(Loop {
            device: device.into(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.device
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        if let Err(e) = cmd::run(
            "losetup",
            &[std::ffi::OsStr::new("-d"), self.device.as_os_str()],
        ) {
            tracing::warn!("detaching {}: {e}", self.device.display());
        }
    }
}

/// A mounted filesystem; unmounted on drop (lazily if still busy).
#[derive(Debug)]
pub(crate) struct Mount {
    target: PathBuf,
    _dir: Option<TempDir>,
}

impl Mount {
    /// Mounts `source` on a new temporary directory.
    pub(crate) fn temporary(source: &Path, fstype: Option<&str>, options: &str) -> Result<Mount> {
        let dir = tempfile::Builder::new()
            .prefix("xenlift-guest-")
            .tempdir()
            .map_err(Error::io("creating a mount point in", std::env::temp_dir()))?;
        let target = dir.path().to_path_buf();
        mount(source, &target, fstype, options)?;
        Ok(Mount {
            target,
            _dir: Some(dir),
        })
    }

    /// Mounts `source` on an existing directory (inside a mounted guest).
    pub(crate) fn at(
        source: &Path,
        target: &Path,
        fstype: Option<&str>,
        options: &str,
    ) -> Result<Mount> {
        mount(source, target, fstype, options)?;
        Ok(Mount {
            target: target.to_path_buf(),
            _dir: None,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.target
    }
}

fn mount(source: &Path, target: &Path, fstype: Option<&str>, options: &str) -> Result<()> {
    let mut args: Vec<&std::ffi::OsStr> = vec!["-o".as_ref(), options.as_ref()];
    if let Some(t) = fstype {
        args.extend(["-t".as_ref(), std::ffi::OsStr::new(t)]);
    }
    args.extend([source.as_os_str(), target.as_os_str()]);
    cmd::run("mount", &args).map(drop)
}

impl Drop for Mount {
    fn drop(&mut self) {
        if cmd::run("umount", &[self.target.as_os_str()]).is_err() {
            let lazy = cmd::run(
                "umount",
                &[std::ffi::OsStr::new("-l"), self.target.as_os_str()],
            );
            if let Err(e) = lazy {
                tracing::warn!("unmounting {}: {e}", self.target.display());
            }
        }
    }
}

/// Mounts that nest (a guest's root, then its /boot...), unmounted in
/// reverse order on drop.
#[derive(Debug, Default)]
pub(crate) struct MountStack {
    mounts: Vec<Mount>,
}

impl MountStack {
    pub(crate) fn push(&mut self, m: Mount) {
        self.mounts.push(m);
    }
}

impl Drop for MountStack {
    fn drop(&mut self) {
        while let Some(m) = self.mounts.pop() {
            drop(m);
        }
    }
}
