//! `format=raw`: every byte of the body, in order, from offset 0.

use super::body::{read_full, Body};
use super::vdi_file::VdiFile;
use super::ImportError;

pub fn receive(body: &mut Body, vdi: &VdiFile) -> Result<(), ImportError> {
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let n = read_full(body, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        vdi.write_at(offset, &buf[..n])?;
        offset += n as u64;
    }
}
