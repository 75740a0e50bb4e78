use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot serve the copy-on-write view at {path}: {source} (needs root and /dev/fuse)")]
    Mount {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("write past the end of the view: {len} bytes at {offset}, size {size}")]
    PastEnd { offset: u64, len: u64, size: u64 },
    #[error("reading the source at byte {offset}: {source}")]
    Source {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("scratch file: {0}")]
    Scratch(#[source] io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;
