//! `xenlift appliance run`: gathers the configuration (answer file embedded
//! in the ISO or initrd, then one fetched from `xenlift.config=URL`, then the
//! kernel command line, each overriding the one before), tells init how to
//! end, and runs the configured command in this process, through the same
//! dispatch as the command line, so the appliance does exactly what
//! `xenlift ARGS...` does on any Linux host.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Parser;

use super::config::{redacted, Action, ApplianceConfig};
use super::dialog::{ConvertArgv, Outcome};
use super::fetch;

/// Arguments of `xenlift appliance run`; init passes the facts it learned
/// in the environment.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Kernel command line to read.
    #[arg(long, default_value = "/proc/cmdline")]
    pub cmdline: PathBuf,
    /// Answer file put into the initrd by `xenlift pxe customize`.
    #[arg(long, default_value = "/etc/xenlift/answer.toml")]
    pub initrd_answer: PathBuf,
    /// Mounted boot medium holding the ISO's embed area.
    #[arg(long, env = "XENLIFT_APPLIANCE_MEDIA")]
    pub media: Option<PathBuf>,
    /// MAC address of the configured network link, for `${mac}` in URLs.
    #[arg(long, env = "XENLIFT_APPLIANCE_MAC")]
    pub mac: Option<String>,
    /// The boot medium's device, never a disk to convert.
    #[arg(long, env = "XENLIFT_APPLIANCE_BOOT_DEVICE")]
    pub boot_device: Option<String>,
    /// Where to write how the appliance ends (init reads it).
    #[arg(long, env = "XENLIFT_APPLIANCE_POST_FILE")]
    pub post_file: Option<PathBuf>,
    /// sysfs block class, to find local disks.
    #[arg(long, default_value = "/sys/class/block")]
    pub sys_block: PathBuf,
    /// sysfs net class, to find the network cards (interactive mode).
    #[arg(long, default_value = "/sys/class/net")]
    pub sys_net: PathBuf,
    /// Where the interactive dialog reads answers (repeatable); by default
    /// every console the kernel writes to, so the operator may answer on
    /// the screen or on the serial line.
    #[arg(long)]
    pub console: Vec<PathBuf>,
    /// The kernel's list of active consoles.
    #[arg(long, default_value = "/sys/class/tty/console/active")]
    pub sys_consoles: PathBuf,
    /// Print the command that would run, and stop.
    #[arg(long)]
    pub dry_run: bool,
}

fn say(line: &str) {
    println!("xenlift: appliance: {line}");
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let line = std::fs::read_to_string(&args.cmdline)
        .with_context(|| format!("reading the kernel command line {}", args.cmdline.display()))?;
    let cmdline = ApplianceConfig::from_cmdline(&line).context("kernel command line")?;
    // Known early, so a failure below still ends as configured.
    write_post(&args, &cmdline);

    let mut cfg = embedded(&args)?;
    let first = cfg.clone().merged(cmdline.clone());
    if let Some(template) = &first.config_url {
        let url = fetch::expand_url(template, args.mac.as_deref())?;
        say(&format!("fetching the answer file {url}"));
        let text = fetch::fetch(&url)?;
        let fetched =
            ApplianceConfig::from_toml(&text).with_context(|| format!("answer file from {url}"))?;
        cfg = cfg.merged(fetched);
    }
    let cfg = cfg.merged(cmdline);
    write_post(&args, &cfg);

    let action = cfg.action();
    if action == Action::Interactive {
        return interactive(&cfg, &args);
    }
    let disks = disks(&cfg, &args)?;
    let argv = cfg.to_args(action, &disks);
    execute(&argv, action, args.dry_run)
}

/// Runs `xenlift ARGV` in this process, as on any host.
fn execute(argv: &[String], action: Action, dry_run: bool) -> anyhow::Result<()> {
    say(&format!("running: xenlift {}", redacted(argv)));
    let cli = parse_cli(argv, action)?;
    if dry_run {
        return Ok(());
    }
    crate::init_logging(&cli.log);
    match cli.command {
        crate::Command::Appliance(_) | crate::Command::Iso(_) | crate::Command::Pxe(_) => {
            bail!("the appliance runs only inspect or convert")
        }
        // Errors as the command gives them, word for word as on a host.
        command => crate::run(command),
    }
}

