//! Device names in the boot configuration: `root=`/`resume=` in
//! `/etc/default/grub`, grub.cfg, BLS entries, grubenv and
//! `/etc/kernel/cmdline`; `RESUME=` for initramfs-tools; and GRUB's
//! `device.map`, which names whole disks by kernel name.

use super::fstab::Edit;
use super::{kernel_args, Ctx, Resolve, Rewrite};
use crate::devices;

const NAME: &str = "bootloader-config";

/// Which lines of a file hold kernel parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    DefaultGrub,
    GrubCfg,
    BlsEntry,
    WholeFile,
    InitramfsResume,
}

pub(super) fn run(ctx: &mut Ctx<'_>) -> crate::Result<()> {
    let mut files: Vec<(String, Kind)> = vec![
        ("/etc/default/grub".into(), Kind::DefaultGrub),
        ("/boot/grub/grub.cfg".into(), Kind::GrubCfg),
        ("/boot/grub2/grub.cfg".into(), Kind::GrubCfg),
        ("/etc/kernel/cmdline".into(), Kind::WholeFile),
        (
            "/etc/initramfs-tools/conf.d/resume".into(),
            Kind::InitramfsResume,
        ),
        (
            "/etc/initramfs-tools/initramfs.conf".into(),
            Kind::InitramfsResume,
        ),
    ];
    for name in ctx.fs.list("/boot/loader/entries")? {
        if name.ends_with(".conf") {
            files.push((format!("/boot/loader/entries/{name}"), Kind::BlsEntry));
        }
    }
    let mut seen_any = false;
    for (path, kind) in files {
        let Some(text) = ctx.fs.read(&path)? else {
            continue;
        };
        seen_any = true;
        let edit = rewrite(&text, kind, ctx.resolver);
        for u in &edit.unresolved {
            ctx.skip(NAME, format!("{path}: {u}"));
        }
        if !edit.details.is_empty() {
            let change = ctx.fs.replace(NAME, &path, &edit.text, edit.details);
            ctx.record(NAME, &path, change);
        }
    }
    for path in ["/boot/grub/grubenv", "/boot/grub2/grubenv"] {
        if let Some(text) = ctx.fs.read(path)? {
            seen_any = true;
            let edit = rewrite_grubenv(&text, ctx.resolver);
            for u in &edit.unresolved {
                ctx.skip(NAME, format!("{path}: {u}"));
            }
            if !edit.details.is_empty() {
                let change = ctx.fs.replace(NAME, path, &edit.text, edit.details);
                ctx.record(NAME, path, change);
            }
        }
    }
    for path in ["/boot/grub/device.map", "/boot/grub2/device.map"] {
        if let Some(text) = ctx.fs.read(path)? {
            if let Some(why) = stale_device_map(&text) {
                let change = ctx.fs.disable(NAME, path, vec![why]);
                ctx.record(NAME, path, change);
            }
        }
    }
    if !seen_any {
        ctx.skip(
            NAME,
            "no GRUB, BLS or kernel command line configuration found",
        );
    }
    Ok(())
}

fn wanted(line: &str, kind: Kind) -> bool {
    let t = line.trim_start();
    let first = t.split_whitespace().next().unwrap_or("");
    match kind {
        Kind::DefaultGrub => t.starts_with("GRUB_CMDLINE_LINUX"),
        Kind::GrubCfg => matches!(
            first,
            "linux" | "linux16" | "linuxefi" | "kernel" | "module" | "module2"
        ),
        Kind::BlsEntry => first == "options",
        Kind::WholeFile => !t.starts_with('#'),
        Kind::InitramfsResume => t.starts_with("RESUME="),
    }
}

fn rewrite(text: &str, kind: Kind, resolver: &dyn Resolve) -> Edit {
    let mut edit = Edit::default();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if !wanted(line, kind) {
            edit.text.push_str(line);
            continue;
        }
        let new = if kind == Kind::InitramfsResume {
            resume_setting(line, resolver)
        } else {
            kernel_args::rewrite(line, resolver)
        };
        for c in &new.changed {
            edit.details.push(format!("line {}: {c}", i + 1));
        }
        for u in new.unresolved {
            edit.unresolved.push(format!("line {}: {u}", i + 1));
        }
        edit.text.push_str(&new.line);
    }
    edit
}

/// `RESUME=/dev/sda2` (initramfs-tools), value optionally quoted.
fn resume_setting(line: &str, resolver: &dyn Resolve) -> kernel_args::ArgsEdit {
    let mut out = kernel_args::ArgsEdit {
        line: line.to_string(),
        ..Default::default()
    };
    let Some(eq) = line.find('=') else {
        return out;
    };
    let rest = &line[eq + 1..];
    let value = rest.trim_end().trim_matches('"').trim_matches('\'');
    let Some(at) = rest.find(value).filter(|_| !value.is_empty()) else {
        return out;
    };
    match resolver.rewrite(value, Some("swap")) {
        Rewrite::Replace(new) => {
            let start = eq + 1 + at;
            out.line = format!("{}{new}{}", &line[..start], &line[start + value.len()..]);
            out.changed.push(format!("RESUME={value} -> RESUME={new}"));
        }
        Rewrite::Unresolved(why) => out
            .unresolved
            .push(format!("RESUME={value} left as is: {why}")),
        Rewrite::Keep => {}
    }
    out
}

