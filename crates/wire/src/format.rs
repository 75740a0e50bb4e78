//! The wire formats a plan can be encoded as.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// How blocks are framed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Format {
    /// Dynamic VHD (XAPI `format=vhd`), at most 2040 GiB.
    #[serde(rename = "vhd")]
    Vhd,
    /// XAPI chunked raw (`format=raw&chunked`): `{u64 LE offset, u32 LE length}`
    /// frames, any size.
    #[serde(rename = "raw-chunked")]
    RawChunked,
}

impl Format {
    /// The name used on the command line and in manifests.
    pub const fn name(self) -> &'static str {
        match self {
            Format::Vhd => "vhd",
            Format::RawChunked => "raw-chunked",
        }
    }

    /// File name extension for a stream written to a file.
    pub const fn extension(self) -> &'static str {
        match self {
            Format::Vhd => "vhd",
            Format::RawChunked => "chunked",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "vhd" => Ok(Format::Vhd),
            "raw-chunked" => Ok(Format::RawChunked),
            other => Err(format!("unknown format {other:?}: use vhd or raw-chunked")),
        }
    }
}
