//! A minimal content probe for what logical volumes commonly hold, by magic
//! numbers. It stands in until the crate-wide `probe` module exists; then
//! [`probe`] should call that instead.

use extents::ReadAt;

use crate::content::{Content, ContentKind};
use crate::fs::le::{u16_at, u32_at};

const EXT_SUPERBLOCK: usize = 1024;
const EXT_MAGIC: u16 = 0xEF53;
/// ext4-only incompatible features: extents, 64bit, flex_bg, mmp,
/// inline_data, encrypt, csum_seed, large_dir, casefold.
const EXT4_INCOMPAT: u32 =
    0x0040 | 0x0080 | 0x0200 | 0x0100 | 0x8000 | 0x10000 | 0x2000 | 0x4000 | 0x20000;
/// ext4-only read-only features: huge_file, gdt_csum, dir_nlink,
/// extra_isize, metadata_csum, ...
const EXT4_RO_COMPAT: u32 = !0x0007;
const EXT_HAS_JOURNAL: u32 = 0x0004;

/// What `vol` holds, with its UUID and label where the format has them.
pub fn probe(vol: &dyn ReadAt) -> Content {
    let head = vol
        .read_vec(0, (68 * 1024).min(vol.size()) as usize)
        .unwrap_or_default();
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    let content = |kind| Content {
        kind,
        uuid: None,
        label: None,
    };
    if u16_at(&head, EXT_SUPERBLOCK + 56) == EXT_MAGIC {
        return ext(&head);
    }
    if at(0, b"XFSB") {
        return Content {
            kind: ContentKind::Xfs,
            uuid: uuid(head.get(32..48)),
            label: text(head.get(108..120)),
        };
    }
    for page in [4096usize, 8192, 16384, 65536] {
        let sig = head.get(page - 10..page).unwrap_or_default();
        if [&b"SWAPSPACE2"[..], b"SWAP-SPACE"].contains(&sig)
            || [&b"S1SUSPEND"[..], b"S2SUSPEND", b"ULSUSPEND", b"LINHIB0001"]
                .iter()
                .any(|s| sig.starts_with(s))
        {
            return Content {
                kind: ContentKind::Swap,
                uuid: uuid(head.get(1036..1052)),
                label: text(head.get(1052..1068)),
            };
        }
    }
    if at(3, b"NTFS    ") {
        return content(ContentKind::Ntfs);
    }
    if at(3, b"EXFAT   ") {
        return content(ContentKind::Exfat);
    }
    if at(510, &[0x55, 0xAA]) && (at(54, b"FAT1") || at(82, b"FAT32   ")) {
        return content(ContentKind::Vfat);
    }
    if (0..4).any(|s| at(s * 512, b"LABELONE")) {
        return content(ContentKind::LvmPv);
    }
    if at(0, b"LUKS\xba\xbe") {
        let kind = if head.get(6..8) == Some(&[0, 2]) {
            ContentKind::Luks2
        } else {
            ContentKind::Luks1
        };
        return content(kind);
    }
    if at(65536 + 64, b"_BHRfS_M") {
        return content(ContentKind::Btrfs);
    }
    Content::unknown()
}

fn ext(head: &[u8]) -> Content {
    let sb = head.get(EXT_SUPERBLOCK..).unwrap_or_default();
    let compat = u32_at(sb, 92);
    let incompat = u32_at(sb, 96);
    let ro_compat = u32_at(sb, 100);
    let kind = if incompat & EXT4_INCOMPAT != 0 || ro_compat & EXT4_RO_COMPAT != 0 {
        ContentKind::Ext4
    } else if compat & EXT_HAS_JOURNAL != 0 {
        ContentKind::Ext3
    } else {
        ContentKind::Ext2
    };
    Content {
        kind,
        uuid: uuid(sb.get(104..120)),
        label: text(sb.get(120..136)),
    }
}

fn uuid(b: Option<&[u8]>) -> Option<String> {
    let b = b?;
    if b.len() != 16 || b.iter().all(|&x| x == 0) {
        return None;
    }
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

fn text(b: Option<&[u8]>) -> Option<String> {
    let b = b?;
    let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
    let s = String::from_utf8_lossy(b.get(..end).unwrap_or_default())
        .trim()
        .to_string();
    (!s.is_empty()).then_some(s)
}
