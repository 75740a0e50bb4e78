//! Running the guest's own tools inside its root, with /proc, /sys, /dev
//! and a fresh /run, as its package scripts expect. /tmp and /var/tmp are
//! fresh tmpfs too: what the tools write there and delete (an initramfs
//! build copies hundreds of MiB of modules) must not land in the guest's
//! filesystem, where it would fill the copy-on-write view and the delta.

use std::path::Path;

use crate::cmd;
use crate::error::Result;
use crate::guestfs::GuestFs;
use crate::mounts::{Mount, MountStack};

const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A guest root prepared for chroot; the bind mounts go on drop.
#[derive(Debug)]
pub(crate) struct Chroot {
    root: std::path::PathBuf,
    _mounts: MountStack,
}

impl Chroot {
    pub(crate) fn enter(fs: &GuestFs) -> Result<Chroot> {
        let mut mounts = MountStack::default();
        let plan: [(&str, &str, Option<&str>, &str); 6] = [
            ("proc", "/proc", Some("proc"), "nosuid,nodev,noexec"),
            ("/sys", "/sys", None, "bind"),
            ("/dev", "/dev", None, "bind"),
            ("tmpfs", "/run", Some("tmpfs"), "mode=0755,nosuid,nodev"),
            ("tmpfs", "/tmp", Some("tmpfs"), "mode=1777,nosuid,nodev"),
            ("tmpfs", "/var/tmp", Some("tmpfs"), "mode=1777,nosuid,nodev"),
        ];
        for (source, guest_dir, fstype, options) in plan {
            let target = fs.host_path(guest_dir)?;
            std::fs::create_dir_all(&target).map_err(crate::Error::io("creating", &target))?;
            mounts.push(Mount::at(Path::new(source), &target, fstype, options)?);
        }
        Ok(Chroot {
            root: fs.root().to_path_buf(),
            _mounts: mounts,
        })
    }

    fn args<'a>(&'a self, program: &'a str, args: &'a [&'a str]) -> Vec<&'a str> {
        let mut all = vec![
            self.root.to_str().unwrap_or("/nonexistent"),
            "/usr/bin/env",
            "-i",
            PATH,
            "LANG=C",
            "HOME=/root",
            "TMPDIR=/tmp",
            program,
        ];
        all.extend_from_slice(args);
        all
    }

    /// Runs a program of the guest; fails unless it exits 0.
    pub(crate) fn run(&self, program: &str, args: &[&str]) -> Result<String> {
        cmd::run("chroot", &self.args(program, args))
    }
}
