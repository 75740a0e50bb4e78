//! Device names as guests write them in fstab, crypttab and on the kernel
//! command line, and which of them break when the hardware changes.

/// What a device name in a guest file refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeviceName {
    /// `UUID=`, `LABEL=`, `PARTUUID=`, `PARTLABEL=` or their
    /// `/dev/disk/by-*` links: stable across hardware.
    Tag { kind: Tag, value: String },
    /// A kernel name (`/dev/sdb2`, `/dev/vda1`, `/dev/nvme0n1p3`,
    /// `/dev/cciss/c0d0p1`, `/dev/xvda`...): disk by enumeration order.
    Kernel { disk: usize, partition: Option<u32> },
    /// `/dev/disk/by-id/...` or `/dev/disk/by-path/...`: names the source's
    /// hardware, which the target does not have.
    Hardware { partition: Option<u32> },
    /// `/dev/mapper/...`, `/dev/VG/LV`, `/dev/md*`: names that follow the
    /// data, not the hardware.
    Logical,
    /// Not a block device name (tmpfs, proc, `server:/export`, a path).
    NotADevice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tag {
    Uuid,
    Label,
    PartUuid,
    PartLabel,
}

impl DeviceName {
    /// Whether the name stops working when the disk controller changes.
    pub(crate) fn is_hardware_bound(&self) -> bool {
        matches!(
            self,
            DeviceName::Kernel { .. } | DeviceName::Hardware { .. }
        )
    }
}

/// Classifies a device field.
pub(crate) fn parse(spec: &str) -> DeviceName {
    let unquoted = |v: &str| v.trim_matches('"').trim_matches('\'').to_string();
    for (prefix, kind) in [
        ("UUID=", Tag::Uuid),
        ("LABEL=", Tag::Label),
        ("PARTUUID=", Tag::PartUuid),
        ("PARTLABEL=", Tag::PartLabel),
        ("/dev/disk/by-uuid/", Tag::Uuid),
        ("/dev/disk/by-label/", Tag::Label),
        ("/dev/disk/by-partuuid/", Tag::PartUuid),
        ("/dev/disk/by-partlabel/", Tag::PartLabel),
    ] {
        if let Some(v) = spec.strip_prefix(prefix) {
            return DeviceName::Tag {
                kind,
                value: unquoted(v),
            };
        }
    }
    if let Some(rest) = spec
        .strip_prefix("/dev/disk/by-id/")
        .or_else(|| spec.strip_prefix("/dev/disk/by-path/"))
    {
        return DeviceName::Hardware {
            partition: part_suffix(rest),
        };
    }
    let Some(name) = spec.strip_prefix("/dev/") else {
        return DeviceName::NotADevice;
    };
    if let Some(k) = kernel_name(name) {
        return k;
    }
    if name.starts_with("mapper/") || name.starts_with("md") || name.split('/').count() == 2 {
        return DeviceName::Logical;
    }
    DeviceName::NotADevice
}

/// `...-part3` -> 3.
fn part_suffix(name: &str) -> Option<u32> {
    let (_, n) = name.rsplit_once("-part")?;
    n.parse().ok()
}

fn kernel_name(name: &str) -> Option<DeviceName> {
    // sdX, hdX, vdX, xvdX: letters then an optional number.
    for prefix in ["xvd", "sd", "hd", "vd"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            let letters: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase())
                .collect();
            let digits = &rest[letters.len()..];
            if letters.is_empty()
                || letters.len() > 3
                || !digits.chars().all(|c| c.is_ascii_digit())
            {
                return None;
            }
            let disk = letters
                .bytes()
                .fold(0usize, |acc, b| acc * 26 + usize::from(b - b'a') + 1)
                - 1;
            return Some(DeviceName::Kernel {
                disk,
                partition: if digits.is_empty() {
                    None
                } else {
                    digits.parse().ok()
                },
            });
        }
    }
    // nvme0n1p2, mmcblk0p1, cciss/c0d1p2: controller or disk number, then pN.
    let numbered = |rest: &str| -> Option<DeviceName> {
        let (disk, partition) = match rest.split_once('p') {
            Some((d, p)) => (d, Some(p.parse().ok()?)),
            None => (rest, None),
        };
        Some(DeviceName::Kernel {
            disk: disk.parse().ok()?,
            partition,
        })
    };
    if let Some(rest) = name.strip_prefix("nvme") {
        let (controller, after) = rest.split_once('n')?;
        let (_namespace, partition) = match after.split_once('p') {
            Some((ns, p)) => (ns, Some(p.parse().ok()?)),
            None => (after, None),
        };
        return Some(DeviceName::Kernel {
            disk: controller.parse().ok()?,
            partition,
        });
    }
    if let Some(rest) = name.strip_prefix("mmcblk") {
        return numbered(rest);
    }
    for prefix in ["cciss/c", "ida/c", "rd/c"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            let (_controller, after) = rest.split_once('d')?;
            return numbered(after);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_device_names() {
        let k = |disk, partition| DeviceName::Kernel { disk, partition };
        let rows: &[(&str, DeviceName)] = &[
            ("/dev/sda1", k(0, Some(1))),
            ("/dev/sdb", k(1, None)),
            ("/dev/sdaa3", k(26, Some(3))),
            ("/dev/vda2", k(0, Some(2))),
            ("/dev/hdc1", k(2, Some(1))),
            ("/dev/xvdb1", k(1, Some(1))),
            ("/dev/nvme0n1p3", k(0, Some(3))),
            ("/dev/nvme1n1", k(1, None)),
            ("/dev/cciss/c0d0p1", k(0, Some(1))),
            ("/dev/cciss/c0d1", k(1, None)),
            ("/dev/mmcblk0p2", k(0, Some(2))),
            (
                "/dev/disk/by-id/ata-SAMSUNG_SSD_850-part2",
                DeviceName::Hardware { partition: Some(2) },
            ),
            (
                "/dev/disk/by-path/pci-0000:00:02.0-part1",
                DeviceName::Hardware { partition: Some(1) },
            ),
            (
                "/dev/disk/by-id/wwn-0x5000c500a",
                DeviceName::Hardware { partition: None },
            ),
            (
                "UUID=\"0f1e\"",
                DeviceName::Tag {
                    kind: Tag::Uuid,
                    value: "0f1e".into(),
                },
            ),
            (
                "LABEL=root",
                DeviceName::Tag {
                    kind: Tag::Label,
                    value: "root".into(),
                },
            ),
            (
                "/dev/disk/by-partuuid/8c1d2e3f-01",
                DeviceName::Tag {
                    kind: Tag::PartUuid,
                    value: "8c1d2e3f-01".into(),
                },
            ),
            ("/dev/mapper/vg0-root", DeviceName::Logical),
            ("/dev/vg0/root", DeviceName::Logical),
            ("/dev/md0", DeviceName::Logical),
            ("tmpfs", DeviceName::NotADevice),
            ("server:/export", DeviceName::NotADevice),
            ("/srv/data", DeviceName::NotADevice),
            ("/dev/sd", DeviceName::NotADevice),
            ("/dev/sda1x", DeviceName::NotADevice),
            ("/dev/shm", DeviceName::NotADevice),
        ];
        for (i, (spec, want)) in rows.iter().enumerate() {
            assert_eq!(&parse(spec), want, "row {i}: {spec}");
        }
    }
}
