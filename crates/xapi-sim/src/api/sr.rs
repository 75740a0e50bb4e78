//! Storage repositories: usage figures and `SR.scan`.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::json;

use super::args::Args;
use super::{Ctx, Handler};
use crate::db::Db;
use crate::error::ApiError;
use crate::sim::Sim;
use crate::value::Value;

/// SR types whose new VDIs are not known to hold zeros (XAPI's
/// `must_write_zeroes_into_new_vdi`): VHD import fails there.
pub fn is_thick(db: &Db, sr: &str) -> bool {
    matches!(
        db.str_of("SR", sr, "type"),
        "lvm" | "lvmoiscsi" | "lvmohba" | "equal" | "cslg"
    )
}

pub fn method(op: &str) -> Option<(usize, Handler)> {
    Some(match op {
        "scan" => (1, scan),
        _ => return None,
    })
}

fn scan(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    let sr = args.reference(ctx.db, 0, "SR")?;
    refresh_usage(ctx.sim, ctx.db, &sr);
    Ok(Value::Nil)
}

/// Recomputes `virtual_allocation` and `physical_utilisation` of an SR and
/// of its VDIs from their files.
pub fn refresh_usage(sim: &Sim, db: &mut Db, sr: &str) {
    refresh_usage_of_dir(&sim.vdi_dir, db, sr);
}

/// The same, before the simulator exists (at start).
pub fn refresh_usage_of_dir(vdi_dir: &Path, db: &mut Db, sr: &str) {
    let thick = is_thick(db, sr);
    let mut virtual_total: i64 = 0;
    let mut physical_total: i64 = 0;
    for vdi in db.find("VDI", "SR", sr) {
        let size = db.int_of("VDI", &vdi, "virtual_size");
        let used = if thick {
            size
        } else {
            let uuid = db.str_of("VDI", &vdi, "uuid").to_owned();
            std::fs::metadata(vdi_dir.join(format!("{uuid}.img")))
                .map(|m| i64::try_from(m.blocks().saturating_mul(512)).unwrap_or(i64::MAX))
                .unwrap_or(0)
        };
        virtual_total = virtual_total.saturating_add(size);
        physical_total = physical_total.saturating_add(used);
        if let Some(rec) = db.get_mut_quiet("VDI", &vdi) {
            rec.insert("physical_utilisation".into(), json!(used));
        }
    }
    if let Some(rec) = db.get_mut("SR", sr) {
        rec.insert("virtual_allocation".into(), json!(virtual_total));
        rec.insert("physical_utilisation".into(), json!(physical_total));
    }
}
