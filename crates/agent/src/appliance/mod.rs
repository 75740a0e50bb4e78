//! The appliance side of the agent: `xenlift appliance run` (what init
//! starts: read the configuration, run the configured command, say how to
//! end) and the customize commands that put an answer file into a finished
//! ISO or PXE initrd.

pub mod config;
pub mod consoles;
pub mod customize;
pub mod dialog;
pub mod fetch;
pub mod interactive;
pub mod run;

use clap::{Args, Subcommand};

/// `xenlift appliance ...`
#[derive(Debug, Args)]
pub struct ApplianceArgs {
    #[command(subcommand)]
    pub command: ApplianceCommand,
}

#[derive(Debug, Subcommand)]
pub enum ApplianceCommand {
    /// Run as configured by the kernel command line and answer files (init
    /// starts this at boot; --dry-run shows what would run).
    Run(run::RunArgs),
}

/// `xenlift iso ...`
#[derive(Debug, Args)]
pub struct IsoArgs {
    #[command(subcommand)]
    pub command: IsoCommand,
}

#[derive(Debug, Subcommand)]
pub enum IsoCommand {
    /// Embed an answer file into a xenlift ISO, in place (or into a copy).
    Customize(customize::IsoCustomize),
    /// Show the answer file embedded in a xenlift ISO (secrets hidden).
    Show(customize::IsoShow),
}

/// `xenlift pxe ...`
#[derive(Debug, Args)]
pub struct PxeArgs {
    #[command(subcommand)]
    pub command: PxeCommand,
}

#[derive(Debug, Subcommand)]
pub enum PxeCommand {
    /// Write a copy of the xenlift initrd that carries an answer file.
    Customize(customize::PxeCustomize),
}

pub fn appliance(args: ApplianceArgs) -> anyhow::Result<()> {
    match args.command {
        ApplianceCommand::Run(a) => run::run(a),
    }
}

pub fn iso(args: IsoArgs) -> anyhow::Result<()> {
    match args.command {
        IsoCommand::Customize(a) => customize::iso_customize(a),
        IsoCommand::Show(a) => customize::iso_show(a),
    }
}

pub fn pxe(args: PxeArgs) -> anyhow::Result<()> {
    match args.command {
        PxeCommand::Customize(a) => customize::pxe_customize(a),
    }
}

#[cfg(test)]
mod tests;
