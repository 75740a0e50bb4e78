//! The ext2/3/4 superblock's word on whether the filesystem was cleanly
//! unmounted.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{Error, Result};

const SUPERBLOCK: u64 = 1024;
const MAGIC: u16 = 0xEF53;
const STATE_VALID: u16 = 0x1;
const STATE_ERROR: u16 = 0x2;
const INCOMPAT_RECOVER: u32 = 0x4;
const COMPAT_HAS_JOURNAL: u32 = 0x4;

/// What the superblock says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExtState {
    /// The journal holds transactions not yet written to the filesystem.
    pub(crate) needs_recovery: bool,
    /// The kernel found errors and asked for a check.
    pub(crate) has_errors: bool,
    /// No journal, and not marked cleanly unmounted.
    pub(crate) unclean: bool,
}

impl ExtState {
    pub(crate) fn dirty(&self) -> bool {
        self.needs_recovery || self.has_errors || self.unclean
    }
}

/// Reads the state of the ext filesystem on `device`; None if it is not ext.
pub(crate) fn state(device: &Path) -> Result<Option<ExtState>> {
    let f = File::open(device).map_err(Error::io("opening", device))?;
    let mut sb = [0u8; 1024];
    f.read_exact_at(&mut sb, SUPERBLOCK)
        .map_err(Error::io("reading the superblock of", device))?;
    Ok(parse(&sb))
}

fn parse(sb: &[u8; 1024]) -> Option<ExtState> {
    let u16_at = |at: usize| u16::from_le_bytes([sb[at], sb[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes([sb[at], sb[at + 1], sb[at + 2], sb[at + 3]]);
    if u16_at(0x38) != MAGIC {
        return None;
    }
    let state = u16_at(0x3A);
    let compat = u32_at(0x5C);
    let incompat = u32_at(0x60);
    let journal = compat & COMPAT_HAS_JOURNAL != 0;
    Some(ExtState {
        needs_recovery: incompat & INCOMPAT_RECOVER != 0,
        has_errors: state & STATE_ERROR != 0,
        unclean: !journal && state & STATE_VALID == 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_state_flags() {
        let mut sb = [0u8; 1024];
        assert_eq!(parse(&sb), None);
        sb[0x38..0x3A].copy_from_slice(&MAGIC.to_le_bytes());
        sb[0x3A..0x3C].copy_from_slice(&STATE_VALID.to_le_bytes());
        sb[0x5C..0x60].copy_from_slice(&COMPAT_HAS_JOURNAL.to_le_bytes());
        assert!(!parse(&sb).unwrap().dirty());
        sb[0x60..0x64].copy_from_slice(&INCOMPAT_RECOVER.to_le_bytes());
        assert!(parse(&sb).unwrap().needs_recovery);
        sb[0x60..0x64].copy_from_slice(&0u32.to_le_bytes());
        sb[0x5C..0x60].copy_from_slice(&0u32.to_le_bytes());
        sb[0x3A..0x3C].copy_from_slice(&0u16.to_le_bytes());
        assert!(parse(&sb).unwrap().unclean);
    }
}
