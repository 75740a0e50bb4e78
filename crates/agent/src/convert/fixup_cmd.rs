//! `xenlift fixup`: the guest fix-up alone, against a target a conversion
//! already wrote: a `dir:` directory, or a halted VM on a pool.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use disk::{DiskLayout, SourceDisk};
use extents::ReadAt;
use wire::Format;

use super::dir_fixup::fixup_dir;
use super::pool::fixup::{fix_and_send, CopiedDisk};
use super::pool::{login, ConnectArgs};
use super::Target;

/// Arguments of `xenlift fixup`.
#[derive(Debug, clap::Args)]
pub struct FixupArgs {
    /// The converted target: dir:PATH (a directory `xenlift convert --to dir:`
    /// wrote), or https://HOST with --vm.
    #[arg(long)]
    pub to: String,
    /// The VM a conversion made (its UUID), for a pool target. It must be halted.
    #[arg(long)]
    pub vm: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Pin the guest's interface NAME to MAC (repeatable), as in eno1=aa:bb:cc:dd:ee:ff.
    #[arg(long = "nic", value_parser = parse_nic)]
    pub nics: Vec<guest::SourceNic>,
    /// Disable the services of other hypervisors' guest tools (always reported).
    #[arg(long)]
    pub disable_foreign_tools: bool,
    /// The source disks, in the order the conversion was given them.
    #[arg(required = true)]
    pub disks: Vec<PathBuf>,
}

fn parse_nic(s: &str) -> Result<guest::SourceNic, String> {
    let (name, mac) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: use NAME=MAC, as in eno1=aa:bb:cc:dd:ee:ff"))?;
    let mac = mac.to_ascii_lowercase();
    let ok = mac.len() == 17
        && mac
            .split(':')
            .all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit()));
    if !ok || name.is_empty() {
        return Err(format!("{s:?}: use NAME=MAC, as in eno1=aa:bb:cc:dd:ee:ff"));
    }
    Ok(guest::SourceNic {
        mac,
        name: Some(name.to_string()),
    })
}

pub fn run(args: FixupArgs) -> anyhow::Result<()> {
    let target = Target::parse(&args.to).context("reading --to")?;
    let disks = args
        .disks
        .iter()
        .map(|p| SourceDisk::open(p).with_context(|| format!("opening {}", p.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let layouts = disk::inspect(&disks).context("inspecting the disks")?;
    let options = guest::Options {
        nics: args.nics.clone(),
        disable_foreign_tools: args.disable_foreign_tools,
        ..guest::Options::default()
    };
    match target {
        Target::Dir(dir) => {
            let readers: Vec<Arc<dyn ReadAt>> = disks
                .into_iter()
                .map(|d| Arc::new(d) as Arc<dyn ReadAt>)
                .collect();
            fixup_dir(&dir, &readers, &layouts, &options)
        }
        Target::Xapi { url } => fixup_vm(&url, &args, disks, &layouts, &options),
    }
}

/// Sends the fix-up's changes onto the disks of a halted VM that a
/// conversion of these sources made.
fn fixup_vm(
    url: &str,
    args: &FixupArgs,
    disks: Vec<SourceDisk>,
    layouts: &[DiskLayout],
    options: &guest::Options,
) -> anyhow::Result<()> {
    let uuid = args
        .vm
        .as_deref()
        .context("name the VM the conversion made: --vm UUID")?;
    let session = login(url, &args.connect)?;
    let vm = session
        .vm_by_uuid(uuid)
        .with_context(|| format!("finding the VM {uuid}"))?;
    let record = session
        .vm_record(&vm)
        .with_context(|| format!("reading the VM {uuid}"))?;
    anyhow::ensure!(
        record.power_state == "Halted",
        "the VM {uuid} is {}: shut it down first (the fix-up writes its disks)",
        record.power_state
    );
    let mut vbds = Vec::new();
    for vbd in &record.VBDs {
        let r = session
            .vbd_record(vbd)
            .with_context(|| format!("reading the disks of the VM {uuid}"))?;
        if r.kind == "Disk" && !r.empty {
            vbds.push(r);
        }
    }
    vbds.sort_by_key(|r| r.userdevice.parse::<u32>().unwrap_or(u32::MAX));
    anyhow::ensure!(
        vbds.len() == disks.len(),
        "the VM {uuid} has {} disks but {} were given: name the source disks in the order \
         the conversion was given them",
        vbds.len(),
        disks.len()
    );
    let mut readers: Vec<Arc<dyn ReadAt>> = Vec::new();
    let mut copied = Vec::new();
    for (disk, layout) in disks.into_iter().zip(layouts) {
        // The conversion's plan: what its copy holds (zeros elsewhere).
        let planned = super::source::plan(disk, layout, Format::RawChunked, false)?;
        readers.push(planned.disk.clone());
        copied.push(planned.plan);
    }
    let uuids = vbds
        .iter()
        .map(|r| session.vdi_uuid(&r.vdi))
        .collect::<Result<Vec<_>, _>>()
        .context("reading the VM's disks")?;
    let targets: Vec<CopiedDisk<'_>> = vbds
        .iter()
        .zip(&copied)
        .zip(&uuids)
        .map(|((vbd, plan), vdi_uuid)| CopiedDisk {
            vdi: &vbd.vdi,
            vdi_uuid,
            userdevice: &vbd.userdevice,
            size: plan.size(),
            copied: plan.ranges(),
            format: if plan.size() > wire::VHD_MAX_SIZE {
                Format::RawChunked
            } else {
                Format::Vhd
            },
        })
        .collect();
    let delivered = fix_and_send(&session, &readers, layouts, options, &targets)?;
    let sent: u64 = delivered
        .deltas
        .iter()
        .flatten()
        .map(|d| d.wire_bytes)
        .sum();
    println!("xenlift: fixed up the VM {uuid}: {sent} bytes of changes sent");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nic_arguments() {
        let n = parse_nic("eno1=AA:bb:cc:dd:ee:ff").unwrap();
        assert_eq!(n.mac, "aa:bb:cc:dd:ee:ff");
        assert_eq!(n.name.as_deref(), Some("eno1"));
        assert!(parse_nic("eno1").is_err());
        assert!(parse_nic("eno1=aa:bb").is_err());
        assert!(parse_nic("=aa:bb:cc:dd:ee:ff").is_err());
    }
}
