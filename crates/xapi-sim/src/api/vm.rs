//! VM calls beyond the generated ones: clone, provision, destroy, and the
//! setters XAPI checks (VCPUs, memory limits).

use std::collections::BTreeMap;

use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::{json, Value as Json};

use super::args::{existing, Args};
use super::devices::{used_disks, used_vifs, MAX_DISK, MAX_VIF};
use super::sr::refresh_usage;
use super::vdi::{create_vdi, NewVdi};
use super::{Ctx, Handler};
use crate::db::classes::class;
use crate::db::{new_uuid, Record};
use crate::error::ApiError;
use crate::sparse;
use crate::value::Value;

pub fn method(op: &str) -> Option<(usize, Handler)> {
    Some(match op {
        "clone" => (2, clone),
        "provision" => (1, provision),
        "destroy" => (1, destroy),
        "set_VCPUs_max" => (2, set_vcpus_max),
        "set_VCPUs_at_startup" => (2, set_vcpus_at_startup),
        "set_memory_limits" => (5, set_memory_limits),
        "get_allowed_VBD_devices" => (1, allowed_vbd_devices),
        "get_allowed_VIF_devices" => (1, allowed_vif_devices),
        _ => return None,
    })
}

const VCPU_RULE: &str = "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max";

fn set_field(ctx: &mut Ctx, vm: &str, field: &str, value: Json) {
    if let Some(r) = ctx.db.get_mut("VM", vm) {
        r.insert(field.to_owned(), value);
    }
}

fn set_vcpus_max(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    let vm = args.reference(ctx.db, 0, "VM")?;
    let n = args.int(1, "value")?;
    if n < 1 || n < ctx.db.int_of("VM", &vm, "VCPUs_at_startup") {
        return Err(ApiError::invalid_value(VCPU_RULE, &n.to_string()));
    }
    set_field(ctx, &vm, "VCPUs_max", json!(n));
    Ok(Value::Nil)
}

fn set_vcpus_at_startup(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    let vm = args.reference(ctx.db, 0, "VM")?;
    let n = args.int(1, "value")?;
    if n < 1 || n > ctx.db.int_of("VM", &vm, "VCPUs_max") {
        return Err(ApiError::invalid_value(VCPU_RULE, &n.to_string()));
    }
    set_field(ctx, &vm, "VCPUs_at_startup", json!(n));
    Ok(Value::Nil)
}

fn set_memory_limits(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    let vm = args.reference(ctx.db, 0, "VM")?;
    let static_min = args.int(1, "static_min")?;
    let static_max = args.int(2, "static_max")?;
    let dynamic_min = args.int(3, "dynamic_min")?;
    let dynamic_max = args.int(4, "dynamic_max")?;
    if !(0 <= static_min
        && static_min <= dynamic_min
        && dynamic_min <= dynamic_max
        && dynamic_max <= static_max)
    {
        return Err(ApiError::new("MEMORY_CONSTRAINT_VIOLATION_ORDER", &[]));
    }
    set_field(ctx, &vm, "memory_static_min", json!(static_min));
    set_field(ctx, &vm, "memory_static_max", json!(static_max));
    set_field(ctx, &vm, "memory_dynamic_min", json!(dynamic_min));
    set_field(ctx, &vm, "memory_dynamic_max", json!(dynamic_max));
    set_field(ctx, &vm, "memory_target", json!(dynamic_min));
    Ok(Value::Nil)
}

fn allowed_vbd_devices(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    let vm = args.reference(ctx.db, 0, "VM")?;
    let used = used_disks(ctx.db, &vm);
    Ok(free_devices(MAX_DISK, &used))
}

fn allowed_vif_devices(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    let vm = args.reference(ctx.db, 0, "VM")?;
    let used = used_vifs(ctx.db, &vm);
    Ok(free_devices(MAX_VIF, &used))
}

fn free_devices(max: u32, used: &[u32]) -> Value {
    Value::Array(
        (0..=max)
            .filter(|n| !used.contains(n))
            .map(|n| Value::Str(n.to_string()))
            .collect(),
    )
}

fn destroy(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    let vm = args.reference(ctx.db, 0, "VM")?;
    if ctx.db.bool_of("VM", &vm, "is_default_template") {
        return Err(ApiError::with(
            "VM_CANNOT_DELETE_DEFAULT_TEMPLATE",
            vec![vm],
        ));
    }
    for vbd in ctx.db.find("VBD", "VM", &vm) {
        ctx.db.destroy("VBD", &vbd);
    }
    for vif in ctx.db.find("VIF", "VM", &vm) {
        ctx.db.destroy("VIF", &vif);
    }
    ctx.db.destroy("VM", &vm);
    Ok(Value::Nil)
}

