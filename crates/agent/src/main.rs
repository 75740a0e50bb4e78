//! `xenlift`: moves physical machines and foreign VMs into XenServer / XCP-ng.
//! This file only parses the command line and dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod appliance;
mod convert;
mod inspect;
mod units;

/// Move physical servers and foreign VMs into XenServer / XCP-ng.
#[derive(Debug, Parser)]
#[command(name = "xenlift", version, about)]
struct Cli {
    /// Log filter (error, warn, info, debug, trace, or a tracing directive).
    #[arg(long, global = true, env = "XENLIFT_LOG", default_value = "warn")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show disks, partitions, contents and what would be copied.
    Inspect(inspect::InspectArgs),
    /// Copy disks to a target: XenServer / XCP-ng, or a local directory.
    Convert(convert::ConvertArgs),
    /// Re-run the guest fix-up alone against a converted target.
    Fixup(convert::FixupArgs),
    /// The bootable appliance: run as configured at boot.
    Appliance(appliance::ApplianceArgs),
    /// Customize a xenlift ISO (embed an answer file).
    Iso(appliance::IsoArgs),
    /// Customize the xenlift PXE initrd (add an answer file).
    Pxe(appliance::PxeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The appliance sets up logging once it has read its configuration.
    if !matches!(cli.command, Command::Appliance(_)) {
        init_logging(&cli.log);
    }
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xenlift: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Inspect(args) => inspect::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Fixup(args) => convert::run_fixup(args),
        Command::Appliance(args) => appliance::appliance(args),
        Command::Iso(args) => appliance::iso(args),
        Command::Pxe(args) => appliance::pxe(args),
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Catches duplicate or conflicting options (as branches merge) before a user does.
    #[test]
    fn command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
