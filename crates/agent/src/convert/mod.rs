//! `xenlift convert`: copy disks to a target.

mod dir;
mod dir_fixup;
pub mod fixup;
mod fixup_cmd;
mod manifest;
pub mod pool;
mod source;
mod target;

use std::path::PathBuf;

use anyhow::Context;
use wire::Format;

pub use fixup_cmd::{run as run_fixup, FixupArgs};
pub use target::Target;

/// Arguments of `xenlift convert`.
#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// Where to: https://HOST[:PORT], http://HOST[:PORT] (with --allow-plaintext) or dir:PATH.
    #[arg(long)]
    pub to: String,
    /// Wire format: vhd (dynamic VHD, up to 2040 GiB) or raw-chunked (any
    /// size). Default vhd; to XAPI, raw-chunked is chosen for disks over
    /// 2040 GiB and SRs that cannot take VHD.
    #[arg(long, value_parser = parse_format)]
    pub format: Option<Format>,
    /// Overwrite files that already exist in a dir: target.
    #[arg(long)]
    pub force: bool,
    /// Send all-zero blocks instead of reading every mapped block twice to
    /// find them (faster on slow disks, more bytes on the wire).
    #[arg(long)]
    pub no_zero_scan: bool,
    #[command(flatten)]
    pub xapi: pool::XapiArgs,
    /// Copy the disks faithfully and leave the guest's boot configuration
    /// as it is (see "Guest fix-up" in the README).
    #[arg(long)]
    pub no_fixup: bool,
    /// Block devices or disk image files (default: all local disks).
    pub disks: Vec<PathBuf>,
}

impl ConvertArgs {
    /// The wire format asked for, else VHD.
    pub fn format(&self) -> Format {
        self.format.unwrap_or(Format::Vhd)
    }
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

pub fn run(args: ConvertArgs) -> anyhow::Result<()> {
    let target = Target::parse(&args.to).context("reading --to")?;
    match target {
        Target::Dir(path) => dir::convert(&path, &args),
        Target::Xapi { url } => pool::convert(&url, &args),
    }
}