/// Copies a VM with its devices; disks are copied, CDs shared.
fn clone(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    let vm = args.reference(ctx.db, 0, "VM")?;
    let name = args.str(1, "new_name")?.to_owned();
    let mut record = ctx.db.get("VM", &vm).cloned().unwrap_or_default();
    record.insert("uuid".into(), json!(new_uuid()));
    record.insert("name_label".into(), json!(name));
    record.insert("is_default_template".into(), json!(false));
    record.insert("power_state".into(), json!("Halted"));
    if let Some(Json::Object(oc)) = record.get_mut("other_config") {
        oc.insert("mac_seed".into(), json!(new_uuid()));
    }
    let vm_class = class("VM").ok_or_else(|| ApiError::internal("no VM class"))?;
    let copy = ctx.db.create(vm_class, record);
    for vbd in ctx.db.find("VBD", "VM", &vm) {
        let mut v = ctx.db.get("VBD", &vbd).cloned().unwrap_or_default();
        let vdi = v.get("VDI").and_then(Json::as_str).unwrap_or("").to_owned();
        if v.get("type").and_then(Json::as_str) == Some("Disk") && ctx.db.exists("VDI", &vdi) {
            v.insert("VDI".into(), json!(clone_vdi(ctx, &vdi)?));
        }
        v.insert("uuid".into(), json!(new_uuid()));
        v.insert("VM".into(), json!(copy));
        let vbd_class = class("VBD").ok_or_else(|| ApiError::internal("no VBD class"))?;
        ctx.db.create(vbd_class, v);
    }
    for vif in ctx.db.find("VIF", "VM", &vm) {
        let mut v = ctx.db.get("VIF", &vif).cloned().unwrap_or_default();
        v.insert("uuid".into(), json!(new_uuid()));
        v.insert("VM".into(), json!(copy));
        let vif_class = class("VIF").ok_or_else(|| ApiError::internal("no VIF class"))?;
        ctx.db.create(vif_class, v);
    }
    Ok(Value::Str(copy))
}

fn clone_vdi(ctx: &mut Ctx, vdi: &str) -> Result<String, ApiError> {
    let mut record = ctx.db.get("VDI", vdi).cloned().unwrap_or_default();
    let old_uuid = ctx.db.str_of("VDI", vdi, "uuid").to_owned();
    let uuid = new_uuid();
    sparse::copy(&ctx.sim.vdi_path(&old_uuid), &ctx.sim.vdi_path(&uuid))
        .map_err(|e| ApiError::internal(&format!("copying VDI {old_uuid}: {e}")))?;
    record.insert("uuid".into(), json!(uuid));
    record.insert("location".into(), json!(uuid));
    let sr = record
        .get("SR")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_owned();
    let vdi_class = class("VDI").ok_or_else(|| ApiError::internal("no VDI class"))?;
    let copy = ctx.db.create(vdi_class, record);
    refresh_usage(ctx.sim, ctx.db, &sr);
    Ok(copy)
}

/// One `<disk .../>` of a template's `other_config:disks`.
struct DiskSpec {
    device: String,
    size: i64,
    sr: String,
    bootable: bool,
    vdi_type: String,
}

fn parse_disks(xml: &str) -> Result<Vec<DiskSpec>, ApiError> {
    let bad = |why: String| ApiError::internal(&format!("other_config:disks: {why}"));
    let mut reader = Reader::from_str(xml);
    let mut disks = Vec::new();
    loop {
        match reader.read_event().map_err(|e| bad(e.to_string()))? {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"disk" => {
                let mut attrs = BTreeMap::new();
                for a in e.attributes() {
                    let a = a.map_err(|e| bad(e.to_string()))?;
                    let value = a.unescape_value().map_err(|e| bad(e.to_string()))?;
                    attrs.insert(
                        String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                        value.into_owned(),
                    );
                }
                let get = |k: &str| {
                    attrs
                        .get(k)
                        .cloned()
                        .ok_or_else(|| bad(format!("a disk has no {k}")))
                };
                disks.push(DiskSpec {
                    device: get("device")?,
                    size: get("size")?.parse().map_err(|_| bad("bad size".into()))?,
                    sr: get("sr")?,
                    bootable: get("bootable")? == "true",
                    vdi_type: attrs
                        .get("type")
                        .cloned()
                        .unwrap_or_else(|| "system".into()),
                });
            }
            _ => {}
        }
    }
    Ok(disks)
}

