//! The initramfs of every installed kernel, rebuilt by the guest's own tool
//! in a chroot, with the Xen PV drivers and the emulated-disk drivers a
//! XenServer VM boots with. The old image is kept beside the new one.

use super::Ctx;
use crate::chroot::Chroot;
use crate::report::{Action, Change, InitramfsTool, Kernel};

const NAME: &str = "initramfs";

/// Drivers a XenServer HVM guest needs before its root is found: the PV
/// block and network drivers, and the emulated IDE/SATA and SCSI disk
/// drivers it boots on until the PV drivers take over.
pub const DRIVERS: &[&str] = &[
    "xen-blkfront",
    "xen-netfront",
    "ata_piix",
    "ahci",
    "sd_mod",
    "sr_mod",
];

const DRACUT_CONF: &str = "/etc/dracut.conf.d/90-xenlift.conf";
const INITRAMFS_MODULES: &str = "/etc/initramfs-tools/modules";

pub(super) fn run(ctx: &mut Ctx<'_>) -> crate::Result<()> {
    let Some(tool) = ctx.info.initramfs_tool else {
        ctx.skip(NAME, "no initramfs tool (initramfs-tools, dracut) in the guest: the kernel must boot without one, left as is");
        return Ok(());
    };
    let kernels: Vec<&Kernel> = ctx
        .info
        .kernels
        .iter()
        .filter(|k| k.initramfs.is_some())
        .collect();
    if kernels.is_empty() {
        ctx.skip(NAME, "no installed kernel with an initramfs found in /boot");
        return Ok(());
    }
    // Only modules need adding; built-in drivers are always there.
    let mut modules: Vec<&str> = Vec::new();
    for k in &kernels {
        let table = ModuleTable::read(ctx, &k.version)?;
        for d in DRIVERS {
            match table.kind(d) {
                DriverKind::Module if !modules.contains(d) => modules.push(d),
                DriverKind::Absent => {
                    ctx.skip(NAME, format!("kernel {} has no {d} driver", k.version))
                }
                _ => {}
            }
        }
    }
    match tool {
        InitramfsTool::InitramfsTools => initramfs_tools(ctx, &kernels, &modules),
        InitramfsTool::Dracut => dracut(ctx, &kernels, &modules),
        InitramfsTool::Mkinitrd => {
            ctx.skip(NAME, "mkinitrd (without dracut) is not supported yet: add xen-blkfront, xen-netfront, ata_piix and ahci to its module list by hand");
            Ok(())
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum DriverKind {
    Module,
    BuiltIn,
    Absent,
}

/// Which drivers a kernel has, from its modules.dep and modules.builtin.
struct ModuleTable {
    modules: Vec<String>,
    builtin: Vec<String>,
}

fn module_name(path: &str) -> Option<String> {
    let file = path.trim().rsplit('/').next()?;
    let name = file.split(".ko").next()?;
    Some(name.replace('-', "_"))
}

impl ModuleTable {
    fn read(ctx: &Ctx<'_>, version: &str) -> crate::Result<ModuleTable> {
        let dir = format!("/lib/modules/{version}");
        let dep = ctx
            .fs
            .read(&format!("{dir}/modules.dep"))?
            .unwrap_or_default();
        let builtin = ctx
            .fs
            .read(&format!("{dir}/modules.builtin"))?
            .unwrap_or_default();
        Ok(ModuleTable {
            modules: dep
                .lines()
                .filter_map(|l| module_name(l.split(':').next()?))
                .collect(),
            builtin: builtin.lines().filter_map(module_name).collect(),
        })
    }

    fn kind(&self, driver: &str) -> DriverKind {
        let name = driver.replace('-', "_");
        if self.modules.contains(&name) {
            DriverKind::Module
        } else if self.builtin.contains(&name) {
            DriverKind::BuiltIn
        } else {
            DriverKind::Absent
        }
    }
}

/// Debian and Ubuntu: list the modules in /etc/initramfs-tools/modules so
/// every later rebuild keeps them, then rebuild. A guest with MODULES=dep
/// would take the host's hardware as its own in the chroot, so this build
/// uses a copy of its configuration with MODULES=most.
fn initramfs_tools(ctx: &mut Ctx<'_>, kernels: &[&Kernel], modules: &[&str]) -> crate::Result<()> {
    let current = ctx.fs.read(INITRAMFS_MODULES)?.unwrap_or_default();
    let listed: Vec<String> = current
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| !w.starts_with('#'))
        .map(|w| w.replace('-', "_"))
        .collect();
    let missing: Vec<&&str> = modules
        .iter()
        .filter(|m| !listed.contains(&m.replace('-', "_")))
        .collect();
    if !missing.is_empty() {
        let mut text = current.clone();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("# Added by xenlift: drivers to boot as a XenServer VM.\n");
        for m in &missing {
            text.push_str(m);
            text.push('\n');
        }
        let details = vec![format!(
            "added {}",
            missing
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        )];
        let change = if current.is_empty() && !ctx.fs.exists(INITRAMFS_MODULES) {
            ctx.fs
                .create(NAME, INITRAMFS_MODULES, &text, 0o644, details)
        } else {
            ctx.fs.replace(NAME, INITRAMFS_MODULES, &text, details)
        };
        ctx.record(NAME, INITRAMFS_MODULES, change);
    }
    let dep = modules_setting(ctx)? == "dep";
    let chroot = Chroot::enter(ctx.fs)?;
    let conf_dir = "/var/tmp/xenlift-initramfs-tools";
    if dep {
        chroot.run("rm", &["-rf", conf_dir])?;
        chroot.run("cp", &["-a", "/etc/initramfs-tools", conf_dir])?;
        let host = ctx.fs.host_path(&format!("{conf_dir}/conf.d/zz-xenlift"))?;
        std::fs::write(&host, "MODULES=most\n").map_err(crate::Error::io("writing", &host))?;
    }
    for k in kernels {
        let Some(image) = k.initramfs.as_deref() else {
            continue;
        };
        let mut args = vec!["-o", "IMAGE", k.version.as_str()];
        if dep {
            args.splice(0..0, ["-d", conf_dir]);
        }
        rebuild(
            ctx,
            &chroot,
            k,
            image,
            "mkinitramfs",
            &args,
            "lsinitramfs",
            dep,
        );
    }
    if dep {
        chroot.run("rm", &["-rf", conf_dir])?;
    }
    Ok(())
}

/// The MODULES= setting in effect (conf.d files override initramfs.conf).
fn modules_setting(ctx: &Ctx<'_>) -> crate::Result<String> {
    let mut files = vec!["/etc/initramfs-tools/initramfs.conf".to_string()];
    files.extend(
        ctx.fs
            .list("/etc/initramfs-tools/conf.d")?
            .into_iter()
            .map(|f| format!("/etc/initramfs-tools/conf.d/{f}")),
    );
    let mut value = "most".to_string();
    for f in files {
        for line in ctx.fs.read(&f)?.unwrap_or_default().lines() {
            if let Some(v) = line.trim().strip_prefix("MODULES=") {
                value = v.trim_matches('"').to_string();
            }
        }
    }
    Ok(value)
}

/// RHEL, Fedora, SUSE and dracut on Debian: a dracut.conf.d file keeps the
/// drivers in every later rebuild; this rebuild is generic (no host-only),
/// since in the chroot the host's hardware would be taken for the guest's.
fn dracut(ctx: &mut Ctx<'_>, kernels: &[&Kernel], modules: &[&str]) -> crate::Result<()> {
    let text = dracut_conf(modules);
    let change = ctx.fs.create(
        NAME,
        DRACUT_CONF,
        &text,
        0o644,
        vec![format!("add_drivers {}", modules.join(" "))],
    );
    ctx.record(NAME, DRACUT_CONF, change);
    let chroot = Chroot::enter(ctx.fs)?;
    for k in kernels {
        let Some(image) = k.initramfs.as_deref() else {
            continue;
        };
        let args = [
            "--force",
            "--no-hostonly",
            "--kver",
            k.version.as_str(),
            "IMAGE",
        ];
        rebuild(ctx, &chroot, k, image, "dracut", &args, "lsinitrd", false);
    }
    Ok(())
}

/// The dracut.conf.d file: the drivers added, and taken out of any
/// `omit_drivers` an earlier file set (dracut leaves out an omitted driver
/// even when it is added; the files are bash, sourced in name order).
fn dracut_conf(modules: &[&str]) -> String {
    let list = modules.join(" ");
    format!(
        "# Written by xenlift: drivers to boot as a XenServer VM, kept in host-only images too.\n\
         add_drivers+=\" {list} \"\n\
         # An omitted driver is left out even when added: never omit these.\n\
         omit_drivers=\" $(for d in $omit_drivers; do case \" {list} \" in *\" $d \"*) ;; *) printf '%s ' \"$d\" ;; esac; done)\"\n"
    )
}

/// Rebuilds one image into a new file (`IMAGE` in `args`), checks it holds
/// the PV drivers, then keeps the old one as `*.xenlift-orig` and moves the
/// new one in. A failure leaves the old image in place.
#[allow(clippy::too_many_arguments)]
fn rebuild(
    ctx: &mut Ctx<'_>,
    chroot: &Chroot,
    k: &Kernel,
    image: &str,
    tool: &str,
    args: &[&str],
    lister: &str,
    dep: bool,
) {
    let new = format!("{image}.xenlift-new");
    let args: Vec<&str> = args
        .iter()
        .map(|a| if *a == "IMAGE" { new.as_str() } else { a })
        .collect();
    let result = (|| -> crate::Result<Vec<String>> {
        check_space(ctx, image)?;
        chroot.run(tool, &args)?;
        let listing = chroot.run(lister, &[new.as_str()])?;
        let mut found = Vec::new();
        for d in ["xen-blkfront", "xen-netfront"] {
            if listing.lines().any(|l| l.contains(&format!("/{d}.ko"))) {
                found.push(d.to_string());
            }
        }
        Ok(found)
    })();
    let host = |p: &str| ctx.fs.host_path(p);
    match result {
        Ok(found) => {
            let moved = (|| -> crate::Result<()> {
                let (old, backup, new_host) = (
                    host(image)?,
                    host(&crate::guestfs::backup_name(image))?,
                    host(&new)?,
                );
                if !backup.exists() {
                    std::fs::rename(&old, &backup).map_err(crate::Error::io("keeping", &old))?;
                }
                std::fs::rename(&new_host, &old).map_err(crate::Error::io("replacing", &old))
            })();
            if let Err(e) = moved {
                ctx.skip(NAME, format!("{image}: {e}"));
                return;
            }
            let mut details = vec![format!("rebuilt by {tool} for kernel {}", k.version)];
            if dep {
                details.push("built with MODULES=most (the guest's MODULES=dep would take the host's hardware for its own); the guest's configuration still says dep".into());
            }
            details.push(format!(
                "holds {}",
                if found.is_empty() {
                    "no Xen PV driver module (built in?)".to_string()
                } else {
                    found.join(", ")
                }
            ));
            ctx.changed(Change {
                fixup: NAME.into(),
                path: image.into(),
                action: Action::Regenerated,
                backup: Some(crate::guestfs::backup_name(image)),
                details,
            });
        }
        Err(e) => {
            if let Ok(p) = host(&new) {
                let _ = std::fs::remove_file(p);
            }
            ctx.skip(
                NAME,
                format!(
                    "{image} (kernel {}) not rebuilt, the old image is unchanged: {e}",
                    k.version
                ),
            );
        }
    }
}

/// Refuses when the filesystem holding the image has too little room for
/// the backup and a new image (estimated at 3x the old, at least 64 MiB).
fn check_space(ctx: &Ctx<'_>, image: &str) -> crate::Result<()> {
    let path = ctx.fs.host_path(image)?;
    let old = std::fs::metadata(&path)
        .map_err(crate::Error::io("reading", &path))?
        .len();
    let dir = path.parent().unwrap_or(&path);
    let stat = nix::sys::statvfs::statvfs(dir)
        .map_err(|e| crate::Error::io("checking free space of", dir)(e.into()))?;
    let free = stat.blocks_available() as u64 * stat.fragment_size() as u64;
    let need = (old * 3).max(64 << 20);
    if free < need {
        return Err(crate::Error::Io {
            action: "checking free space of",
            path: dir.to_path_buf(),
            source: std::io::Error::other(format!(
                "{} MiB free, about {} MiB needed for the old image's backup and the new image; free space in /boot on the source",
                free >> 20,
                need >> 20
            )),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sourced by bash after a host-only file that omits some of the
    /// drivers, as dracut sources its configuration.
    #[test]
    fn dracut_conf_takes_its_drivers_out_of_omit_drivers() {
        let conf = dracut_conf(DRIVERS);
        let script = format!(
            "omit_drivers+=\" ata_piix ahci ata_generic \"\nadd_drivers=\"\"\n{conf}\necho \"[$omit_drivers]\"; echo \"[$add_drivers]\""
        );
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("[ ata_generic ]"));
        assert_eq!(
            lines.next(),
            Some("[ xen-blkfront xen-netfront ata_piix ahci sd_mod sr_mod ]")
        );
        // Without an earlier omit_drivers, nothing is omitted.
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("{conf}\necho \"[$omit_drivers]\""))
            .output()
            .expect("bash");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[ ]");
    }

    #[test]
    fn module_names_from_modules_dep_and_builtin() {
        assert_eq!(
            module_name("kernel/drivers/block/xen-blkfront.ko.xz").as_deref(),
            Some("xen_blkfront")
        );
        assert_eq!(
            module_name("kernel/drivers/ata/ahci.ko").as_deref(),
            Some("ahci")
        );
        let t = ModuleTable {
            modules: vec!["xen_blkfront".into()],
            builtin: vec!["sd_mod".into()],
        };
        assert_eq!(t.kind("xen-blkfront"), DriverKind::Module);
        assert_eq!(t.kind("sd_mod"), DriverKind::BuiltIn);
        assert_eq!(t.kind("ahci"), DriverKind::Absent);
    }
}
