//! `VDI.create` and `VDI.destroy`: each VDI is a sparse file in the state
//! directory, sized to the VDI.

use std::fs::OpenOptions;

use serde_json::{json, Value as Json};

use super::args::{ctor_record, existing, Args};
use super::sr::refresh_usage;
use super::{Ctx, Handler};
use crate::db::classes::class;
use crate::db::{new_uuid, Db, Record};
use crate::error::ApiError;
use crate::sim::Sim;
use crate::value::Value;

pub fn method(op: &str) -> Option<(usize, Handler)> {
    Some(match op {
        "create" => (1, create),
        "destroy" => (1, destroy),
        _ => return None,
    })
}

fn create(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    let record = ctor_record("VDI", args.at(0))?;
    create_vdi(ctx.sim, ctx.db, NewVdi(record)).map(Value::Str)
}

/// A checked constructor record of a VDI.
pub struct NewVdi(pub Record);

impl NewVdi {
    /// The record XAPI's own callers build (import, provision).
    pub fn user(sr: &str, name_label: &str, name_description: &str, virtual_size: i64) -> Self {
        let mut r = Record::new();
        r.insert("SR".into(), json!(sr));
        r.insert("name_label".into(), json!(name_label));
        r.insert("name_description".into(), json!(name_description));
        r.insert("virtual_size".into(), json!(virtual_size));
        r.insert("type".into(), json!("user"));
        r.insert("sharable".into(), json!(false));
        r.insert("read_only".into(), json!(false));
        r.insert("other_config".into(), json!({}));
        r.insert("xenstore_data".into(), json!({}));
        r.insert("sm_config".into(), json!({}));
        r.insert("tags".into(), json!([]));
        NewVdi(r)
    }
}

/// Creates a VDI and its file after the checks XAPI and the SM backend make.
pub fn create_vdi(sim: &Sim, db: &mut Db, new: NewVdi) -> Result<String, ApiError> {
    let mut record = new.0;
    let sr = record
        .get("SR")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_owned();
    existing(db, "SR", &sr)?;
    if record.get("type").and_then(Json::as_str) == Some("cbt_metadata") {
        return Err(ApiError::new(
            "VDI_INCOMPATIBLE_TYPE",
            &["", "cbt_metadata"],
        ));
    }
    let requested = record
        .get("virtual_size")
        .and_then(Json::as_i64)
        .unwrap_or(0);
    if requested < 0 {
        return Err(ApiError::invalid_value(
            "virtual_size",
            &requested.to_string(),
        ));
    }
    if db.str_of("SR", &sr, "content_type") == "iso" {
        return Err(ApiError::with("SR_OPERATION_NOT_SUPPORTED", vec![sr]));
    }
    // Sector I/O needs whole sectors, as the SM backends round up too.
    let size = requested.saturating_add(511) / 512 * 512;
    refresh_usage(sim, db, &sr);
    let physical = db.int_of("SR", &sr, "physical_size");
    let allocated = db.int_of("SR", &sr, "virtual_allocation");
    let free = physical.saturating_sub(allocated).max(0);
    if sim.faults.take(|f| &mut f.sr_full, |_| true).is_some() || size > free {
        return Err(ApiError::with(
            "SR_FULL",
            vec![size.to_string(), free.to_string()],
        ));
    }
    let uuid = new_uuid();
    let path = sim.vdi_path(&uuid);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|f| f.set_len(size as u64))
        .map_err(|e| ApiError::internal(&format!("creating {}: {e}", path.display())))?;
    record.insert("uuid".into(), json!(uuid));
    record.insert("virtual_size".into(), json!(size));
    record.insert("location".into(), json!(uuid));
    let vdi_class = class("VDI").ok_or_else(|| ApiError::internal("no VDI class"))?;
    let vdi = db.create(vdi_class, record);
    refresh_usage(sim, db, &sr);
    Ok(vdi)
}

fn destroy(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    let vdi = args.reference(ctx.db, 0, "VDI")?;
    let vbds = ctx.db.find("VBD", "VDI", &vdi);
    let attached = vbds
        .iter()
        .any(|v| ctx.db.bool_of("VBD", v, "currently_attached"));
    if attached || ctx.sim.is_busy(&vdi) {
        return Err(ApiError::with("VDI_IN_USE", vec![vdi, "destroy".into()]));
    }
    let uuid = ctx.db.str_of("VDI", &vdi, "uuid").to_owned();
    let sr = ctx.db.str_of("VDI", &vdi, "SR").to_owned();
    match std::fs::remove_file(ctx.sim.vdi_path(&uuid)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ApiError::internal(&format!("removing the VDI file: {e}"))),
    }
    ctx.db.destroy("VDI", &vdi);
    for vbd in vbds {
        ctx.db.destroy("VBD", &vbd);
    }
    refresh_usage(ctx.sim, ctx.db, &sr);
    Ok(Value::Nil)
}
