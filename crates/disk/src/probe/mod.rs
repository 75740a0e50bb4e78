//! Content probing: which format a partition, a whole disk or a logical
//! volume holds, with its UUID and label in the text forms blkid prints.
//!
//! Every prober reads a few fixed structures through [`raw`] accessors and
//! answers "not this format" on anything it does not recognize. Containers
//! that own the whole volume (RAID members, LUKS, BitLocker) win outright;
//! two filesystems claiming the same volume make it unknown, so that it is
//! copied whole.

use std::io;

use extents::ReadAt;

use crate::content::{Content, ContentKind};

mod bitlocker;
mod btrfs;
mod exfat;
mod ext;
mod fat;
mod iso9660;
mod luks;
mod lvm;
mod ntfs;
mod raid;
pub mod raw;
mod swap;
mod xfs;

/// One format signature found on a volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub content: Content,
    /// The format's own version, as blkid's VERSION (`FAT32`, `1.2`...).
    pub version: Option<String>,
    /// The format's name when it differs from the content kind (a
    /// recognized format that is still copied as unknown, such as an ext
    /// journal device or a hibernation image in swap).
    pub name: Option<&'static str>,
    /// The signature sits at the end of the volume (md 0.90 and 1.0).
    pub at_end: bool,
}

impl Signature {
    fn new(kind: ContentKind, uuid: Option<String>, label: Option<String>) -> Self {
        Signature {
            content: Content { kind, uuid, label },
            version: None,
            name: None,
            at_end: false,
        }
    }

    fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }
}

/// The verdict on one volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub content: Content,
    pub version: Option<String>,
    /// Every signature found, strongest first.
    pub signatures: Vec<Signature>,
    /// Why the content is unknown although signatures were found.
    pub note: Option<String>,
}

type Prober = fn(&dyn ReadAt) -> io::Result<Option<Signature>>;

/// Containers that own the whole volume: when one is found, what looks like
/// a filesystem is its payload (RAID 1 with metadata at the end) or noise.
const OWNERS: [Prober; 3] = [raid::probe, luks::probe, bitlocker::probe];

/// Everything else, in no particular order: at most one may match.
const FORMATS: [Prober; 10] = [
    lvm::probe,
    ext::probe,
    xfs::probe,
    btrfs::probe,
    ntfs::probe,
    exfat::probe,
    fat::probe,
    swap::probe,
    iso9660::probe,
    swap::probe_suspend,
];

/// Every signature on the volume: owners first, then formats.
pub fn signatures(vol: &dyn ReadAt) -> io::Result<Vec<Signature>> {
    let mut found = Vec::new();
    for prober in OWNERS.iter().chain(FORMATS.iter()) {
        if let Some(sig) = prober(vol)? {
            found.push(sig);
        }
    }
    Ok(found)
}

/// Decides what the volume holds. Only I/O errors fail; unrecognized or
/// contradictory bytes give [`ContentKind::Unknown`].
pub fn probe_volume(vol: &dyn ReadAt) -> io::Result<Probe> {
    let signatures = signatures(vol)?;
    let owner = signatures.iter().position(|s| {
        matches!(
            s.content.kind,
            ContentKind::LinuxRaid
                | ContentKind::Luks1
                | ContentKind::Luks2
                | ContentKind::Bitlocker
        )
    });
    let (chosen, note) = match (owner, signatures.as_slice()) {
        (Some(i), _) => (signatures.get(i).cloned(), None),
        (None, []) => (None, None),
        (None, [one]) => {
            let note = one.name.map(|n| format!("{n}: copied whole"));
            (Some(one.clone()), note)
        }
        (None, many) => {
            let names: Vec<String> = many.iter().map(display_name).collect();
            let note = format!("ambiguous: {} signatures all present", names.join(", "));
            (None, Some(note))
        }
    };
    let (content, version) = match chosen {
        Some(s) => (s.content, s.version),
        None => (Content::unknown(), None),
    };
    Ok(Probe {
        content,
        version,
        signatures,
        note,
    })
}

/// What the volume holds (see [`probe_volume`] for the details).
pub fn probe(vol: &dyn ReadAt) -> io::Result<Content> {
    probe_volume(vol).map(|p| p.content)
}

/// The filesystem whose boot sector `sector0` is, if any: such a sector
/// also ends in 0x55AA and must not be read as an MBR.
pub fn boot_sector_filesystem(sector0: &[u8]) -> Option<ContentKind> {
    if fat::parse(sector0).is_some() {
        Some(ContentKind::Vfat)
    } else if ntfs::parse(sector0).is_some() {
        Some(ContentKind::Ntfs)
    } else if raw::has(sector0, 3, b"EXFAT   ") {
        Some(ContentKind::Exfat)
    } else if [bitlocker::VISTA, bitlocker::WIN7, bitlocker::TO_GO]
        .iter()
        .any(|m| raw::has(sector0, 0, *m))
    {
        Some(ContentKind::Bitlocker)
    } else {
        None
    }
}

fn display_name(s: &Signature) -> String {
    s.name
        .map_or_else(|| s.content.kind.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_and_tiny_volumes_are_unknown() {
        for size in [0usize, 1, 511, 4096, 1 << 20] {
            let p = probe_volume(&vec![0u8; size]).unwrap();
            assert_eq!(p.content, Content::unknown(), "size {size}");
            assert!(p.signatures.is_empty(), "size {size}");
        }
    }

    #[test]
    fn two_filesystems_make_it_unknown() {
        let mut vol = vec![0u8; 1 << 20];
        // An ISO 9660 descriptor and an ext superblock at once.
        vol[0x8001..0x8006].copy_from_slice(b"CD001");
        ext::tests::write_minimal_superblock(&mut vol);
        let p = probe_volume(&vol).unwrap();
        assert_eq!(p.signatures.len(), 2, "{p:?}");
        assert_eq!(p.content.kind, ContentKind::Unknown);
        assert!(
            p.note.as_deref().unwrap_or_default().contains("ambiguous"),
            "{p:?}"
        );
    }
}
