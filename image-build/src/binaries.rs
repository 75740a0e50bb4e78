//! The static (musl) xenlift binaries that go into the initramfs, built
//! from this workspace in a target folder of their own (so a build started
//! from `cargo test` does not wait on the test's own cargo lock).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

pub const TARGET: &str = "x86_64-unknown-linux-musl";

pub struct Binaries {
    pub agent: PathBuf,
    pub init: PathBuf,
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Builds (or finds in `prebuilt`) `xenlift` and `xenlift-init`.
pub fn get(prebuilt: Option<&Path>) -> anyhow::Result<Binaries> {
    let dir = match prebuilt {
        Some(d) => d.to_path_buf(),
        None => build()?,
    };
    let b = Binaries {
        agent: dir.join("xenlift"),
        init: dir.join("xenlift-init"),
    };
    for p in [&b.agent, &b.init] {
        if !p.exists() {
            bail!("{} is missing", p.display());
        }
    }
    Ok(b)
}

fn build() -> anyhow::Result<PathBuf> {
    let ws = workspace();
    let target_dir = ws.join("target/musl");
    eprintln!("image-build: cargo build --release --target {TARGET} -p xenlift -p xenlift-init");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "-p",
            "xenlift",
            "-p",
            "xenlift-init",
        ])
        .current_dir(&ws)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CC_x86_64_unknown_linux_musl", "musl-gcc")
        // Small binaries: no debug info, no symbols (panic messages keep
        // their file:line, which lives in the binary's data).
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("building the static binaries failed (ci/setup installs musl-tools and the {TARGET} target)");
    }
    Ok(target_dir.join(TARGET).join("release"))
}
