//! `/etc/crypttab`: the encrypted device's name becomes `UUID=` (the LUKS
//! header's) or `PARTUUID=`. Key files, options and comments stay.

use super::fstab::{field_span, Edit};
use super::{Ctx, Resolve, Rewrite};

const NAME: &str = "crypttab";

pub(super) fn run(ctx: &mut Ctx<'_>) -> crate::Result<()> {
    let Some(text) = ctx.fs.read("/etc/crypttab")? else {
        ctx.skip(NAME, "/etc/crypttab does not exist");
        return Ok(());
    };
    let edit = rewrite(&text, ctx.resolver);
    for u in &edit.unresolved {
        ctx.skip(NAME, u.clone());
    }
    if edit.details.is_empty() && edit.unresolved.is_empty() {
        ctx.skip(NAME, "no hardware-bound device names in /etc/crypttab");
        return Ok(());
    }
    let change = ctx
        .fs
        .replace(NAME, "/etc/crypttab", &edit.text, edit.details);
    ctx.record(NAME, "/etc/crypttab", change);
    Ok(())
}

pub(crate) fn rewrite(text: &str, resolver: &dyn Resolve) -> Edit {
    let mut edit = Edit::default();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let body = line.trim_start();
        let span = field_span(line, 1);
        let (false, Some((start, end))) = (body.is_empty() || body.starts_with('#'), span) else {
            edit.text.push_str(line);
            continue;
        };
        let spec = &line[start..end];
        let name = field_span(line, 0)
            .and_then(|(a, b)| line.get(a..b))
            .unwrap_or("");
        let options = field_span(line, 3)
            .and_then(|(a, b)| line.get(a..b))
            .unwrap_or("");
        // Plain dm-crypt and random-key swap have no header to name by UUID.
        let plain = options
            .split(',')
            .any(|o| o == "plain" || o == "swap" || o == "tmp" || o.starts_with("tmp="));
        let rewrite = if plain {
            resolver.rewrite_partition(spec)
        } else {
            resolver.rewrite(spec, Some("crypto_LUKS"))
        };
        match rewrite {
            Rewrite::Replace(new) => {
                edit.details
                    .push(format!("line {}: {spec} -> {new} ({name})", i + 1));
                edit.text.push_str(&line[..start]);
                edit.text.push_str(&new);
                edit.text.push_str(&line[end..]);
            }
            Rewrite::Unresolved(why) => {
                edit.unresolved.push(format!(
                    "/etc/crypttab line {}: {spec} ({name}) left as is: {why}",
                    i + 1
                ));
                edit.text.push_str(line);
            }
            Rewrite::Keep => edit.text.push_str(line),
        }
    }
    edit
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::{self, DeviceName};

    /// Disk 0: LUKS volumes have UUIDs; partition 3 (plain swap) only a PARTUUID.
    struct Luks;
    impl Resolve for Luks {
        fn rewrite(&self, spec: &str, fs_type: Option<&str>) -> Rewrite {
            match devices::parse(spec) {
                DeviceName::Kernel {
                    disk: 0,
                    partition: Some(3),
                } => Rewrite::Replace("PARTUUID=abcd-03".into()),
                DeviceName::Kernel {
                    disk: 0,
                    partition: Some(4),
                } if fs_type.is_none() => Rewrite::Unresolved("partition has no PARTUUID".into()),
                DeviceName::Kernel {
                    disk: 0,
                    partition: Some(n),
                }
                | DeviceName::Hardware { partition: Some(n) } => {
                    Rewrite::Replace(format!("UUID=luks{n}"))
                }
                d if d.is_hardware_bound() => Rewrite::Unresolved("not on the disks given".into()),
                _ => Rewrite::Keep,
            }
        }

        fn rewrite_partition(&self, spec: &str) -> Rewrite {
            match devices::parse(spec) {
                DeviceName::Kernel {
                    disk: 0,
                    partition: Some(3),
                } => Rewrite::Replace("PARTUUID=abcd-03".into()),
                _ => self.rewrite(spec, None),
            }
        }
    }

    #[test]
    fn rewrites_devices_and_keeps_keyfiles() {
        let text = "# <target name>\t<source device>\t<key file>\t<options>
sda2_crypt /dev/sda2 none luks,discard
data\t/dev/disk/by-id/nvme-Samsung_970-part5\t/etc/keys/data.key\tluks,keyscript=/bin/cat
home UUID=1111-2222 /dev/disk/by-id/usb-Stick-part1:/keys/home luks
cswap /dev/sda3 /dev/urandom swap,cipher=aes-xts-plain64,size=256
ctmp /dev/sda4 /dev/urandom tmp=ext4
other /dev/sdc1 none luks
";
        let e = rewrite(text, &Luks);
        let want = text
            .replace("sda2_crypt /dev/sda2", "sda2_crypt UUID=luks2")
            .replace("/dev/disk/by-id/nvme-Samsung_970-part5\t", "UUID=luks5\t")
            .replace("cswap /dev/sda3", "cswap PARTUUID=abcd-03");
        assert_eq!(e.text, want);
        assert_eq!(e.details.len(), 3);
        // The key file on a USB stick is a key path, not the device: untouched.
        assert!(e
            .text
            .contains("/dev/disk/by-id/usb-Stick-part1:/keys/home"));
        assert_eq!(e.unresolved.len(), 2, "{:?}", e.unresolved);
        assert!(e.unresolved[0].contains("ctmp"));
        assert!(e.unresolved[1].contains("/dev/sdc1"));
    }
}
