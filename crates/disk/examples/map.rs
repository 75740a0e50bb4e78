//! Maps one filesystem image with xenlift's own mapper and prints what would
//! be copied. Used by ci/bench-map; handy for looking at a real image.
//!
//! cargo run --release -p xenlift-disk --example map -- IMAGE ext4|xfs

use std::fs::File;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use extents::FileAt;
use xenlift_disk::fs::{ext, xfs};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Kind {
    Ext2,
    Ext3,
    Ext4,
    Xfs,
}

/// Map the used blocks of a filesystem image.
#[derive(Parser, Debug)]
struct Args {
    /// Image file (or block device opened read-only) holding the filesystem.
    image: std::path::PathBuf,
    /// Filesystem type.
    kind: Kind,
    /// Also print every extent as `offset length` in bytes, one a line.
    #[arg(long)]
    list: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let file =
        File::open(&args.image).with_context(|| format!("opening {}", args.image.display()))?;
    let vol = FileAt::from_file(file).context("reading the image size")?;
    let started = Instant::now();
    let map = match args.kind {
        Kind::Ext2 | Kind::Ext3 | Kind::Ext4 => ext::map(&vol),
        Kind::Xfs => xfs::map(&vol),
    }
    .with_context(|| format!("mapping {}", args.image.display()))?;
    let elapsed = started.elapsed();
    println!(
        "copy_bytes={} extents={} volume_bytes={} seconds={:.3}",
        map.total_bytes(),
        map.len(),
        extents::ReadAt::size(&vol),
        elapsed.as_secs_f64()
    );
    if args.list {
        for e in &map {
            println!("{} {}", e.offset, e.len);
        }
    }
    Ok(())
}
