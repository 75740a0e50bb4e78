//! What a partition, a whole disk or a logical volume holds.

use serde::Serialize;

/// The kind of content found by probing the first bytes of a volume.
/// Names follow blkid's TYPE where one exists, lower-cased.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentKind {
    Ext2,
    Ext3,
    Ext4,
    Xfs,
    Btrfs,
    Ntfs,
    Vfat,
    Exfat,
    Swap,
    #[serde(rename = "lvm2_member")]
    LvmPv,
    Luks1,
    Luks2,
    #[serde(rename = "linux_raid_member")]
    LinuxRaid,
    Bitlocker,
    Iso9660,
    Unknown,
}

impl ContentKind {
    /// The name used in JSON and tables.
    pub fn name(self) -> &'static str {
        match self {
            ContentKind::Ext2 => "ext2",
            ContentKind::Ext3 => "ext3",
            ContentKind::Ext4 => "ext4",
            ContentKind::Xfs => "xfs",
            ContentKind::Btrfs => "btrfs",
            ContentKind::Ntfs => "ntfs",
            ContentKind::Vfat => "vfat",
            ContentKind::Exfat => "exfat",
            ContentKind::Swap => "swap",
            ContentKind::LvmPv => "lvm2_member",
            ContentKind::Luks1 => "luks1",
            ContentKind::Luks2 => "luks2",
            ContentKind::LinuxRaid => "linux_raid_member",
            ContentKind::Bitlocker => "bitlocker",
            ContentKind::Iso9660 => "iso9660",
            ContentKind::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ContentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Probed content with the identity the format carries, if any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Content {
    pub kind: ContentKind,
    pub uuid: Option<String>,
    pub label: Option<String>,
}

impl Content {
    pub fn unknown() -> Self {
        Content {
            kind: ContentKind::Unknown,
            uuid: None,
            label: None,
        }
    }
}
