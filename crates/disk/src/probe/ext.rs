//! ext2, ext3 and ext4: told apart by their feature flags, as blkid does
//! (ext4 is whatever uses a feature ext3 lacks).

use std::io;

use extents::ReadAt;

use super::raw::{self, le16, le32};
use super::Signature;
use crate::content::ContentKind;

const SUPERBLOCK: u64 = 1024;
const MAGIC: u16 = 0xEF53;

const COMPAT_HAS_JOURNAL: u32 = 0x4;
const INCOMPAT_FILETYPE: u32 = 0x2;
const INCOMPAT_RECOVER: u32 = 0x4;
const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
const INCOMPAT_META_BG: u32 = 0x10;
const RO_COMPAT_EXT2_SET: u32 = 0x1 | 0x2 | 0x4; // sparse_super, large_file, btree_dir
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;

const EXT2_INCOMPAT: u32 = INCOMPAT_FILETYPE | INCOMPAT_META_BG;
const EXT3_INCOMPAT: u32 = EXT2_INCOMPAT | INCOMPAT_RECOVER;

pub fn probe(vol: &dyn ReadAt) -> io::Result<Option<Signature>> {
    let Some(sb) = raw::read(vol, SUPERBLOCK, 1024)? else {
        return Ok(None);
    };
    Ok(parse(&sb))
}

fn parse(sb: &[u8]) -> Option<Signature> {
    if le16(sb, 0x38)? != MAGIC {
        return None;
    }
    // Block size 1 KiB << log, at most 64 KiB; an absurd one is not ext.
    if le32(sb, 0x18)? > 6 || le32(sb, 0x04)? == 0 || le32(sb, 0x00)? == 0 {
        return None;
    }
    let compat = le32(sb, 0x5C)?;
    let incompat = le32(sb, 0x60)?;
    let ro_compat = le32(sb, 0x64)?;
    if ro_compat & RO_COMPAT_METADATA_CSUM != 0 {
        // The kernel's crc32c without the final inversion.
        let want = le32(sb, 0x3FC)?;
        if !raw::crc32c(raw::bytes(sb, 0, 0x3FC)?) != want {
            return None;
        }
    }
    let uuid = raw::uuid(sb, 0x68);
    let label = raw::label(sb, 0x78, 16);
    let version = format!("{}.{}", le32(sb, 0x4C)?, le16(sb, 0x3E)?);
    if incompat & INCOMPAT_JOURNAL_DEV != 0 {
        let mut sig = Signature::new(ContentKind::Unknown, uuid, label).version(version);
        sig.name = Some("ext journal device (jbd)");
        return Some(sig);
    }
    let journal = compat & COMPAT_HAS_JOURNAL != 0;
    let ext2_ro = ro_compat & !RO_COMPAT_EXT2_SET == 0;
    let kind = if !journal && ext2_ro && incompat & !EXT2_INCOMPAT == 0 {
        ContentKind::Ext2
    } else if journal && ext2_ro && incompat & !EXT3_INCOMPAT == 0 {
        ContentKind::Ext3
    } else {
        ContentKind::Ext4
    };
    Some(Signature::new(kind, uuid, label).version(version))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A superblock that passes the checks above: for prober unit tests.
    pub fn write_minimal_superblock(vol: &mut [u8]) {
        let sb = &mut vol[1024..2048];
        sb[0..4].copy_from_slice(&64u32.to_le_bytes());
        sb[4..8].copy_from_slice(&256u32.to_le_bytes());
        sb[0x38..0x3A].copy_from_slice(&MAGIC.to_le_bytes());
        sb[0x68] = 0x42;
    }

    #[test]
    fn features_decide_the_kind() {
        let table = [
            (0, 0, 0, ContentKind::Ext2),
            (
                COMPAT_HAS_JOURNAL,
                INCOMPAT_FILETYPE,
                0x3,
                ContentKind::Ext3,
            ),
            (
                COMPAT_HAS_JOURNAL,
                INCOMPAT_FILETYPE | 0x40,
                0x3,
                ContentKind::Ext4,
            ),
            (0, INCOMPAT_FILETYPE | 0x40, 0x3, ContentKind::Ext4),
            (COMPAT_HAS_JOURNAL, 0, 0x8, ContentKind::Ext4),
            (0, INCOMPAT_JOURNAL_DEV, 0, ContentKind::Unknown),
        ];
        for (i, (compat, incompat, ro, want)) in table.into_iter().enumerate() {
            let mut vol = vec![0u8; 4096];
            write_minimal_superblock(&mut vol);
            vol[1024 + 0x5C..1024 + 0x60].copy_from_slice(&u32::to_le_bytes(compat));
            vol[1024 + 0x60..1024 + 0x64].copy_from_slice(&u32::to_le_bytes(incompat));
            vol[1024 + 0x64..1024 + 0x68].copy_from_slice(&u32::to_le_bytes(ro));
            let sig = probe(&vol).unwrap().unwrap();
            assert_eq!(sig.content.kind, want, "test[{i}]");
        }
    }

    #[test]
    fn bad_metadata_checksum_is_not_ext() {
        let mut vol = vec![0u8; 4096];
        write_minimal_superblock(&mut vol);
        vol[1024 + 0x64] = 0; // clear, then set metadata_csum
        vol[1024 + 0x65] = 0x04;
        assert_eq!(probe(&vol).unwrap(), None);
    }
}
