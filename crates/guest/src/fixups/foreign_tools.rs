//! Guest tools of other hypervisors (VMware, VirtualBox, Hyper-V): reported,
//! and their services disabled when the options ask for it.

use super::Ctx;
use crate::guestfs::GuestFs;
use crate::report::{Action, Change};

const NAME: &str = "foreign-tools";

struct Tools {
    name: &'static str,
    /// Any of these files present means the tools are installed.
    files: &'static [&'static str],
    services: &'static [&'static str],
}

const TOOLS: &[Tools] = &[
    Tools {
        name: "VMware Tools (open-vm-tools)",
        files: &[
            "/usr/bin/vmtoolsd",
            "/etc/vmware-tools/tools.conf",
            "/etc/vmware-tools",
        ],
        services: &[
            "open-vm-tools.service",
            "vmtoolsd.service",
            "vmware-tools.service",
            "vgauth.service",
            "vmware-vmblock-fuse.service",
        ],
    },
    Tools {
        name: "VirtualBox Guest Additions",
        files: &[
            "/usr/sbin/VBoxService",
            "/usr/bin/VBoxClient",
            "/opt/VBoxGuestAdditions",
        ],
        services: &[
            "vboxadd.service",
            "vboxadd-service.service",
            "virtualbox-guest-utils.service",
        ],
    },
    Tools {
        name: "Hyper-V daemons",
        files: &[
            "/usr/sbin/hv_kvp_daemon",
            "/usr/sbin/hypervkvpd",
            "/usr/libexec/hypervkvpd",
        ],
        services: &[
            "hv-kvp-daemon.service",
            "hv-vss-daemon.service",
            "hv-fcopy-daemon.service",
            "hypervkvpd.service",
            "hypervvssd.service",
            "hypervfcopyd.service",
        ],
    },
];

/// Names of the foreign guest tools installed in the guest.
pub(crate) fn find(fs: &GuestFs) -> Vec<String> {
    TOOLS
        .iter()
        .filter(|t| installed(fs, t))
        .map(|t| t.name.to_string())
        .collect()
}

fn installed(fs: &GuestFs, t: &Tools) -> bool {
    t.files.iter().any(|f| fs.exists(f))
        || fs.list("/opt").unwrap_or_default().iter().any(|d| {
            t.files
                .iter()
                .any(|f| f.strip_prefix("/opt/").is_some_and(|p| d.starts_with(p)))
        })
}

pub(super) fn run(ctx: &mut Ctx<'_>) -> crate::Result<()> {
    let found: Vec<&Tools> = TOOLS.iter().filter(|t| installed(ctx.fs, t)).collect();
    if found.is_empty() {
        ctx.skip(NAME, "no VMware, VirtualBox or Hyper-V guest tools found");
        return Ok(());
    }
    if !ctx.options.disable_foreign_tools {
        for t in found {
            ctx.skip(NAME, format!("{} installed; services left enabled (ask for disable_foreign_tools to disable them)", t.name));
        }
        return Ok(());
    }
    for t in found {
        let removed = disable_services(ctx.fs, t.services)?;
        if removed.is_empty() {
            ctx.skip(
                NAME,
                format!("{} installed, but none of its services is enabled", t.name),
            );
        }
        for (path, target) in removed {
            ctx.changed(Change {
                fixup: NAME.into(),
                path,
                action: Action::Removed,
                backup: None,
                details: vec![format!(
                    "{}: service disabled (the link pointed to {target})",
                    t.name
                )],
            });
        }
    }
    Ok(())
}

/// Removes the `.wants`/`.requires` links that enable `services`, as
/// `systemctl disable` does. Returns each link removed with its target.
fn disable_services(fs: &GuestFs, services: &[&str]) -> crate::Result<Vec<(String, String)>> {
    let mut removed = Vec::new();
    for base in ["/etc/systemd/system"] {
        for dir in fs.list(base)? {
            if !(dir.ends_with(".wants") || dir.ends_with(".requires")) {
                continue;
            }
            for unit in fs.list(&format!("{base}/{dir}"))? {
                if !services.contains(&unit.as_str()) {
                    continue;
                }
                let guest_path = format!("{base}/{dir}/{unit}");
                // The link itself, not what it points to.
                let host = fs.host_path(&format!("{base}/{dir}"))?.join(&unit);
                let target = std::fs::read_link(&host)
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                std::fs::remove_file(&host).map_err(crate::Error::io("removing", &host))?;
                removed.push((guest_path, target));
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_disables_vmware_tools() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::write(root.join("usr/bin/vmtoolsd"), "").unwrap();
        let wants = root.join("etc/systemd/system/multi-user.target.wants");
        std::fs::create_dir_all(&wants).unwrap();
        std::os::unix::fs::symlink(
            "/lib/systemd/system/open-vm-tools.service",
            wants.join("open-vm-tools.service"),
        )
        .unwrap();
        std::os::unix::fs::symlink("/lib/systemd/system/ssh.service", wants.join("ssh.service"))
            .unwrap();
        let fs = GuestFs::new(root);
        assert_eq!(find(&fs), ["VMware Tools (open-vm-tools)"]);
        let removed = disable_services(&fs, TOOLS[0].services).unwrap();
        assert_eq!(removed.len(), 1);
        assert!(removed[0].1.ends_with("open-vm-tools.service"));
        assert!(!wants.join("open-vm-tools.service").exists());
        assert!(wants.join("ssh.service").symlink_metadata().is_ok());
    }
}
