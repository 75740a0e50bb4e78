//! exFAT: serial number in the boot sector, label in the root directory.

use std::io;

use extents::ReadAt;

use super::raw::{self, le16, le32, u8_at};
use super::Signature;
use crate::content::ContentKind;

const ENTRY_LABEL: u8 = 0x83;
const MAX_ROOT_CLUSTERS: u32 = 100;

pub fn probe(vol: &dyn ReadAt) -> io::Result<Option<Signature>> {
    let Some(boot) = raw::read(vol, 0, 512)? else {
        return Ok(None);
    };
    if !raw::has(&boot, 3, b"EXFAT   ") {
        return Ok(None);
    }
    let (Some(sector_shift), Some(cluster_shift), Some(fats)) =
        (u8_at(&boot, 0x6C), u8_at(&boot, 0x6D), u8_at(&boot, 0x6E))
    else {
        return Ok(None);
    };
    if !(9..=12).contains(&sector_shift)
        || cluster_shift > 25 - sector_shift
        || !(1..=2).contains(&fats)
    {
        return Ok(None);
    }
    let sector = 1u64 << sector_shift;
    let cluster = sector << cluster_shift;
    let layout = Layout {
        fat: u64::from(le32(&boot, 0x50).unwrap_or(0)) * sector,
        heap: u64::from(le32(&boot, 0x58).unwrap_or(0)) * sector,
        clusters: u64::from(le32(&boot, 0x5C).unwrap_or(0)),
        cluster,
    };
    let root = u64::from(le32(&boot, 0x60).unwrap_or(0));
    let label = root_label(vol, &layout, root)?;
    let uuid = raw::bytes(&boot, 0x64, 4).and_then(|s| {
        Some(format!(
            "{:02X}{:02X}-{:02X}{:02X}",
            s.get(3)?,
            s.get(2)?,
            s.get(1)?,
            s.first()?
        ))
    });
    let revision = le16(&boot, 0x68).unwrap_or(0);
    let version = format!("{}.{}", revision >> 8, revision & 0xFF);
    Ok(Some(
        Signature::new(ContentKind::Exfat, uuid, label).version(version),
    ))
}

struct Layout {
    fat: u64,
    heap: u64,
    clusters: u64,
    cluster: u64,
}

fn root_label(vol: &dyn ReadAt, layout: &Layout, mut next: u64) -> io::Result<Option<String>> {
    for _ in 0..MAX_ROOT_CLUSTERS {
        if next < 2 || next >= layout.clusters.saturating_add(2) {
            break;
        }
        let offset = layout.heap + (next - 2) * layout.cluster;
        let Some(dir) = raw::read(vol, offset, layout.cluster as usize)? else {
            break;
        };
        for entry in dir.chunks_exact(32) {
            match entry.first().copied().unwrap_or(0) {
                0 => return Ok(None),
                ENTRY_LABEL => {
                    let units = usize::from(u8_at(entry, 1).unwrap_or(0)).min(11);
                    return Ok(raw::label_utf16(entry, 2, units, false));
                }
                _ => {}
            }
        }
        let Some(fat_entry) = raw::read(vol, layout.fat + next * 4, 4)? else {
            break;
        };
        next = u64::from(le32(&fat_entry, 0).unwrap_or(0));
    }
    Ok(None)
}