/// GRUB's environment block is exactly 1024 bytes, padded with `#`: a
/// rewritten `kernelopts=` takes its length from the padding.
fn rewrite_grubenv(text: &str, resolver: &dyn Resolve) -> Edit {
    let mut edit = Edit::default();
    let body_end = text.trim_end_matches('#').len();
    let mut body = String::new();
    for line in text[..body_end].split_inclusive('\n') {
        match line.strip_prefix("kernelopts=") {
            Some(args) => {
                let new = kernel_args::rewrite(args, resolver);
                edit.details
                    .extend(new.changed.iter().map(|c| format!("kernelopts: {c}")));
                edit.unresolved
                    .extend(new.unresolved.iter().map(|u| format!("kernelopts: {u}")));
                body.push_str("kernelopts=");
                body.push_str(&new.line);
            }
            None => body.push_str(line),
        }
    }
    let padding = text.len().saturating_sub(body.len());
    if padding == 0 && !edit.details.is_empty() {
        edit.unresolved
            .push("kernelopts left as is: the 1024-byte environment block is full".into());
        edit.details.clear();
        edit.text = text.to_string();
        return edit;
    }
    edit.text = body + &"#".repeat(padding);
    edit
}

/// Why a device.map must go, if it must: it maps GRUB drives to kernel
/// names of disks, which differ on the new hardware. GRUB probes the disks
/// itself when the file is absent.
fn stale_device_map(text: &str) -> Option<String> {
    let stale: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|dev| devices::parse(dev).is_hardware_bound())
        .collect();
    (!stale.is_empty()).then(|| {
        format!(
            "names disks by hardware ({}); GRUB finds disks without it",
            stale.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixups::test_resolver::Table;

    #[test]
    fn default_grub_only_touches_the_command_line_settings() {
        let text = "GRUB_DEFAULT=0\n# GRUB_CMDLINE_LINUX=\"root=/dev/sda7\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet resume=/dev/sda2\"\nGRUB_CMDLINE_LINUX=\"console=ttyS0 root=/dev/sda1\"\nGRUB_DEVICE=/dev/sda1\n";
        let e = rewrite(text, Kind::DefaultGrub, &Table);
        assert_eq!(
            e.text,
            "GRUB_DEFAULT=0\n# GRUB_CMDLINE_LINUX=\"root=/dev/sda7\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet resume=UUID=u2\"\nGRUB_CMDLINE_LINUX=\"console=ttyS0 root=UUID=u1\"\nGRUB_DEVICE=/dev/sda1\n"
        );
        assert_eq!(
            e.details,
            [
                "line 3: resume=/dev/sda2 -> resume=UUID=u2",
                "line 4: root=/dev/sda1 -> root=UUID=u1"
            ]
        );
    }

    #[test]
    fn grub_cfg_rewrites_kernel_lines_only() {
        let text = "\tset root='hd0,msdos1'\n\tsearch --no-floppy --fs-uuid --set=root 0a1b\n\techo 'root=/dev/sda1'\n\tlinux\t/vmlinuz-6.1 root=/dev/sda1 ro quiet\n\tlinux16 /vmlinuz-3.10 root=/dev/disk/by-path/pci-0000:00:1f.2-ata-1-part3 ro\n\tinitrd\t/initrd.img-6.1\n";
        let e = rewrite(text, Kind::GrubCfg, &Table);
        assert_eq!(
            e.text,
            text.replace(
                "\tlinux\t/vmlinuz-6.1 root=/dev/sda1",
                "\tlinux\t/vmlinuz-6.1 root=UUID=u1"
            )
            .replace(
                "root=/dev/disk/by-path/pci-0000:00:1f.2-ata-1-part3",
                "root=UUID=u3"
            )
        );
        assert_eq!(e.details.len(), 2);
    }

    #[test]
    fn bls_and_initramfs_resume() {
        let e = rewrite(
            "title Fedora\noptions root=/dev/sda3 ro resume=/dev/sdb2\n",
            Kind::BlsEntry,
            &Table,
        );
        assert_eq!(
            e.text,
            "title Fedora\noptions root=UUID=u3 ro resume=/dev/sdb2\n"
        );
        assert_eq!(e.unresolved.len(), 1);

        let e = rewrite(
            "# resume device\nRESUME=/dev/sda2\n",
            Kind::InitramfsResume,
            &Table,
        );
        assert_eq!(e.text, "# resume device\nRESUME=UUID=u2\n");
        let e = rewrite(
            "RESUME=\"/dev/sda5\"\nRESUME=none\n",
            Kind::InitramfsResume,
            &Table,
        );
        assert_eq!(e.text, "RESUME=\"UUID=u5\"\nRESUME=none\n");
    }

    #[test]
    fn grubenv_keeps_its_size() {
        let mut env = "# GRUB Environment Block\nsaved_entry=abc\nkernelopts=root=/dev/sda1 ro resume=/dev/sda2 rhgb\n".to_string();
        env.push_str(&"#".repeat(1024 - env.len()));
        let e = rewrite_grubenv(&env, &Table);
        assert_eq!(e.text.len(), 1024);
        assert!(e
            .text
            .contains("kernelopts=root=UUID=u1 ro resume=UUID=u2 rhgb\n#"));
        assert_eq!(e.details.len(), 2);
    }

    #[test]
    fn device_map_with_kernel_names_is_stale() {
        assert!(stale_device_map("(hd0)\t/dev/sda\n(hd1) /dev/disk/by-id/ata-X\n").is_some());
        assert!(stale_device_map("# comment\n(hd0) /dev/disk/by-uuid/x\n").is_none());
    }
}
