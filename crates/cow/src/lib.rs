//! Copy-on-write views of source disks.
//!
//! An [`Overlay`] reads through to a source and keeps every write for
//! itself (in memory, or in a scratch file), so the source is never
//! written; [`Overlay::changed`] says exactly which bytes now differ from
//! the source. A [`CowView`] serves an overlay as a regular file through
//! FUSE, so offset loop devices (and everything above them: mkfs, mount,
//! chroot) can use it where device-mapper and nbd are missing.

mod error;
mod fuse;
mod overlay;

pub use error::{Error, Result};
pub use fuse::CowView;
pub use overlay::{Overlay, Store};
