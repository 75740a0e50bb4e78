//! Attribute lists checked before the `ntfs` crate walks them: ntfs 0.4.0
//! panics on an entry cut short (an end-of-file inside its header parse),
//! so a damaged list is a doubt here instead.

use std::io::{Read, Seek};

use ntfs::{Ntfs, NtfsAttributeType, NtfsFile, NtfsReadSeek};

use crate::fs::le::u16_at;
use crate::fs::MapError;

/// Fixed part of an attribute list entry.
const ENTRY_HEADER: usize = 26;
/// Attribute lists larger than this are not read into memory.
const MAX_LIST: u64 = 16 << 20;

/// File record `record`, with its attribute lists checked.
pub fn checked_file<'n, T: Read + Seek>(
    ntfs: &'n Ntfs,
    fs: &mut T,
    record: u64,
    name: &str,
) -> Result<NtfsFile<'n>, MapError> {
    let doubt = |what: String| MapError::Doubt(format!("NTFS {name}: {what}"));
    let file = ntfs.file(fs, record).map_err(|e| doubt(e.to_string()))?;
    for attribute in file.attributes_raw() {
        let attribute = attribute.map_err(|e| doubt(e.to_string()))?;
        if attribute.ty().ok() != Some(NtfsAttributeType::AttributeList) {
            continue;
        }
        let mut value = attribute.value(fs).map_err(|e| doubt(e.to_string()))?;
        if value.len() > MAX_LIST {
            return Err(doubt(format!("attribute list of {} bytes", value.len())));
        }
        let mut list = vec![0u8; value.len() as usize];
        let mut got = 0;
        while got < list.len() {
            let n = value
                .read(fs, list.get_mut(got..).unwrap_or_default())
                .map_err(|e| doubt(e.to_string()))?;
            if n == 0 {
                return Err(doubt("attribute list ends early".into()));
            }
            got += n;
        }
        check_list(&list).map_err(doubt)?;
    }
    Ok(file)
}

/// Every entry must hold its header and name and stay inside the list.
fn check_list(list: &[u8]) -> Result<(), String> {
    let mut at = 0;
    while at < list.len() {
        let left = list.len() - at;
        let len = usize::from(u16_at(list, at + 4));
        let name = usize::from(list.get(at + 6).copied().unwrap_or(0)) * 2;
        if left < ENTRY_HEADER || len < ENTRY_HEADER + name || len > left {
            return Err(format!("damaged attribute list entry at byte {at}"));
        }
        at += len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(len: u16, name_len: u8) -> Vec<u8> {
        let mut e = vec![0u8; usize::from(len)];
        e[4..6].copy_from_slice(&len.to_le_bytes());
        e[6] = name_len;
        e
    }

    #[test]
    fn entries_must_fit() {
        let mut good = entry(32, 0);
        good.extend(entry(40, 4));
        assert!(check_list(&good).is_ok());
        assert!(
            check_list(&good[..50]).is_err(),
            "cut inside the second entry"
        );
        assert!(
            check_list(&entry(26, 4)).is_err(),
            "name longer than the entry"
        );
        assert!(check_list(&[0u8; 10]).is_err(), "shorter than a header");
    }
}
