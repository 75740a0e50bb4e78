//! What a mounted Linux root is: distribution, kernels, initramfs tool,
//! bootloader.

pub(crate) mod ext;

use crate::esp::Esp;
use crate::guestfs::GuestFs;
use crate::report::{Bootloader, InitramfsTool, Kernel, OsInfo};

/// Whether a mounted filesystem is a Linux root: it has an fstab and an os-release.
pub(crate) fn is_root(fs: &GuestFs) -> bool {
    fs.exists("/etc/fstab") && (fs.exists("/etc/os-release") || fs.exists("/usr/lib/os-release"))
}

/// `/etc/os-release` (or `/usr/lib/os-release`).
pub(crate) fn os_release(fs: &GuestFs) -> crate::Result<OsInfo> {
    let text = match fs.read("/etc/os-release")? {
        Some(t) => t,
        None => fs.read("/usr/lib/os-release")?.unwrap_or_default(),
    };
    Ok(parse_os_release(&text))
}

fn parse_os_release(text: &str) -> OsInfo {
    let mut os = OsInfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value
            .trim()
            .trim_matches('"')
            .trim_matches('\'')
            .to_string();
        match key.trim() {
            "ID" => os.id = value,
            "ID_LIKE" => os.id_like = value.split_whitespace().map(str::to_string).collect(),
            "VERSION_ID" => os.version_id = Some(value),
            "PRETTY_NAME" => os.pretty_name = Some(value),
            _ => {}
        }
    }
    os
}

/// Kernels with modules in /lib/modules and an image in /boot (or beside
/// the modules, as Fedora keeps it).
pub(crate) fn kernels(fs: &GuestFs) -> crate::Result<Vec<Kernel>> {
    let mut out = Vec::new();
    for version in fs.list("/lib/modules")? {
        let first = |candidates: &[String]| candidates.iter().find(|p| fs.exists(p)).cloned();
        let image = first(&[
            format!("/boot/vmlinuz-{version}"),
            format!("/boot/vmlinux-{version}"),
            format!("/boot/kernel-{version}"),
            format!("/lib/modules/{version}/vmlinuz"),
        ]);
        if image.is_none() {
            continue;
        }
        let initramfs = first(&[
            format!("/boot/initrd.img-{version}"),
            format!("/boot/initramfs-{version}.img"),
            format!("/boot/initrd-{version}"),
        ]);
        out.push(Kernel {
            version,
            image,
            initramfs,
        });
    }
    Ok(out)
}

pub(crate) fn initramfs_tool(fs: &GuestFs) -> Option<InitramfsTool> {
    let any = |paths: &[&str]| paths.iter().any(|p| fs.exists(p));
    if any(&["/usr/sbin/update-initramfs", "/sbin/update-initramfs"])
        && fs.exists("/etc/initramfs-tools")
    {
        Some(InitramfsTool::InitramfsTools)
    } else if any(&["/usr/bin/dracut", "/usr/sbin/dracut", "/sbin/dracut"]) {
        Some(InitramfsTool::Dracut)
    } else if any(&["/sbin/mkinitrd", "/usr/sbin/mkinitrd"]) {
        Some(InitramfsTool::Mkinitrd)
    } else {
        None
    }
}

/// GRUB for BIOS from its module directory; UEFI loaders from the ESP.
pub(crate) fn bootloaders(fs: &GuestFs, esp: Option<&Esp>) -> crate::Result<Vec<Bootloader>> {
    let mut out = Vec::new();
    if fs.exists("/boot/grub/i386-pc") || fs.exists("/boot/grub2/i386-pc") {
        out.push(Bootloader::GrubBios);
    }
    let Some(esp) = esp else {
        return Ok(out);
    };
    let fallback = esp.find("/EFI/BOOT", "BOOTX64.EFI")?.is_some();
    for entry in esp.list("/EFI")?.unwrap_or_default() {
        let Some(dir) = entry.strip_suffix('/') else {
            continue;
        };
        if dir.eq_ignore_ascii_case("BOOT") {
            continue;
        }
        let path = format!("/EFI/{dir}");
        let shim = esp.find(&path, "shimx64.efi")?.is_some();
        let grub = esp.find(&path, "grubx64.efi")?.is_some();
        if shim || grub {
            out.push(Bootloader::Uefi {
                dir: dir.to_string(),
                shim,
                fallback,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_os_release() {
        let os = parse_os_release("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n");
        assert_eq!(os.id, "debian");
        assert_eq!(os.version_id.as_deref(), Some("12"));
        let os = parse_os_release("ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n");
        assert_eq!(os.id_like, ["rhel", "centos", "fedora"]);
    }
}
