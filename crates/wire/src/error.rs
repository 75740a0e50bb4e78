//! Errors of plan building and encoding.

use std::io;

/// What went wrong while planning or encoding a stream.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The disk is larger than a dynamic VHD can describe.
    #[error(
        "disk is {size} bytes, but a dynamic VHD holds at most 2040 GiB ({max} bytes): \
         use the raw-chunked format for this disk"
    )]
    TooLargeForVhd { size: u64, max: u64 },

    /// A VHD of zero bytes is not something XAPI or qemu accept.
    #[error("disk is empty (0 bytes): there is nothing to encode as VHD")]
    EmptyDisk,

    /// The plan reaches past the end of the reader it is streamed from.
    #[error(
        "the plan covers {plan_size} bytes but the source holds only {source_size}: \
         the disk changed size since it was inspected; inspect it again"
    )]
    SourceTooSmall { plan_size: u64, source_size: u64 },

    /// Zero blocks may only be dropped when the target reads zeros where
    /// nothing is written; a delta goes onto data that is already there.
    #[error(
        "dropping zero blocks from a delta plan would leave old data on the target: \
         send the delta with its zero blocks"
    )]
    ZeroSkipOnDelta,

    /// Reading the source failed.
    #[error("reading {len} bytes at offset {offset} of the source (block {block}): {source}")]
    Read {
        block: u64,
        offset: u64,
        len: u64,
        #[source]
        source: io::Error,
    },

    /// Writing the encoded stream failed.
    #[error("writing the encoded stream after {written} bytes: {source}")]
    Write {
        written: u64,
        #[source]
        source: io::Error,
    },

    /// A worker thread could not be started.
    #[error("starting the {what} thread: {source}")]
    Spawn {
        what: &'static str,
        #[source]
        source: io::Error,
    },

    /// A worker thread ended before its work was done (a bug: it panicked).
    #[error("the {0} thread stopped unexpectedly; this is a bug in xenlift, please report it")]
    WorkerLost(&'static str),

    /// The stream failed; the reader of the stream got the full error.
    #[error("the stream failed: {0}")]
    Failed(String),

    /// The image to patch is not one this crate wrote.
    #[error("cannot patch {format} image: {reason}")]
    BadImage {
        format: &'static str,
        reason: String,
    },

    /// Reading or writing the image being patched failed.
    #[error("patching the image: {what}: {source}")]
    Patch {
        what: String,
        #[source]
        source: io::Error,
    },

    /// The stream was dropped before its last byte was read.
    #[error("the stream ended before all of it was read ({read} of {len} bytes)")]
    Unfinished { read: u64, len: u64 },
}

impl WireError {
    /// Wraps the error for a [`std::io::Read`] caller, keeping it reachable
    /// through `get_ref`.
    pub(crate) fn into_io(self) -> io::Error {
        let kind = match &self {
            WireError::Read { source, .. } | WireError::Write { source, .. } => source.kind(),
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, self)
    }
}
