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
    let before = session
        .vm_record(&vm)
        .with_context(|| format!("reading the VM {uuid}"))?;
    // A block an earlier fix-up left (failed, or killed half way) is this
    // run's to lift; any other (an unfinished conversion's) is put back.
    let earlier_block = before
        .blocked_operations
        .get("start")
        .filter(|reason| ![FIXUP_RUNNING, FIXUP_FAILED].contains(&reason.as_str()))
        .cloned();
    // Blocked before the power state is checked: nobody can start the VM
    // between the check and the last write to its disks.
    session
        .vm_block_operation(&vm, "start", FIXUP_RUNNING)
        .with_context(|| format!("blocking the VM {uuid} from starting"))?;
    let sent = match fixup_blocked_vm(&session, &vm, uuid, disks, layouts, options) {
        Ok(sent) => {
            restore_start(&session, &vm, earlier_block.as_deref()).with_context(|| {
                format!("the fix-up is done, but the VM {uuid} is still blocked from starting")
            })?;
            sent
        }
        Err(FixupFailure::BeforeWriting(e)) => {
            restore_start(&session, &vm, earlier_block.as_deref())
                .with_context(|| format!("unblocking the VM {uuid} again after: {e:#}"))?;
            return Err(e);
        }
        Err(FixupFailure::Unfinished(e)) => {
            if let Err(mark) = session.vm_block_operation(&vm, "start", FIXUP_FAILED) {
                tracing::warn!(error = %mark, "could not mark the VM's fix-up as unfinished");
            }
            return Err(e.context(format!(
                "the fix-up did not finish: the VM {uuid} stays blocked from starting; \
                 run xenlift fixup again"
            )));
        }
    };
    println!("xenlift: fixed up the VM {uuid}: {sent} bytes of changes sent");
    Ok(())
}

/// The reason XenCenter shows while the fix-up writes the disks.
const FIXUP_RUNNING: &str = "xenlift: the guest fix-up is writing the disks";
/// The reason left when the fix-up stopped half way.
const FIXUP_FAILED: &str = "xenlift: the guest fix-up did not finish; the disks may be half \
                            patched: run xenlift fixup again";

/// How a fix-up onto a VM failed: before its disks were touched (the VM is
/// as it was), or after (its disks may be half patched).
enum FixupFailure {
    BeforeWriting(anyhow::Error),
    Unfinished(anyhow::Error),
}

/// Puts back the start block the VM had before the fix-up (none, or the
/// reason it had, as a conversion left incomplete has).
fn restore_start(
    session: &xapi::Session,
    vm: &xapi::VmRef,
    earlier: Option<&str>,
) -> anyhow::Result<()> {
    match earlier {
        Some(reason) => session.vm_block_operation(vm, "start", reason)?,
        None => session.vm_unblock_operation(vm, "start")?,
    }
    Ok(())
}

/// The fix-up onto the disks of the VM, already blocked from starting,
/// once it is seen halted; returns the bytes of changes sent.
fn fixup_blocked_vm(
    session: &xapi::Session,
    vm: &xapi::VmRef,
    uuid: &str,
    disks: Vec<SourceDisk>,
    layouts: &[DiskLayout],
    options: &guest::Options,
) -> Result<u64, FixupFailure> {
    let (readers, copied, vbds, uuids) = session
        .vm_record(vm)
        .with_context(|| format!("reading the VM {uuid}"))
        .and_then(|record| {
            anyhow::ensure!(
                record.power_state == "Halted",
                "the VM {uuid} is {}: shut it down first (the fix-up writes its disks)",
                record.power_state
            );
            prepare_targets(session, uuid, &record, disks, layouts)
        })
        .map_err(FixupFailure::BeforeWriting)?;
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
    let delivered = fix_and_send(session, &readers, layouts, options, &targets)
        .map_err(FixupFailure::Unfinished)?;
    Ok(delivered
        .deltas
        .iter()
        .flatten()
        .map(|d| d.wire_bytes)
        .sum())
}

type Prepared = (
    Vec<Arc<dyn ReadAt>>,
    Vec<wire::BlockPlan>,
    Vec<xapi::VbdRecord>,
    Vec<String>,
);

/// The VM's disks in userdevice order, matched with the sources and what
/// the conversion copied of each.
fn prepare_targets(
    session: &xapi::Session,
    uuid: &str,
    record: &xapi::VmRecord,
    disks: Vec<SourceDisk>,
    layouts: &[DiskLayout],
) -> anyhow::Result<Prepared> {
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
    Ok((readers, copied, vbds, uuids))
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
