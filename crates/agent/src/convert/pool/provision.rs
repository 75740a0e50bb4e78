//! The VM on the pool: made blocked (it must not start while its disks are
//! copied), marked as xenlift's work in progress, and at the end either
//! finished (unblocked, tagged) or left clearly incomplete, or removed.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::json;
use xapi::{
    Session, StringMap, VbdRef, VbdSpec, VdiRef, VdiSpec, VifRef, VifSpec, VmRef, VmSettings,
    BLANK_TEMPLATE,
};

use super::plan::VmPlan;
use crate::units::human;

pub const TAG: &str = "xenlift";
const BLOCK_REASON: &str = "xenlift is importing this VM's disks; do not start it yet";
const KEY_STATE: &str = "xenlift-state";

/// What was made so far (cleanup needs it even after a failure part way).
#[derive(Debug, Default)]
pub struct Provisioned {
    pub vm: Option<VmRef>,
    pub vm_uuid: String,
    pub vdis: Vec<(VdiRef, String)>,
    pub vbds: Vec<VbdRef>,
    pub vifs: Vec<VifRef>,
}

fn now_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let t = media::date::Utc::from_unix(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

pub fn source_text(plan: &VmPlan) -> String {
    match &plan.source_hostname {
        Some(h) => format!("host {h}"),
        None => plan
            .disks
            .iter()
            .map(|d| d.source.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Makes the VM, its disks and interfaces. On error, `made` holds what exists.
pub fn provision(
    session: &Session,
    plan: &VmPlan,
    sr: &xapi::SrRef,
    made: &mut Provisioned,
) -> anyhow::Result<()> {
    let vm = session
        .vm_from_template(BLANK_TEMPLATE, &plan.name)
        .with_context(|| format!("creating the VM {:?}", plan.name))?;
    made.vm = Some(vm.clone());
    session
        .vm_block_operation(&vm, "start", BLOCK_REASON)
        .context("blocking the VM's start")?;
    made.vm_uuid = session.vm_uuid(&vm).context("reading the VM's UUID")?;
    let date = now_utc();
    let serials: Vec<String> = plan
        .disks
        .iter()
        .map(|d| d.serial.clone().unwrap_or_else(|| d.source.clone()))
        .collect();
    let other = [
        (KEY_STATE, "importing".to_string()),
        (
            "xenlift-source-hostname",
            plan.source_hostname.clone().unwrap_or_default(),
        ),
        ("xenlift-source-disks", serials.join(",")),
        ("xenlift-version", env!("CARGO_PKG_VERSION").to_string()),
        ("xenlift-date", date.clone()),
    ];
    for (k, v) in &other {
        session
            .vm_set_other_config(&vm, k, v)
            .context("recording the source on the VM")?;
    }
    session
        .vm_set_description(
            &vm,
            &format!(
                "Being converted by xenlift {} from {} since {date}: incomplete until the import ends",
                env!("CARGO_PKG_VERSION"),
                source_text(plan)
            ),
        )
        .context("describing the VM")?;
    session
        .vm_apply(
            &vm,
            &VmSettings {
                vcpus: plan.vcpus,
                memory_bytes: plan.memory_bytes,
                firmware: plan.firmware,
                secure_boot: plan.secure_boot,
            },
        )
        .context("setting the VM's CPUs, memory and firmware")?;
    for (i, d) in plan.disks.iter().enumerate() {
        let mut oc = StringMap::new();
        oc.insert("xenlift-source".into(), d.source.clone());
        let vdi = session
            .vdi_create(&VdiSpec {
                sr: sr.clone(),
                name_label: format!("{} disk {i}", plan.name),
                name_description: format!("{} from {}", human(d.size), d.source),
                virtual_size: d.size,
                other_config: oc,
            })
            .with_context(|| {
                format!(
                    "creating the virtual disk for {} on SR {:?}",
                    d.source, plan.sr
                )
            })?;
        let uuid = session.vdi_uuid(&vdi).context("reading the VDI's UUID")?;
        made.vdis.push((vdi.clone(), uuid));
        let vbd = session
            .vbd_create(&VbdSpec {
                vm: vm.clone(),
                vdi,
                userdevice: d.userdevice.clone(),
                bootable: d.bootable,
                other_config: StringMap::new(),
            })
            .with_context(|| format!("attaching the disk for {}", d.source))?;
        made.vbds.push(vbd);
    }
    for (i, n) in plan.nics.iter().enumerate() {
        let vif = session
            .vif_create(&VifSpec {
                vm: vm.clone(),
                network: n.network_ref.clone(),
                device: i.to_string(),
                mac: n.mac.clone(),
                mtu: n.mtu,
                other_config: StringMap::new(),
            })
            .with_context(|| format!("creating the interface with MAC {}", n.mac))?;
        made.vifs.push(vif);
    }
    Ok(())
}

/// The VM is complete: start allowed, tagged, described.
pub fn finish(session: &Session, plan: &VmPlan, made: &Provisioned) -> anyhow::Result<()> {
    let vm = made.vm.as_ref().context("no VM")?;
    session
        .vm_set_other_config(vm, KEY_STATE, "complete")
        .context("marking the VM complete")?;
    session
        .vm_set_description(
            vm,
            &format!(
                "Converted by xenlift {} from {} on {}",
                env!("CARGO_PKG_VERSION"),
                source_text(plan),
                now_utc()
            ),
        )
        .context("describing the VM")?;
    session.vm_add_tag(vm, TAG).context("tagging the VM")?;
    // Last: only a VM that is complete may start.
    session
        .vm_unblock_operation(vm, "start")
        .context("allowing the VM to start")?;
    Ok(())
}

/// Leaves the VM blocked and says, in its name and description, that it is
/// not a finished conversion.
pub fn mark_incomplete(session: &Session, plan: &VmPlan, made: &Provisioned, why: &str) {
    let Some(vm) = &made.vm else { return };
    let steps = [
        session.vm_block_operation(
            vm,
            "start",
            "xenlift: this conversion did not finish; the disks are incomplete",
        ),
        session.vm_set_other_config(vm, KEY_STATE, "incomplete"),
        session.vm_set_other_config(vm, "xenlift-error", why),
        session.call_void(
            "VM.set_name_label",
            &[json!(vm), json!(format!("{} (incomplete)", plan.name))],
        ),
        session.vm_set_description(
            vm,
            &format!(
                "INCOMPLETE: xenlift's conversion from {} failed ({why}). Do not start; delete it and convert again.",
                source_text(plan)
            ),
        ),
    ];
    for e in steps.into_iter().filter_map(Result::err) {
        tracing::warn!(error = %e, "could not mark the VM incomplete");
    }
}

/// Removes the VM, its interfaces and disks (`--cleanup-on-failure`).
pub fn remove(session: &Session, made: &Provisioned) -> Vec<String> {
    let mut problems = Vec::new();
    let mut note = |what: &str, r: xapi::Result<()>| {
        if let Err(e) = r {
            problems.push(format!("could not remove {what}: {e}"));
        }
    };
    for vbd in &made.vbds {
        note("a disk attachment", session.vbd_destroy(vbd));
    }
    for vif in &made.vifs {
        note("a network interface", session.vif_destroy(vif));
    }
    for (vdi, uuid) in &made.vdis {
        note(&format!("VDI {uuid}"), session.vdi_destroy(vdi));
    }
    if let Some(vm) = &made.vm {
        note(&format!("VM {}", made.vm_uuid), session.vm_destroy(vm));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_iso() {
        let d = now_utc();
        assert_eq!(d.len(), 20, "{d}");
        assert!(d.starts_with("20") && d.ends_with('Z'), "{d}");
    }
}