/// The answer files carried by the boot media.
fn embedded(args: &RunArgs) -> anyhow::Result<ApplianceConfig> {
    let mut cfg = ApplianceConfig::default();
    if let Some(media) = &args.media {
        let area = media.join(media::ISO_EMBED_PATH);
        if let Ok(bytes) = std::fs::read(&area) {
            let payload = media::embed::decode(&bytes).with_context(|| {
                format!(
                    "reading the answer file embedded in the ISO ({})",
                    area.display()
                )
            })?;
            if let Some(payload) = payload {
                say(&format!(
                    "answer file embedded in the ISO ({} bytes)",
                    payload.len()
                ));
                let text = String::from_utf8(payload)
                    .context("the answer file embedded in the ISO is not UTF-8 text")?;
                cfg = cfg.merged(
                    ApplianceConfig::from_toml(&text).context("answer file embedded in the ISO")?,
                );
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(&args.initrd_answer) {
        say(&format!(
            "answer file in the initrd ({})",
            args.initrd_answer.display()
        ));
        cfg = cfg.merged(
            ApplianceConfig::from_toml(&text)
                .with_context(|| format!("answer file {}", args.initrd_answer.display()))?,
        );
    }
    Ok(cfg)
}

fn write_post(args: &RunArgs, cfg: &ApplianceConfig) {
    if let (Some(path), Some(post)) = (&args.post_file, cfg.post) {
        if let Err(e) = std::fs::write(path, post.name()) {
            say(&format!("writing {}: {e}", path.display()));
        }
    }
}

/// Nothing configured: the operator answers questions at the console, and
/// the conversion agreed to runs exactly as if an answer file had said so.
fn interactive(cfg: &ApplianceConfig, args: &RunArgs) -> anyhow::Result<()> {
    let consoles = if args.console.is_empty() {
        super::consoles::active(&args.sys_consoles)
    } else {
        args.console.clone()
    };
    let names: Vec<String> = consoles.iter().map(|c| c.display().to_string()).collect();
    say(&format!(
        "nothing is configured (no xenlift.to= on the kernel command line or in an answer file): \
         interactive setup on {}",
        names.join(", ")
    ));
    say("(to run unattended: xenlift.config=URL, or embed an answer file with xenlift iso customize; see README, section Appliance)");
    let disks = disks(cfg, args)?;
    if args.dry_run {
        return Ok(());
    }
    let outcome = super::interactive::ask(&consoles, &disks, &args.sys_net)?;
    let Outcome::Convert(ConvertArgv(chosen)) = outcome else {
        return Ok(());
    };
    let mut argv = Vec::new();
    if let Some(log) = &cfg.log {
        argv.extend(["--log".to_string(), log.clone()]);
    }
    argv.extend(chosen);
    execute(&argv, Action::Convert, false)
}

/// The configured disks (checked to exist), or every local disk but the
/// boot medium.
fn disks(cfg: &ApplianceConfig, args: &RunArgs) -> anyhow::Result<Vec<String>> {
    let local = local_disks(&args.sys_block, args.boot_device.as_deref());
    if !cfg.disks.is_empty() {
        for d in &cfg.disks {
            if !Path::new(d).exists() {
                bail!(
                    "disk {d} (xenlift.disks) does not exist on this machine; its disks are: {}",
                    if local.is_empty() {
                        "none".to_string()
                    } else {
                        local.join(", ")
                    }
                );
            }
        }
        return Ok(cfg.disks.clone());
    }
    if local.is_empty() {
        bail!(
            "no disks found on this machine (is the storage controller's driver in the \
             appliance? see the modules list at boot); nothing to do"
        );
    }
    Ok(local)
}

/// `/dev/NAME` of each whole disk with media, in name order.
pub fn local_disks(sys_block: &Path, boot_device: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(sys_block) else {
        return out;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        let size: u64 = std::fs::read_to_string(dir.join("size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let skip = dir.join("partition").exists()
            || size == 0
            || ["loop", "ram", "zram", "sr", "nbd", "dm-", "md"]
                .iter()
                .any(|p| name.starts_with(p))
            || boot_device.is_some_and(|b| b.trim_start_matches("/dev/") == name);
        if !skip {
            out.push(format!("/dev/{name}"));
        }
    }
    out.sort();
    out
}

/// The arguments, parsed by the agent's own command-line parser.
pub fn parse_cli(argv: &[String], action: Action) -> anyhow::Result<crate::Cli> {
    let full = std::iter::once("xenlift".to_string()).chain(argv.iter().cloned());
    crate::Cli::try_parse_from(full).map_err(|e| {
        let mut text = e.render().to_string();
        // clap quotes rejected values: never let a secret through.
        for pair in argv.windows(2) {
            if pair[0].starts_with("--") && super::config::is_secret(&pair[0]) {
                text = text.replace(&pair[1], "********");
            }
        }
        let first = text.lines().next().unwrap_or("").trim_start_matches("error: ");
        anyhow::anyhow!(
            "the configuration does not fit `xenlift {}`: {first} \
             (options mirror the command line: xenlift.NAME=VALUE or NAME = \"VALUE\" is --NAME VALUE)",
            action.subcommand()
        )
    })
}
