//! Virtual block devices and network interfaces, with XAPI's checks on
//! device names, modes and MAC addresses.

use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

use super::args::{ctor_record, existing, Args};
use super::{Ctx, Handler};
use crate::db::classes::class;
use crate::db::{is_null, Db, Record};
use crate::error::ApiError;
use crate::value::Value;

pub fn method(class: &str, op: &str) -> Option<(usize, Handler)> {
    Some(match (class, op) {
        ("VBD", "create") => (1, vbd_create),
        ("VBD", "destroy") => (1, vbd_destroy),
        ("VIF", "create") => (1, vif_create),
        ("VIF", "destroy") => (1, vif_destroy),
        _ => return None,
    })
}

/// Highest disk number XAPI offers a guest (`allowed_VBD_devices`).
pub const MAX_DISK: u32 = 254;
/// Highest VIF device (`allowed_VIF_devices`).
pub const MAX_VIF: u32 = 15;

/// The disk number a userdevice names: `3`, `xvdd`, `hdd`, `sdd` (with an
/// optional partition number) all name disk 3.
pub fn disk_number(device: &str) -> Option<u32> {
    if !device.is_empty() && device.bytes().all(|b| b.is_ascii_digit()) {
        return device.parse().ok().filter(|n| *n <= MAX_DISK);
    }
    let (letters_max, rest) = ["xvd", "sd", "hd"].iter().find_map(|p| {
        device
            .strip_prefix(p)
            .map(|r| (if *p == "hd" { 1 } else { 2 }, r))
    })?;
    let letters: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
    let partition = &rest[letters.len()..];
    if letters.is_empty()
        || letters.len() > letters_max
        || !partition.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // Bijective base 26: "a" is 0, "z" 25, "aa" 26.
    let n = letters
        .bytes()
        .fold(0u32, |acc, b| acc * 26 + u32::from(b - b'a') + 1)
        - 1;
    let limit = if device.starts_with("hd") {
        3
    } else {
        MAX_DISK
    };
    (n <= limit).then_some(n)
}

/// Disk numbers the VM's VBDs already use.
pub fn used_disks(db: &Db, vm: &str) -> Vec<u32> {
    db.find("VBD", "VM", vm)
        .iter()
        .filter_map(|v| disk_number(db.str_of("VBD", v, "userdevice")))
        .collect()
}

pub fn used_vifs(db: &Db, vm: &str) -> Vec<u32> {
    db.find("VIF", "VM", vm)
        .iter()
        .filter_map(|v| db.str_of("VIF", v, "device").parse().ok())
        .collect()
}

fn field<'a>(r: &'a Record, name: &str) -> &'a str {
    r.get(name).and_then(Json::as_str).unwrap_or("")
}

fn flag(r: &Record, name: &str) -> bool {
    r.get(name).and_then(Json::as_bool).unwrap_or(false)
}

fn vbd_create(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    let mut rec = ctor_record("VBD", args.at(0))?;
    let db = &mut *ctx.db;
    let vm = existing(db, "VM", field(&rec, "VM"))?;
    let empty = flag(&rec, "empty");
    let vdi = field(&rec, "VDI").to_owned();
    let kind = field(&rec, "type").to_owned();
    let mode = field(&rec, "mode").to_owned();
    if !empty {
        existing(db, "VDI", &vdi)?;
        let vdi_type = db.str_of("VDI", &vdi, "type");
        let allowed = [
            "system",
            "user",
            "ephemeral",
            "suspend",
            "crashdump",
            "metadata",
            "rrd",
            "pvs_cache",
        ];
        if !allowed.contains(&vdi_type) {
            return Err(ApiError::with(
                "VDI_INCOMPATIBLE_TYPE",
                vec![vdi.clone(), vdi_type.to_owned()],
            ));
        }
    }
    if kind == "CD" && mode != "RO" {
        return Err(ApiError::new("VBD_CDS_MUST_BE_READONLY", &[]));
    }
    if kind != "CD" && empty {
        return Err(ApiError::new(
            "VBD_NOT_REMOVABLE_MEDIA",
            &["in constructor"],
        ));
    }
    if mode == "RW" && !is_null(&vdi) && db.bool_of("VDI", &vdi, "read_only") {
        return Err(ApiError::with("VDI_READONLY", vec![vdi]));
    }
    let userdevice = field(&rec, "userdevice").to_owned();
    let used = used_disks(db, &vm);
    let invalid = || ApiError::with("INVALID_DEVICE", vec![userdevice.clone()]);
    let number = if userdevice == "autodetect" {
        (0..=MAX_DISK)
            .find(|n| !used.contains(n))
            .ok_or_else(invalid)?
    } else {
        disk_number(&userdevice).ok_or_else(invalid)?
    };
    if used.contains(&number) {
        return Err(ApiError::with("DEVICE_ALREADY_EXISTS", vec![userdevice]));
    }
    if userdevice == "autodetect" {
        rec.insert("userdevice".into(), json!(number.to_string()));
    }
    rec.insert("device".into(), json!(""));
    rec.insert("currently_attached".into(), json!(false));
    let vbd_class = class("VBD").ok_or_else(|| ApiError::internal("no VBD class"))?;
    Ok(Value::Str(db.create(vbd_class, rec)))
}

