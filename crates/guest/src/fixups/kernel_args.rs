//! `root=` and `resume=` on kernel command lines, wherever they are written.

use super::{Resolve, Rewrite};

/// Kernel parameters that name a block device.
const DEVICE_PARAMS: &[&str] = &["root", "resume"];

/// A line with its device parameters rewritten.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ArgsEdit {
    pub(crate) line: String,
    /// `OLD -> NEW` per parameter changed.
    pub(crate) changed: Vec<String>,
    pub(crate) unresolved: Vec<String>,
}

/// Rewrites `root=DEV` and `resume=DEV` anywhere in `line`. A parameter
/// starts after whitespace, a quote or the line start; its value ends at
/// whitespace or a quote. Nothing else in the line changes.
pub(crate) fn rewrite(line: &str, resolver: &dyn Resolve) -> ArgsEdit {
    let mut out = ArgsEdit::default();
    let bytes = line.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        let at_start = i == 0 || matches!(bytes[i - 1], b' ' | b'\t' | b'"' | b'\'');
        let param = DEVICE_PARAMS.iter().find(|p| {
            at_start && line[i..].starts_with(**p) && line[i + p.len()..].starts_with('=')
        });
        let Some(param) = param else {
            i += 1;
            continue;
        };
        let value_start = i + param.len() + 1;
        let value_end = line[value_start..]
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .map_or(line.len(), |n| value_start + n);
        let value = &line[value_start..value_end];
        match resolver.rewrite(value, None) {
            Rewrite::Replace(new) => {
                out.line.push_str(&line[copied..value_start]);
                out.line.push_str(&new);
                copied = value_end;
                out.changed
                    .push(format!("{param}={value} -> {param}={new}"));
            }
            Rewrite::Unresolved(why) => out
                .unresolved
                .push(format!("{param}={value} left as is: {why}")),
            Rewrite::Keep => {}
        }
        i = value_end.max(i + 1);
    }
    out.line.push_str(&line[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixups::test_resolver::Table;

    #[test]
    fn rewrites_root_and_resume_among_other_parameters() {
        let rows: &[(&str, &str, usize)] = &[
            (
                "\tlinux\t/boot/vmlinuz-6.1.0-18-amd64 root=/dev/sda1 ro  quiet resume=/dev/sda2 console=ttyS0,115200n8",
                "\tlinux\t/boot/vmlinuz-6.1.0-18-amd64 root=UUID=u1 ro  quiet resume=UUID=u2 console=ttyS0,115200n8",
                2,
            ),
            (
                "GRUB_CMDLINE_LINUX=\"root=/dev/nvme0n1p3 rd.lvm.lv=vg/root\"",
                "GRUB_CMDLINE_LINUX=\"root=UUID=u3 rd.lvm.lv=vg/root\"",
                1,
            ),
            ("GRUB_CMDLINE_LINUX='resume=/dev/sda5'", "GRUB_CMDLINE_LINUX='resume=UUID=u5'", 1),
            (
                "options root=/dev/mapper/vg-root ro resume=UUID=1 myroot=/dev/sda1 noresume",
                "options root=/dev/mapper/vg-root ro resume=UUID=1 myroot=/dev/sda1 noresume",
                0,
            ),
            ("kernelopts=root=/dev/sda1 ro", "kernelopts=root=/dev/sda1 ro", 0),
            ("root=/dev/sda1", "root=UUID=u1", 1),
            ("set root='hd0,msdos1'", "set root='hd0,msdos1'", 0),
            ("linux /vmlinuz root=", "linux /vmlinuz root=", 0),
        ];
        for (i, (line, want, n)) in rows.iter().enumerate() {
            let e = rewrite(line, &Table);
            assert_eq!(e.line, *want, "row {i}");
            assert_eq!(e.changed.len(), *n, "row {i}: {:?}", e.changed);
        }
    }

    #[test]
    fn unknown_devices_are_reported() {
        let e = rewrite("linux /vmlinuz root=/dev/sdb1 ro", &Table);
        assert_eq!(e.line, "linux /vmlinuz root=/dev/sdb1 ro");
        assert_eq!(e.unresolved.len(), 1);
    }
}
