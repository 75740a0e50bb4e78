//! What a block device holds, as `blkid -p` (low-level probing, no cache)
//! tells it.

use std::path::Path;

use serde::Serialize;

use crate::cmd;
use crate::error::Result;

/// The signature found on a device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// `ext4`, `xfs`, `btrfs`, `vfat`, `swap`, `LVM2_member`, `crypto_LUKS`...
    pub fs_type: Option<String>,
    pub uuid: Option<String>,
    pub label: Option<String>,
}

/// Probes a device; an empty probe when blkid finds nothing.
pub(crate) fn probe(device: &Path) -> Result<Probe> {
    let out = cmd::output(
        "blkid",
        &[
            "-p".as_ref(),
            "-o".as_ref(),
            "export".as_ref(),
            device.as_os_str(),
        ],
    )?;
    // Exit 2: nothing recognised. Anything else non-zero is a real failure.
    match out.status.code() {
        Some(0) => Ok(parse_export(&String::from_utf8_lossy(&out.stdout))),
        Some(2) => Ok(Probe::default()),
        _ => Err(cmd::failure(
            "blkid",
            &["-p", "-o", "export", &device.to_string_lossy()],
            &out,
        )),
    }
}

fn parse_export(text: &str) -> Probe {
    let mut p = Probe::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = unescape(value);
        match key {
            "TYPE" => p.fs_type = Some(value),
            "UUID" => p.uuid = Some(value),
            "LABEL" => p.label = Some(value),
            _ => {}
        }
    }
    p
}

/// `blkid -o export` escapes shell specials with a backslash.
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_blkid_export() {
        let p = parse_export("DEVNAME=/dev/loop3\nLABEL=my\\ root\nUUID=0f1e\nBLOCK_SIZE=4096\nTYPE=ext4\nUSAGE=filesystem\n");
        assert_eq!(p.fs_type.as_deref(), Some("ext4"));
        assert_eq!(p.uuid.as_deref(), Some("0f1e"));
        assert_eq!(p.label.as_deref(), Some("my root"));
    }
}