fn vbd_destroy(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    let vbd = args.reference(ctx.db, 0, "VBD")?;
    ctx.db.destroy("VBD", &vbd);
    Ok(Value::Nil)
}

/// XAPI's test: six pairs of hex digits separated by colons.
pub fn is_valid_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A locally administered MAC derived from the VM's `mac_seed` and the device.
fn mac_from_seed(seed: &str, device: &str) -> String {
    let digest = Sha256::digest(format!("{seed}/{device}").as_bytes());
    let mut bytes = [0u8; 6];
    bytes.copy_from_slice(&digest[..6]);
    bytes[0] = (bytes[0] & 0xfe) | 0x02;
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn vif_create(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    let mut rec = ctor_record("VIF", args.at(0))?;
    let db = &mut *ctx.db;
    existing(db, "network", field(&rec, "network"))?;
    let vm = existing(db, "VM", field(&rec, "VM"))?;
    let device = field(&rec, "device").to_owned();
    let Some(number) = device
        .parse::<u32>()
        .ok()
        .filter(|_| device.bytes().all(|b| b.is_ascii_digit()))
    else {
        return Err(ApiError::with("INVALID_DEVICE", vec![device]));
    };
    let mut mac = field(&rec, "MAC").to_owned();
    let seed = db
        .get("VM", &vm)
        .and_then(|r| r.get("other_config"))
        .and_then(|oc| oc.get("mac_seed"))
        .and_then(Json::as_str)
        .map(str::to_owned);
    if mac.is_empty() {
        if let Some(seed) = seed {
            mac = mac_from_seed(&seed, &device);
            rec.insert("MAC".into(), json!(mac));
            rec.insert("MAC_autogenerated".into(), json!(true));
        }
    }
    if !is_valid_mac(&mac) {
        return Err(ApiError::with("MAC_INVALID", vec![mac]));
    }
    if used_vifs(db, &vm).contains(&number) {
        return Err(ApiError::with("DEVICE_ALREADY_EXISTS", vec![device]));
    }
    rec.insert("currently_attached".into(), json!(false));
    let vif_class = class("VIF").ok_or_else(|| ApiError::internal("no VIF class"))?;
    Ok(Value::Str(db.create(vif_class, rec)))
}

fn vif_destroy(ctx: &mut Ctx, args: &Args) -> Result<Value, ApiError> {
    let vif = args.reference(ctx.db, 0, "VIF")?;
    ctx.db.destroy("VIF", &vif);
    Ok(Value::Nil)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names() {
        for (name, n) in [
            ("0", Some(0)),
            ("3", Some(3)),
            ("xvda", Some(0)),
            ("xvdd1", Some(3)),
            ("hdb", Some(1)),
            ("sdz", Some(25)),
            ("xvdaa", Some(26)),
        ] {
            assert_eq!(disk_number(name), n, "{name}");
        }
        for bad in ["", "abc", "-1", "255", "hde", "xvd", "xvdA", "1x"] {
            assert_eq!(disk_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn macs() {
        assert!(is_valid_mac("00:16:3e:AA:bb:01"));
        for bad in [
            "",
            "00:16:3e:aa:bb",
            "00-16-3e-aa-bb-01",
            "00:16:3e:aa:bb:0g",
            "0:16:3e:aa:bb:01",
        ] {
            assert!(!is_valid_mac(bad), "{bad}");
        }
        assert!(is_valid_mac(&mac_from_seed("seed", "0")));
    }
}
