//! The objects of a fresh simulator (one pool, one host, three SRs, two
//! networks, the "Other install media" template), and what every start
//! refreshes (host address, certificate, SR sizes).

use serde_json::{json, Value as Json};

use crate::clock;
use crate::config::DEFAULT_SR_SIZE;
use crate::db::classes::class;
use crate::db::{Db, Record};
use crate::tls::Identity;

pub const HOST_NAME: &str = "xapi-sim";
pub const DEFAULT_SR: &str = "Local storage";
pub const THICK_SR: &str = "Local thick storage";
pub const ISO_SR: &str = "ISO library";
pub const TEMPLATE: &str = "Other install media";
/// Disk the template asks `VM.provision` for, as XAPI's own templates do.
const TEMPLATE_DISK: u64 = 32 << 30;

fn record(fields: Json) -> Record {
    match fields {
        Json::Object(m) => m,
        _ => Record::new(),
    }
}

fn create(db: &mut Db, class_name: &str, fields: Json) -> String {
    match class(class_name) {
        Some(c) => db.create(c, record(fields)),
        None => String::new(),
    }
}

/// Creates the pool and its objects unless the state already has them.
pub fn seed(db: &mut Db, address: &str) {
    if !db.refs("pool").is_empty() {
        return;
    }
    let host = create(
        db,
        "host",
        json!({
            "name_label": HOST_NAME,
            "name_description": "XAPI simulator",
            "hostname": HOST_NAME,
            "address": address,
            "software_version": {
                "product_brand": "XenServer",
                "product_version": "8.4.0",
                "platform_name": "XCP",
                "xapi": "25.6",
                "xen": "4.17.5",
            },
            "cpu_info": {"cpu_count": "8", "vendor": "GenuineIntel"},
        }),
    );
    let sr = |db: &mut Db, name: &str, ty: &str, content: &str, size: u64, other: Json| {
        let sr = create(
            db,
            "SR",
            json!({
                "name_label": name,
                "type": ty,
                "content_type": content,
                "physical_size": size,
                "other_config": other,
                "allowed_operations": ["vdi_create", "vdi_destroy", "scan", "vdi_introduce"],
            }),
        );
        create(
            db,
            "PBD",
            json!({"host": host, "SR": sr, "currently_attached": true}),
        );
        sr
    };
    let local = sr(
        db,
        DEFAULT_SR,
        "ext",
        "user",
        DEFAULT_SR_SIZE,
        json!({"i18n-key": "local-storage"}),
    );
    sr(db, THICK_SR, "lvm", "user", DEFAULT_SR_SIZE, json!({}));
    sr(
        db,
        ISO_SR,
        "iso",
        "iso",
        0,
        json!({"i18n-key": "local-hotplug-cd"}),
    );
    create(
        db,
        "network",
        json!({
            "name_label": "Pool-wide network associated with eth0",
            "bridge": "xenbr0",
            "MTU": 1500,
        }),
    );
    create(
        db,
        "network",
        json!({
            "name_label": "Host internal management network",
            "name_description": "Network on which guests will be assigned a private link-local IP address which can be used to talk XenAPI",
            "bridge": "xenapi",
            "other_config": {
                "is_guest_installer_network": "true",
                "is_host_internal_management_network": "true",
                "ip_begin": "169.254.0.1",
                "ip_end": "169.254.255.254",
                "netmask": "255.255.0.0",
            },
        }),
    );
    let disks = format!(
        r#"<provision><disk device="0" size="{TEMPLATE_DISK}" sr="" bootable="true" type="system"/></provision>"#
    );
    create(
        db,
        "VM",
        json!({
            "name_label": TEMPLATE,
            "name_description": "Template which allows VM installation from install media",
            "is_a_template": true,
            "is_default_template": true,
            "memory_static_max": 2_147_483_648_i64,
            "memory_dynamic_max": 2_147_483_648_i64,
            "memory_dynamic_min": 2_147_483_648_i64,
            "memory_static_min": 1_073_741_824_i64,
            "VCPUs_max": 1,
            "VCPUs_at_startup": 1,
            "HVM_boot_policy": "BIOS order",
            "HVM_boot_params": {"order": "cdn"},
            "platform": {"nx": "true", "acpi": "1", "apic": "true", "pae": "true", "viridian": "true", "device-model": "qemu-upstream-compat"},
            "other_config": {
                "disks": disks,
                "install-methods": "cdrom",
                "default_template": "true",
                "instant": "true",
            },
            "recommendations": "<restrictions><restriction field=\"memory-static-max\" max=\"1649267441664\"/><restriction field=\"vcpus-max\" max=\"32\"/></restrictions>",
            "domain_type": "hvm",
        }),
    );
    create(
        db,
        "pool",
        json!({
            "master": host,
            "default_SR": local,
            "suspend_image_SR": local,
            "crash_dump_SR": local,
        }),
    );
}

/// What each start brings up to date.
pub fn refresh(db: &mut Db, address: &str, identity: &Identity, sr_size: Option<u64>) {
    let Some(host) = db.refs("host").into_iter().next() else {
        return;
    };
    if let Some(h) = db.get_mut("host", &host) {
        h.insert("address".into(), json!(address));
    }
    if let Some(size) = sr_size {
        for sr in db.refs("SR") {
            if matches!(db.str_of("SR", &sr, "name_label"), DEFAULT_SR | THICK_SR) {
                if let Some(r) = db.get_mut("SR", &sr) {
                    r.insert("physical_size".into(), json!(size));
                }
            }
        }
    }
    let current = db
        .find("Certificate", "host", &host)
        .into_iter()
        .find(|c| db.str_of("Certificate", c, "type") == "host");
    let same = current.as_ref().is_some_and(|c| {
        db.str_of("Certificate", c, "fingerprint_sha256") == identity.fingerprint_sha256
    });
    if !same {
        if let Some(old) = current {
            db.destroy("Certificate", &old);
        }
        let now = std::time::SystemTime::now();
        create(
            db,
            "Certificate",
            json!({
                "type": "host",
                "host": host,
                "not_before": clock::format_time(now - std::time::Duration::from_secs(86_400)),
                "not_after": clock::format_time(now + std::time::Duration::from_secs(3650 * 86_400)),
                "fingerprint": identity.fingerprint_sha256,
                "fingerprint_sha256": identity.fingerprint_sha256,
                "fingerprint_sha1": identity.fingerprint_sha1,
            }),
        );
    }
}
