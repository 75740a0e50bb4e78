//! Byte extents and positional reads: the common language of the `disk`,
//! `wire` and `guest` crates. A map says which bytes of a source must travel;
//! a [`ReadAt`] says how to read them.

mod map;
mod read_at;

pub use map::{Extent, ExtentBuilder, ExtentMap};
pub use read_at::{FileAt, ReadAt, Window};

/// Sector size that every on-disk and wire offset is aligned to.
pub const SECTOR: u64 = 512;
