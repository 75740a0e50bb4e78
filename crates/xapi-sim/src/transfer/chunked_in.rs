//! `format=raw&chunked`: XAPI's own framing. Frames of a 12-byte
//! little-endian header `{u64 offset; u32 length}` and `length` bytes; a
//! header of zeros ends the stream. Ranges never sent keep what they held.

use super::body::{read_exact, Body};
use super::vdi_file::VdiFile;
use super::ImportError;

pub const HEADER: usize = 12;

pub fn receive(body: &mut Body, vdi: &VdiFile) -> Result<(), ImportError> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let mut header = [0u8; HEADER];
        read_exact(body, &mut header)?;
        let (offset_bytes, length_bytes) = header.split_at(8);
        let offset = u64::from_le_bytes(offset_bytes.try_into().unwrap_or([0; 8]));
        let length = u64::from(u32::from_le_bytes(
            length_bytes.try_into().unwrap_or([0; 4]),
        ));
        if offset == 0 && length == 0 {
            return Ok(());
        }
        if offset % 512 != 0 || length % 512 != 0 {
            return Err(ImportError::Chunked(format!(
                "frame at offset {offset} of {length} bytes is not in whole 512-byte sectors"
            )));
        }
        if offset
            .checked_add(length)
            .is_none_or(|end| end > vdi.size())
        {
            return Err(ImportError::PastEnd {
                offset,
                len: length,
                size: vdi.size(),
            });
        }
        let mut done = 0u64;
        while done < length {
            let n = usize::try_from((length - done).min(buf.len() as u64)).unwrap_or(buf.len());
            let chunk = &mut buf[..n];
            read_exact(body, chunk)?;
            vdi.write_at(offset + done, chunk)?;
            done += n as u64;
        }
    }
}
