//! The HTTP transfers: `PUT /import_raw_vdi` and `GET /export_raw_vdi`, with
//! the decoders and encoders of the disk formats they carry.

mod auth;
mod body;
mod chunked_in;
mod common;
pub mod export;
pub mod import;
mod raw_in;
mod vdi_file;
mod vhd_in;
pub mod vhd_out;

use std::io;

/// Why receiving an import body stopped. Except for cancellation, all of
/// these reach the task as XAPI's `VDI_IO_ERROR ["Device I/O errors"]`; the
/// detail goes to the log and to the task's `other_config:xapi-sim:detail`.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The drop_import_after fault reset the connection.
    #[error("connection dropped by the drop_import_after fault")]
    Dropped,
    /// The task was cancelled (by a client or the cancel_import_after fault).
    #[error("the task was cancelled")]
    Cancelled,
    /// The body ended before Content-Length bytes (or before the format's end).
    #[error("the body ended early, after {0} bytes")]
    Truncated(u64),
    /// Reading from the connection failed.
    #[error("reading the body: {0}")]
    Read(#[source] io::Error),
    /// The VHD stream breaks the format or the forward-only order.
    #[error("malformed VHD: {0}")]
    Vhd(String),
    /// The chunked stream has a frame XAPI rejects.
    #[error("malformed chunked stream: {0}")]
    Chunked(String),
    /// A write would go past the end of the VDI.
    #[error("{len} bytes at offset {offset} go past the end of the VDI ({size} bytes)")]
    PastEnd { offset: u64, len: u64, size: u64 },
    /// Writing the VDI file failed.
    #[error("writing the VDI: {0}")]
    Write(#[source] io::Error),
    /// VHD import needs an SR whose new VDIs are zeroed.
    #[error("unimplemented: prezeroed")]
    NotPrezeroed,
}
