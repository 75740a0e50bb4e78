//! Block devices, partition tables, content probing and used-block maps.
//!
//! This crate never talks to the network and never writes to a source.

pub mod content;
pub mod cursor;
pub mod error;
pub mod fs;
mod ioctl;
pub mod layout;
pub mod lvm;
pub mod probe;
pub mod source;
pub mod sysfs;
pub mod table;

pub use content::{Content, ContentKind};
pub use error::Error;
pub use fs::{MapError, MapMethod, VolumeMap};
pub use layout::{inspect, inspect_readers, DiskInput, DiskLayout, PartitionLayout, TableInfo};
pub use source::{DiskInfo, DiskKind, ReadOnlyPolicy, SourceDisk};
pub use sysfs::{discover, BlockDevice, Discovery, SystemPaths};
pub use table::{Partition, PartitionRole, ProtectiveMbr, TableKind};
