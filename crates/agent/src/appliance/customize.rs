//! Putting an answer file into finished boot media without rebuilding them:
//! `xenlift iso customize` writes it into the ISO's reserved embed area in
//! place; `xenlift pxe customize` appends a small cpio archive holding it to
//! the initrd (the kernel unpacks concatenated archives one after another).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::config::{is_secret, ApplianceConfig, OptValue};
use super::run::parse_cli;

#[derive(Debug, clap::Args)]
pub struct IsoCustomize {
    /// Answer file (TOML) to embed.
    #[arg(long, required_unless_present = "reset")]
    pub answer: Option<PathBuf>,
    /// Remove the embedded answer file instead.
    #[arg(long, conflicts_with = "answer")]
    pub reset: bool,
    /// Write a customized copy here instead of changing ISO in place.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Overwrite --output if it exists.
    #[arg(long)]
    pub force: bool,
    /// The xenlift ISO.
    pub iso: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct IsoShow {
    /// The xenlift ISO.
    pub iso: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct PxeCustomize {
    /// Answer file (TOML) to add.
    #[arg(long)]
    pub answer: PathBuf,
    /// The customized initrd to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Overwrite --output if it exists.
    #[arg(long)]
    pub force: bool,
    /// The xenlift initrd (pxe/initrd.img).
    pub initrd: PathBuf,
}

/// Reads and checks an answer file: valid TOML, known keys, and options the
/// agent's command line accepts, so mistakes show now and not at boot.
pub fn checked_answer(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = std::str::from_utf8(&bytes)
        .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
    let cfg = ApplianceConfig::from_toml(text).with_context(|| format!("{}", path.display()))?;
    let action = cfg.action();
    if action != super::config::Action::Interactive {
        parse_cli(&cfg.to_args(action, &cfg.disks), action)
            .with_context(|| format!("{}", path.display()))?;
    }
    Ok(bytes)
}

fn prepare_output(input: &Path, output: &Option<PathBuf>, force: bool) -> anyhow::Result<PathBuf> {
    let Some(out) = output else {
        return Ok(input.to_path_buf());
    };
    if out.exists() && !force {
        bail!("{} exists; pass --force to overwrite it", out.display());
    }
    std::fs::copy(input, out)
        .with_context(|| format!("copying {} to {}", input.display(), out.display()))?;
    Ok(out.clone())
}

pub fn iso_customize(args: IsoCustomize) -> anyhow::Result<()> {
    let payload = match &args.answer {
        Some(path) => Some(checked_answer(path)?),
        None => None,
    };
    let target = prepare_output(&args.iso, &args.output, args.force)?;
    let mut file = File::options()
        .read(true)
        .write(true)
        .open(&target)
        .with_context(|| format!("opening {}", target.display()))?;
    let loc = media::embed::write_in_place(&mut file, payload.as_deref())
        .with_context(|| format!("{}", target.display()))?;
    file.sync_all()
        .with_context(|| format!("syncing {}", target.display()))?;
    match payload {
        Some(p) => println!(
            "embedded {} bytes into {} (area at byte {})",
            p.len(),
            target.display(),
            loc.offset
        ),
        None => println!("removed the embedded answer file from {}", target.display()),
    }
    Ok(())
}

pub fn iso_show(args: IsoShow) -> anyhow::Result<()> {
    let mut file =
        File::open(&args.iso).with_context(|| format!("opening {}", args.iso.display()))?;
    let loc = media::embed::locate(&mut file).with_context(|| format!("{}", args.iso.display()))?;
    let area = media::embed::read_at(&mut file, loc)?;
    let Some(payload) = media::embed::decode(&area)? else {
        println!("no answer file embedded in {}", args.iso.display());
        return Ok(());
    };
    let text = String::from_utf8_lossy(&payload);
    let cfg = ApplianceConfig::from_toml(&text).context("the embedded answer file")?;
    println!("answer file embedded in {}:", args.iso.display());
    print!("{}", describe(&cfg));
    Ok(())
}

/// The settings of a configuration, one per line, secrets hidden.
pub fn describe(cfg: &ApplianceConfig) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("  {k} = {v}\n"));
    if let Some(r) = cfg.run {
        line("run", r.subcommand().into());
    }
    if let Some(p) = cfg.post {
        line("post", p.name().into());
    }
    if let Some(c) = &cfg.config_url {
        line("config", c.clone());
    }
    if !cfg.disks.is_empty() {
        line("disks", cfg.disks.join(", "));
    }
    for (k, v) in &cfg.options {
        let shown = if is_secret(k) {
            "********".to_string()
        } else {
            match v {
                OptValue::Flag(b) => b.to_string(),
                OptValue::One(s) => s.clone(),
                OptValue::Many(vs) => vs.join(", "),
            }
        };
        line(k, shown);
    }
    out
}

pub fn pxe_customize(args: PxeCustomize) -> anyhow::Result<()> {
    let payload = checked_answer(&args.answer)?;
    if args.output.exists() && !args.force {
        bail!(
            "{} exists; pass --force to overwrite it",
            args.output.display()
        );
    }
    let mut initrd = Vec::new();
    File::open(&args.initrd)
        .and_then(|mut f| f.read_to_end(&mut initrd))
        .with_context(|| format!("reading {}", args.initrd.display()))?;
    let out = append_answer(initrd, &payload)?;
    let mut file = File::create(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    file.write_all(&out)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", args.output.display()))?;
    println!(
        "wrote {} with the answer file as /{}",
        args.output.display(),
        media::INITRD_ANSWER_PATH
    );
    Ok(())
}

/// The initrd padded to 4 bytes (the kernel looks for the next archive on
/// a 4-byte boundary), then a cpio archive holding the answer file.
pub fn append_answer(mut initrd: Vec<u8>, answer: &[u8]) -> anyhow::Result<Vec<u8>> {
    while initrd.len() % 4 != 0 {
        initrd.push(0);
    }
    let mut w = media::cpio::CpioWriter::new(initrd, 0);
    w.dir("etc", 0o755)?;
    w.dir("etc/xenlift", 0o755)?;
    w.file(media::INITRD_ANSWER_PATH, 0o600, answer)?;
    Ok(w.finish()?)
}
