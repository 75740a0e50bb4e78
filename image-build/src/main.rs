//! `image-build iso --out DIR`: builds the xenlift appliance from Debian
//! packages and this workspace: DIR/xenlift.iso (hybrid: CD and USB, BIOS
//! and UEFI with Secure Boot) and DIR/pxe/ (iPXE, pxelinux, UEFI Secure Boot
//! TFTP set). Downloads, unpacked packages and finished outputs are cached,
//! keyed by their inputs; the same inputs give the same bytes.

mod apt;
mod binaries;
mod bootcfg;
mod elf;
mod esp;
mod hash;
mod initramfs;
mod iso;
mod kernel;
mod layout;
mod tools;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "image-build", about = "Builds the xenlift ISO and PXE files")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build DIR/xenlift.iso and DIR/pxe/.
    Iso(BuildArgs),
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Cache folder (downloads, unpacked packages, finished builds).
    #[arg(long, env = "XENLIFT_IMAGE_CACHE")]
    pub cache: Option<PathBuf>,
    /// Use these static xenlift and xenlift-init binaries instead of
    /// building them.
    #[arg(long)]
    pub binaries: Option<PathBuf>,
    /// Build even if a finished build with the same inputs is cached.
    #[arg(long)]
    pub fresh: bool,
    /// Refresh the Debian package lists now (otherwise once a day).
    #[arg(long)]
    pub refresh: bool,
    /// Fail when the ISO is larger than this many MiB.
    #[arg(long, default_value_t = 150)]
    pub budget_mib: u64,
    /// Timestamp for every file (default: SOURCE_DATE_EPOCH, else fixed).
    #[arg(long, env = "SOURCE_DATE_EPOCH", default_value_t = 1_700_000_000)]
    pub source_date_epoch: u32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Iso(args) => layout::build(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("image-build: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
