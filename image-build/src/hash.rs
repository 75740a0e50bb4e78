//! SHA-256 of files and of build inputs, for cache keys and the build id.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Accumulates named inputs into one key.
#[derive(Default)]
pub struct Key(Sha256);

impl Key {
    pub fn add(&mut self, name: &str, value: &[u8]) -> &mut Self {
        self.0.update((name.len() as u64).to_le_bytes());
        self.0.update(name.as_bytes());
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value);
        self
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0.clone().finalize())
    }
}

/// A UUID-shaped id from a key (the ISO marker /.disk/id/<id>).
pub fn uuid_from(key_hex: &str) -> String {
    let k = key_hex
        .get(..32)
        .unwrap_or("00000000000000000000000000000000");
    format!(
        "{}-{}-{}-{}-{}",
        &k[..8],
        &k[8..12],
        &k[12..16],
        &k[16..20],
        &k[20..32]
    )
}
