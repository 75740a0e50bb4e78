//! UEFI boot entries live in the old machine's NVRAM; a new VM starts with
//! an empty one and boots `\EFI\BOOT\BOOTX64.EFI` or nothing. When that
//! fallback loader is missing, the distribution's loader (the shim + GRUB
//! pair where shim is used) is copied there.

use super::Ctx;
use crate::esp::Esp;
use crate::report::{Action, Bootloader, Change};

const NAME: &str = "uefi-fallback";

pub(super) fn run(ctx: &mut Ctx<'_>) -> crate::Result<()> {
    let Some(device) = ctx.esp else {
        ctx.skip(
            NAME,
            "no EFI system partition: the guest boots through BIOS",
        );
        return Ok(());
    };
    let esp = Esp::new(device);
    if esp.find("/EFI/BOOT", "BOOTX64.EFI")?.is_some() {
        ctx.skip(NAME, "\\EFI\\BOOT\\BOOTX64.EFI already exists");
        return Ok(());
    }
    let preferred = preferred_dir(ctx);
    let Some(Bootloader::Uefi { dir, shim, .. }) = preferred else {
        ctx.skip(NAME, "no shimx64.efi or grubx64.efi in any \\EFI directory of the ESP: nothing to boot by default");
        return Ok(());
    };
    let dir = dir.clone();
    let shim = *shim;
    if esp.find("/EFI", "BOOT")?.is_none() {
        esp.mkdir("/EFI/BOOT")?;
    }
    // Shim loads grubx64.efi (and mmx64.efi) from its own directory; GRUB
    // looks for grub.cfg beside itself when its prefix does not hold one.
    let mut plan: Vec<(&str, &str)> = Vec::new();
    if shim {
        plan.push(("shimx64.efi", "BOOTX64.EFI"));
        plan.extend([("grubx64.efi", "grubx64.efi"), ("mmx64.efi", "mmx64.efi")]);
    } else {
        plan.push(("grubx64.efi", "BOOTX64.EFI"));
    }
    plan.push(("grub.cfg", "grub.cfg"));
    for (from, to) in plan {
        let Some(real) = esp.find(&format!("/EFI/{dir}"), from)? else {
            continue;
        };
        let source = format!("/EFI/{dir}/{real}");
        let target = format!("/EFI/BOOT/{to}");
        if esp.find("/EFI/BOOT", to)?.is_some() {
            continue;
        }
        esp.copy(&source, &target)?;
        ctx.changed(Change {
            fixup: NAME.into(),
            path: format!("ESP:{}", target.replace('/', "\\")),
            action: Action::Created,
            backup: None,
            details: vec![format!("copy of {}", source.replace('/', "\\"))],
        });
    }
    Ok(())
}

/// The loader to make the default: the distribution's own directory first.
fn preferred_dir<'a>(ctx: &'a Ctx<'_>) -> Option<&'a Bootloader> {
    let os = &ctx.info.os;
    let uefi = || {
        ctx.info
            .bootloaders
            .iter()
            .filter(|b| matches!(b, Bootloader::Uefi { .. }))
    };
    uefi()
        .find(|b| match b {
            Bootloader::Uefi { dir, .. } => {
                dir.eq_ignore_ascii_case(&os.id)
                    || os.id_like.iter().any(|l| dir.eq_ignore_ascii_case(l))
            }
            _ => false,
        })
        .or_else(|| uefi().next())
}