/// As XAPI: the VM stops being a template, and the disks its
/// `other_config:disks` describes are created (SR by UUID; "" fails).
fn provision(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    let vm = args.reference(ctx.db, 0, "VM")?;
    set_field(ctx, &vm, "is_a_template", json!(false));
    let disks_xml = ctx
        .db
        .get("VM", &vm)
        .and_then(|r| r.get("other_config"))
        .and_then(|oc| oc.get("disks"))
        .and_then(Json::as_str)
        .map(str::to_owned);
    let Some(xml) = disks_xml else {
        return Ok(Value::Nil);
    };
    let mut made: Vec<(String, String)> = Vec::new();
    let outcome = parse_disks(&xml).and_then(|disks| {
        disks.iter().try_for_each(|disk| {
            let pair = provision_disk(ctx, &vm, disk)?;
            made.push(pair);
            Ok(())
        })
    });
    if let Err(e) = outcome {
        for (vbd, vdi) in made {
            ctx.db.destroy("VBD", &vbd);
            let uuid = ctx.db.str_of("VDI", &vdi, "uuid").to_owned();
            let _ = std::fs::remove_file(ctx.sim.vdi_path(&uuid));
            ctx.db.destroy("VDI", &vdi);
        }
        return Err(e);
    }
    if let Some(Json::Object(oc)) = ctx
        .db
        .get_mut("VM", &vm)
        .and_then(|r| r.get_mut("other_config"))
    {
        oc.remove("disks");
        oc.remove("postinstall");
    }
    Ok(Value::Nil)
}

fn provision_disk(ctx: &mut Ctx, vm: &str, disk: &DiskSpec) -> Result<(String, String), ApiError> {
    let sr = ctx
        .db
        .find_uuid("SR", &disk.sr)
        .ok_or_else(|| ApiError::uuid_invalid("sr", &disk.sr))?;
    let mut new = NewVdi::user(&sr, "", "Created by template provisioner", disk.size);
    new.0.insert("type".into(), json!(disk.vdi_type));
    let vm_uuid = ctx.db.str_of("VM", vm, "uuid").to_owned();
    new.0
        .insert("sm_config".into(), json!({ "vmhint": vm_uuid }));
    let vdi = create_vdi(ctx.sim, ctx.db, new)?;
    existing(ctx.db, "VM", vm)?;
    if used_disks(ctx.db, vm)
        .iter()
        .any(|n| Some(*n) == super::devices::disk_number(&disk.device))
    {
        return Err(ApiError::with(
            "DEVICE_ALREADY_EXISTS",
            vec![disk.device.clone()],
        ));
    }
    let mut vbd = Record::new();
    vbd.insert("VM".into(), json!(vm));
    vbd.insert("VDI".into(), json!(vdi));
    vbd.insert("userdevice".into(), json!(disk.device));
    vbd.insert("bootable".into(), json!(disk.bootable));
    vbd.insert("mode".into(), json!("RW"));
    vbd.insert("type".into(), json!("Disk"));
    vbd.insert("unpluggable".into(), json!(disk.vdi_type != "system"));
    vbd.insert("empty".into(), json!(false));
    vbd.insert("other_config".into(), json!({ "owner": "" }));
    vbd.insert("qos_algorithm_type".into(), json!(""));
    vbd.insert("qos_algorithm_params".into(), json!({}));
    let vbd_class = class("VBD").ok_or_else(|| ApiError::internal("no VBD class"))?;
    let vbd_ref = ctx.db.create(vbd_class, vbd);
    if let Some(r) = ctx.db.get_mut("VDI", &vdi) {
        r.insert("name_label".into(), json!(disk.device));
    }
    Ok((vbd_ref, vdi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_disks() {
        let disks = parse_disks(
            r#"<provision><disk device="0" size="8589934592" sr="" bootable="true" type="system"/></provision>"#,
        )
        .unwrap();
        assert_eq!(disks.len(), 1);
        assert_eq!(disks[0].size, 8 << 30);
        assert!(disks[0].bootable);
        assert_eq!(disks[0].sr, "");
        assert!(parse_disks(r#"<provision><disk device="0"/></provision>"#).is_err());
    }
}
