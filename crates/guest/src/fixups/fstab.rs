//! `/etc/fstab`: hardware-bound device names become `UUID=`/`PARTUUID=`.
//! Everything else (comments, tabs, options, tags, bind mounts, tmpfs,
//! network filesystems) stays byte for byte.

use super::{Ctx, Resolve, Rewrite};

const NAME: &str = "fstab";

pub(super) fn run(ctx: &mut Ctx<'_>) -> crate::Result<()> {
    let Some(text) = ctx.fs.read("/etc/fstab")? else {
        ctx.skip(NAME, "/etc/fstab does not exist");
        return Ok(());
    };
    let edit = rewrite(&text, ctx.resolver);
    for u in &edit.unresolved {
        ctx.skip(NAME, u.clone());
    }
    if edit.details.is_empty() && edit.unresolved.is_empty() {
        ctx.skip(NAME, "no hardware-bound device names in /etc/fstab");
        return Ok(());
    }
    let change = ctx.fs.replace(NAME, "/etc/fstab", &edit.text, edit.details);
    ctx.record(NAME, "/etc/fstab", change);
    Ok(())
}

/// The result of rewriting a table file.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Edit {
    pub(crate) text: String,
    /// One line per change: `line N: OLD -> NEW`.
    pub(crate) details: Vec<String>,
    /// Hardware-bound names left as they were, with why.
    pub(crate) unresolved: Vec<String>,
}

/// Byte range of the `n`-th whitespace-separated field of a line.
pub(crate) fn field_span(line: &str, n: usize) -> Option<(usize, usize)> {
    let mut fields = 0;
    let mut start = None;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                if fields == n {
                    return Some((s, i));
                }
                fields += 1;
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    match start {
        Some(s) if fields == n => Some((s, line.len())),
        _ => None,
    }
}

fn field(line: &str, n: usize) -> Option<&str> {
    field_span(line, n).and_then(|(a, b)| line.get(a..b))
}

pub(crate) fn rewrite(text: &str, resolver: &dyn Resolve) -> Edit {
    let mut edit = Edit::default();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            edit.text.push_str(line);
            continue;
        }
        let (Some((start, end)), Some(mountpoint)) = (field_span(line, 0), field(line, 1)) else {
            edit.text.push_str(line);
            continue;
        };
        let spec = &line[start..end];
        let fs_type = field(line, 2).filter(|t| *t != "auto" && *t != "none");
        let options = field(line, 3).unwrap_or("");
        if options.split(',').any(|o| o == "bind" || o == "rbind") {
            edit.text.push_str(line);
            continue;
        }
        match resolver.rewrite(spec, fs_type) {
            Rewrite::Replace(new) => {
                edit.details
                    .push(format!("line {}: {spec} -> {new} ({mountpoint})", i + 1));
                edit.text.push_str(&line[..start]);
                edit.text.push_str(&new);
                edit.text.push_str(&line[end..]);
            }
            Rewrite::Unresolved(why) => {
                edit.unresolved.push(format!(
                    "/etc/fstab line {}: {spec} ({mountpoint}) left as is: {why}",
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
    use crate::fixups::test_resolver::Table;

    const FSTAB: &str = "# /etc/fstab: static file system information.
#
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
/dev/sda1\t/\text4\terrors=remount-ro\t0\t1
# /boot was on /dev/sda2 during installation
UUID=0a1b2c3d-4e5f /boot           ext4    defaults        0       2
LABEL=data   /srv/data  xfs  noatime,nofail  0 2
/dev/sda3    none       swap  sw   0 0
/dev/disk/by-id/ata-ST2000DM008-part4  /home  ext4  defaults,nofail,x-systemd.device-timeout=5  0  2
  /dev/sda5\t/var ext4 defaults 0 2
/srv/data/www  /var/www  none  bind  0 0
/dev/sda6  /mnt/old  none  bind  0 0
tmpfs /tmp tmpfs defaults,nosuid,nodev 0 0
nas:/export /mnt/nas nfs defaults 0 0
/dev/sdb1 /backup ext4 defaults,nofail 0 2
/dev/sda9 /boot/efi vfat umask=0077 0 1
/dev/mapper/vg0-root / ext4 defaults 0 1
/dev/sr0 /media/cdrom0 udf,iso9660 user,noauto 0 0
";

    #[test]
    fn rewrites_only_hardware_bound_names() {
        let e = rewrite(FSTAB, &Table);
        let want = FSTAB
            .replace("/dev/sda1\t/\t", "UUID=u1\t/\t")
            .replace("/dev/sda3    none", "UUID=u3    none")
            .replace(
                "/dev/disk/by-id/ata-ST2000DM008-part4  /home",
                "UUID=u4  /home",
            )
            .replace("  /dev/sda5\t/var", "  UUID=u5\t/var");
        assert_eq!(e.text, want);
        assert_eq!(
            e.details,
            [
                "line 4: /dev/sda1 -> UUID=u1 (/)",
                "line 8: /dev/sda3 -> UUID=u3 (none)",
                "line 9: /dev/disk/by-id/ata-ST2000DM008-part4 -> UUID=u4 (/home)",
                "line 10: /dev/sda5 -> UUID=u5 (/var)",
            ]
        );
        // The second disk is unknown and the ESP line does not match: both
        // left, and said so. The CD-ROM keeps its name on any hardware.
        assert_eq!(e.unresolved.len(), 2, "{:?}", e.unresolved);
        assert!(e.unresolved[0].contains("/dev/sdb1 (/backup)"));
        assert!(e.unresolved[1].contains("holds ext4, not vfat"));
    }

    #[test]
    fn a_table_without_device_names_is_unchanged() {
        let text = "UUID=1 / ext4 defaults 0 1\nproc /proc proc defaults 0 0\n\n# end";
        let e = rewrite(text, &Table);
        assert_eq!(e.text, text);
        assert!(e.details.is_empty() && e.unresolved.is_empty());
    }

    #[test]
    fn fields_are_found_across_tabs_and_spaces() {
        assert_eq!(field_span("a \t bb\tc", 1), Some((4, 6)));
        assert_eq!(field_span("a \t bb\tc", 2), Some((7, 8)));
        assert_eq!(field_span("  a", 0), Some((2, 3)));
        assert_eq!(field_span("a", 1), None);
    }
}
