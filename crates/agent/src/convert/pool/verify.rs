//! Checking the target against the manifest: the VDI exported back as VHD
//! (only the blocks the host holds travel) and hashed per 2 MiB block.
//! `full` checks every block and the disk hash; `sample` checks block 0 and
//! a few random sent blocks and stops reading once it has seen them.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::Serialize;
use sha2::{Digest, Sha256};
use wire::{zero_block_hash, BLOCK_SIZE};
use xapi::{ExportFormat, Session, VdiRef};

use super::upload::Hash;
use super::vhd_read::VhdBlocks;

/// Random sent blocks a sample checks, besides the first block.
const SAMPLES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Full,
    Sample,
    None,
}

pub fn parse_mode(s: &str) -> Result<Mode, String> {
    match s {
        "full" => Ok(Mode::Full),
        "sample" => Ok(Mode::Sample),
        "none" => Ok(Mode::None),
        _ => Err(format!("{s:?}: use full, sample or none")),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub mode: Mode,
    pub blocks_checked: u64,
    pub bytes_read: u64,
    pub disk_sha256_matches: Option<bool>,
}

/// Which blocks to check: all, or a sample of the sent ones.
fn choose(mode: Mode, hashes: &[(u64, Hash)], blocks: u64) -> Option<Vec<u64>> {
    match mode {
        Mode::Full | Mode::None => None,
        Mode::Sample => {
            let mut seed = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
                | 1;
            let mut pick = std::collections::BTreeSet::new();
            pick.insert(0);
            if !hashes.is_empty() {
                for _ in 0..SAMPLES {
                    // xorshift: enough to spread samples, not for secrets.
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    pick.insert(hashes[(seed % hashes.len() as u64) as usize].0);
                }
            }
            Some(pick.into_iter().filter(|b| *b < blocks).collect())
        }
    }
}

pub fn verify(
    session: &Session,
    vdi: &VdiRef,
    size: u64,
    hashes: &[(u64, Hash)],
    disk_sha256: Option<Hash>,
    mode: Mode,
    label: &str,
) -> anyhow::Result<Verified> {
    let blocks = size.div_ceil(BLOCK_SIZE);
    let wanted = choose(mode, hashes, blocks);
    let expected: BTreeMap<u64, &Hash> = hashes.iter().map(|(i, h)| (*i, h)).collect();
    let want_of = |index: u64, len: u64| {
        expected
            .get(&index)
            .map(|h| **h)
            .unwrap_or_else(|| zero_block_hash(len))
    };
    let differs = |index: u64, len: u64| {
        anyhow::anyhow!(
            "verification failed: block {index} (bytes {} to {}) of {label} on the host differs from the source as sent; the VM is left incomplete, convert again",
            index * BLOCK_SIZE,
            index * BLOCK_SIZE + len
        )
    };
    let block_len = |index: u64| (size - index * BLOCK_SIZE).min(BLOCK_SIZE);
    let export = session
        .export_raw_vdi(vdi, ExportFormat::Vhd)
        .with_context(|| format!("exporting {label} back to verify it"))?;
    let mut blocks_in = VhdBlocks::open(export).with_context(|| format!("reading {label} back"))?;
    anyhow::ensure!(
        blocks_in.block_size() == BLOCK_SIZE,
        "the host exported {label} with {}-byte VHD blocks; xenlift checks 2 MiB blocks",
        blocks_in.block_size()
    );
    let mut buf = vec![0u8; BLOCK_SIZE as usize];
    let mut present: BTreeMap<u64, Hash> = BTreeMap::new();
    let mut pending: Option<Vec<u64>> = wanted.clone();
    while let Some((index, len)) = blocks_in
        .next_block(&mut buf)
        .with_context(|| format!("reading {label} back"))?
    {
        let check = wanted
            .as_ref()
            .is_none_or(|w| w.binary_search(&index).is_ok());
        if check {
            let got: Hash = Sha256::digest(&buf[..len]).into();
            if got != want_of(index, len as u64) {
                return Err(differs(index, len as u64));
            }
            present.insert(index, got);
        }
        if let Some(p) = &mut pending {
            p.retain(|b| *b != index);
            if p.is_empty() {
                break;
            }
        }
    }
    let bytes_read = present.len() as u64 * BLOCK_SIZE;
    // Blocks the host does not hold read as zeros: so must they be in the manifest.
    let absent_checked: Vec<u64> = match &wanted {
        Some(w) => w
            .iter()
            .copied()
            .filter(|b| !present.contains_key(b))
            .collect(),
        None => expected
            .keys()
            .copied()
            .filter(|b| !present.contains_key(b))
            .collect(),
    };
    for index in &absent_checked {
        let len = block_len(*index);
        if want_of(*index, len) != zero_block_hash(len) {
            return Err(differs(*index, len));
        }
    }
    // The export's task ends when its body was read to the end; a sample
    // stops early and drops it (which cancels the task).
    let matches = match wanted {
        None => {
            let disk = wire::disk_hash_from_blocks(size, present.iter().map(|(i, h)| (*i, h)));
            let ok = disk_sha256.map(|d| d == disk);
            anyhow::ensure!(
                ok != Some(false),
                "verification failed: the disk hash of {label} on the host differs from the source's"
            );
            ok
        }
        Some(_) => None,
    };
    let checked = match &wanted {
        Some(w) => w.len() as u64,
        None => blocks,
    };
    Ok(Verified {
        mode,
        blocks_checked: checked,
        bytes_read,
        disk_sha256_matches: matches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_sent_blocks_plus_the_first() {
        let hashes: Vec<(u64, Hash)> = (10..20).map(|i| (i, [0u8; 32])).collect();
        let picked = choose(Mode::Sample, &hashes, 30).unwrap();
        assert_eq!(picked[0], 0);
        assert!(
            picked[1..].iter().all(|b| (10..20).contains(b)),
            "{picked:?}"
        );
        assert!(picked.windows(2).all(|w| w[0] < w[1]));
        assert!(choose(Mode::Full, &hashes, 30).is_none());
    }
}
