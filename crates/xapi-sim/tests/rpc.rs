//! The RPC surface: both protocols' shapes and XAPI's errors.
// Test helpers here unwrap as tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{request, rpc, Sim};
use serde_json::{json, Value};

fn err(code: &str, params: &[&str]) -> (String, Vec<String>) {
    (
        code.to_owned(),
        params.iter().map(|p| (*p).to_owned()).collect(),
    )
}

#[test]
fn login_errors_and_json_rpc_versions() {
    let sim = Sim::start();
    let addr = sim.addr();
    assert_eq!(
        rpc(
            addr,
            "session.login_with_password",
            json!(["root", "wrong", "2.21", "t"])
        ),
        Err(err(
            "SESSION_AUTHENTICATION_FAILED",
            &["root", "Authentication failure"]
        ))
    );
    assert_eq!(
        rpc(addr, "session.login_with_password", json!(["root"])),
        Err(err(
            "MESSAGE_PARAMETER_COUNT_MISMATCH",
            &["session.login_with_password", "2", "1"]
        ))
    );
    // Two parameters are enough: version and originator have defaults.
    assert!(rpc(
        addr,
        "session.login_with_password",
        json!(["root", "xenlift"])
    )
    .is_ok());

    // JSON-RPC 1.0: no "jsonrpc" member; failures as an array with the code first.
    let body = r#"{"method":"session.login_with_password","params":["root","bad"],"id":"a"}"#;
    let head = format!(
        "POST /jsonrpc HTTP/1.1\nContent-Length: {}\nConnection: close",
        body.len()
    );
    let resp = request(addr, &head, body.as_bytes());
    let doc: Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(
        doc["error"],
        json!([
            "SESSION_AUTHENTICATION_FAILED",
            "root",
            "Authentication failure"
        ])
    );
    assert_eq!(doc["result"], Value::Null);
    assert_eq!(doc["id"], "a");
    assert_eq!(resp.header("content-type"), Some("application/json"));

    // JSON-RPC 2.0 failure shape.
    let body = r#"{"jsonrpc":"2.0","method":"VM.get_all","params":["OpaqueRef:none"],"id":7}"#;
    let head = format!(
        "POST /jsonrpc HTTP/1.1\nContent-Length: {}\nConnection: close",
        body.len()
    );
    let doc: Value = serde_json::from_slice(&request(addr, &head, body.as_bytes()).body).unwrap();
    assert_eq!(
        doc,
        json!({"jsonrpc":"2.0","error":{"code":1,"message":"SESSION_INVALID","data":["OpaqueRef:none"]},"id":7})
    );
}

#[test]
fn xml_rpc_wraps_status_and_sends_ints_as_strings() {
    let sim = Sim::start();
    let c = sim.client();
    let sr = c.default_sr();
    let call = format!(
        "<?xml version='1.0'?><methodCall><methodName>SR.get_physical_size</methodName><params>\
         <param><value><string>{}</string></value></param><param><value><string>{sr}</string></value></param>\
         </params></methodCall>",
        c.session
    );
    for path in ["/", "/RPC2"] {
        let head = format!(
            "POST {path} HTTP/1.1\nContent-Type: text/xml\nContent-Length: {}\nConnection: close",
            call.len()
        );
        let resp = request(sim.addr(), &head, call.as_bytes());
        assert_eq!(resp.header("content-type"), Some("text/xml"));
        let text = String::from_utf8(resp.body).unwrap();
        assert!(
            text.contains("<name>Status</name><value>Success</value>"),
            "{text}"
        );
        let size = xapi_sim::DEFAULT_SR_SIZE;
        assert!(
            text.contains(&format!("<name>Value</name><value>{size}</value>")),
            "{text}"
        );
    }
    let bad = "<?xml version='1.0'?><methodCall><methodName>VM.get_all</methodName><params>\
               <param><value><string>OpaqueRef:x</string></value></param></params></methodCall>";
    let head = format!(
        "POST / HTTP/1.1\nContent-Length: {}\nConnection: close",
        bad.len()
    );
    let text = String::from_utf8(request(sim.addr(), &head, bad.as_bytes()).body).unwrap();
    assert!(
        text.contains("<name>ErrorDescription</name><value><array><data><value>SESSION_INVALID</value><value>OpaqueRef:x</value></data></array></value>"),
        "{text}"
    );
}

#[test]
fn unknown_methods_bad_refs_and_counts() {
    let sim = Sim::start();
    let c = sim.client();
    assert_eq!(
        c.err("VM.fly", json!([])),
        err("MESSAGE_METHOD_UNKNOWN", &["VM.fly"])
    );
    assert_eq!(
        c.err("Nothing.get_all", json!([])),
        err("MESSAGE_METHOD_UNKNOWN", &["Nothing.get_all"])
    );
    assert_eq!(
        c.err("VM.get_name_label", json!(["OpaqueRef:gone"])),
        err("HANDLE_INVALID", &["VM", "OpaqueRef:gone"])
    );
    assert_eq!(
        c.err("VM.get_name_label", json!([])),
        err(
            "MESSAGE_PARAMETER_COUNT_MISMATCH",
            &["VM.get_name_label", "1", "0"]
        )
    );
    assert_eq!(
        c.err("VDI.get_by_uuid", json!(["nope"])),
        err("UUID_INVALID", &["VDI", "nope"])
    );
    // Setters exist only for writable fields.
    let vm = c.ok("VM.get_by_name_label", json!([xapi_sim::TEMPLATE]))[0].clone();
    assert_eq!(
        c.err("VM.set_power_state", json!([vm, "Running"])),
        err("MESSAGE_METHOD_UNKNOWN", &["VM.set_power_state"])
    );
    // XAPI's alternative spelling of method names.
    assert_eq!(
        c.ok("VM_get_name_label", json!([vm])),
        json!(xapi_sim::TEMPLATE)
    );
    c.ok("session.logout", json!([]));
    assert_eq!(
        c.err("pool.get_all", json!([])),
        err("SESSION_INVALID", &[&c.session])
    );
}

#[test]
fn pool_host_networks_and_certificates() {
    // TLS on, so that the certificate is published; the calls go over JSON-RPC
    // on a plain second instance of the same state.
    let sim = Sim::start_with(|c| c.with_tls());
    let fingerprint = sim.handle.fingerprint();
    let state = sim.handle.state_dir().to_owned();
    drop(sim.handle);
    let plain = xapi_sim::spawn(xapi_sim::Config::new(&state)).unwrap();
    let c = common::Client::login(plain.addr());
    let pool = c.ok("pool.get_all", json!([]))[0].clone();
    let master = c.ok("pool.get_master", json!([pool]));
    assert_eq!(
        c.ok("host.get_address", json!([master])),
        json!("127.0.0.1")
    );
    let sr = c.default_sr();
    let rec = c.ok("SR.get_record", json!([sr]));
    assert_eq!(rec["type"], "ext");
    assert_eq!(rec["content_type"], "user");
    assert!(rec["physical_size"].as_i64().unwrap() > 0);
    for f in ["physical_utilisation", "virtual_allocation", "other_config"] {
        assert!(rec.get(f).is_some(), "{f}");
    }
    let nets = c.ok("network.get_all_records", json!([]));
    let internal: Vec<&Value> = nets
        .as_object()
        .unwrap()
        .values()
        .filter(|n| n["other_config"]["is_host_internal_management_network"] == "true")
        .collect();
    assert_eq!(internal.len(), 1);
    assert_eq!(internal[0]["bridge"], "xenapi");
    let certs = c.ok("Certificate.get_all_records", json!([]));
    let cert = certs.as_object().unwrap().values().next().unwrap();
    assert_eq!(cert["fingerprint_sha256"].as_str(), fingerprint.as_deref());
    assert_eq!(cert["host"], master);
    let this_host = c.ok("session.get_this_host", json!([c.session]));
    assert_eq!(this_host, master);
}

#[test]
fn vdi_create_checks_like_xapi() {
    let sim = Sim::start();
    let c = sim.client();
    let sr = c.default_sr();
    let good = json!({"SR": sr, "virtual_size": 1048576, "type": "user", "sharable": false, "read_only": false, "other_config": {}});
    for missing in [
        "SR",
        "virtual_size",
        "type",
        "sharable",
        "read_only",
        "other_config",
    ] {
        let mut rec = good.clone();
        rec.as_object_mut().unwrap().remove(missing);
        let message = format!("Server_helpers.Dispatcher_FieldNotFound(\"{missing}\")");
        assert_eq!(
            c.err("VDI.create", json!([rec])),
            err("INTERNAL_ERROR", &[&message]),
            "{missing}"
        );
    }
    let mut bad_type = good.clone();
    bad_type["type"] = json!("fancy");
    assert_eq!(
        c.err("VDI.create", json!([bad_type])),
        err("INVALID_VALUE", &["type", "fancy"])
    );
    assert_eq!(
        c.err("VDI.create", json!([good, 1])),
        err(
            "MESSAGE_PARAMETER_COUNT_MISMATCH",
            &["VDI.create", "1", "2"]
        )
    );
    let mut bad_sr = good.clone();
    bad_sr["SR"] = json!("OpaqueRef:nope");
    assert_eq!(
        c.err("VDI.create", json!([bad_sr])),
        err("HANDLE_INVALID", &["SR", "OpaqueRef:nope"])
    );

    // Defaults of the optional fields; the size as a string (XML-RPC style) works too.
    let mut as_string = good.clone();
    as_string["virtual_size"] = json!("2097152");
    let vdi = c.ok("VDI.create", json!([as_string]));
    let rec = c.ok("VDI.get_record", json!([vdi]));
    assert_eq!(rec["virtual_size"], 2097152);
    assert_eq!(rec["name_label"], "");
    assert_eq!(rec["tags"], json!([]));
    assert_eq!(rec["SR"], json!(sr));
    let uuid = rec["uuid"].as_str().unwrap();
    let file = sim.handle.vdi_path(uuid);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 2097152);
    assert_eq!(c.ok("VDI.get_by_uuid", json!([uuid])), vdi);

    // Nothing on the ISO SR, and SR_FULL beyond physical_size.
    let mut on_iso = good.clone();
    on_iso["SR"] = json!(c.sr(xapi_sim::ISO_SR));
    assert_eq!(
        c.err("VDI.create", json!([on_iso])).0,
        "SR_OPERATION_NOT_SUPPORTED"
    );
    sim.handle
        .set_sr_physical_size(xapi_sim::DEFAULT_SR, 10 << 20)
        .unwrap();
    let mut big = good.clone();
    big["virtual_size"] = json!(9 << 20);
    let free = (10 << 20) - 2097152;
    assert_eq!(
        c.err("VDI.create", json!([big])),
        err("SR_FULL", &[&(9 << 20).to_string(), &free.to_string()])
    );
    assert_eq!(c.ok("SR.get_physical_size", json!([sr])), json!(10 << 20));
    assert_eq!(
        c.ok("SR.get_virtual_allocation", json!([sr])),
        json!(2097152)
    );

    c.ok("VDI.destroy", json!([vdi]));
    assert!(!file.exists());
    assert_eq!(c.err("VDI.get_uuid", json!([vdi])).0, "HANDLE_INVALID");
}

#[test]
fn vm_from_template_with_devices() {
    let sim = Sim::start();
    let c = sim.client();
    let template = c.ok("VM.get_by_name_label", json!([xapi_sim::TEMPLATE]))[0].clone();
    assert_eq!(c.ok("VM.get_is_a_template", json!([template])), json!(true));
    let vm = c.ok("VM.clone", json!([template, "copy"]));
    assert_ne!(vm, template);
    assert_eq!(c.ok("VM.get_name_label", json!([vm])), "copy");
    assert!(c.ok("VM.get_other_config", json!([vm]))["disks"].is_string());

    // Provisioning as it comes fails: the template's disk names no SR.
    assert_eq!(
        c.err("VM.provision", json!([vm])),
        err("UUID_INVALID", &["sr", ""])
    );

    // With the SR filled in, provision creates the disk, as XAPI does.
    let sr = c.default_sr();
    let sr_uuid = c.ok("SR.get_uuid", json!([sr]));
    let disks = format!(
        r#"<provision><disk device="0" size="4194304" sr="{}" bootable="true" type="system"/></provision>"#,
        sr_uuid.as_str().unwrap()
    );
    c.ok("VM.remove_from_other_config", json!([vm, "disks"]));
    c.ok("VM.add_to_other_config", json!([vm, "disks", disks]));
    assert_eq!(
        c.err("VM.add_to_other_config", json!([vm, "disks", "x"])).0,
        "MAP_DUPLICATE_KEY"
    );
    c.ok("VM.provision", json!([vm]));
    assert_eq!(c.ok("VM.get_is_a_template", json!([vm])), json!(false));
    let vbds = c.ok("VM.get_VBDs", json!([vm]));
    assert_eq!(vbds.as_array().unwrap().len(), 1);
    let vdi = c.ok("VBD.get_VDI", json!([vbds[0]]));
    assert_eq!(c.ok("VDI.get_virtual_size", json!([vdi])), 4194304);
    assert_eq!(c.ok("VDI.get_name_label", json!([vdi])), "0");
    assert!(c
        .ok("VM.get_other_config", json!([vm]))
        .get("disks")
        .is_none());

    // Setters and their checks.
    // void results travel as empty strings.
    assert_eq!(c.ok("VM.set_VCPUs_max", json!([vm, 4])), json!(""));
    c.ok("VM.set_VCPUs_at_startup", json!([vm, 4]));
    assert_eq!(
        c.err("VM.set_VCPUs_at_startup", json!([vm, 5])),
        err(
            "INVALID_VALUE",
            &[
                "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max",
                "5"
            ]
        )
    );
    assert_eq!(c.err("VM.set_VCPUs_max", json!([vm, 2])).0, "INVALID_VALUE");
    c.ok(
        "VM.set_memory_limits",
        json!([vm, 1 << 30, 4_i64 << 30, 2_i64 << 30, 4_i64 << 30]),
    );
    assert_eq!(
        c.ok("VM.get_memory_static_max", json!([vm])),
        json!(4_i64 << 30)
    );
    assert_eq!(
        c.err(
            "VM.set_memory_limits",
            json!([vm, 4_i64 << 30, 1 << 30, 1 << 30, 1 << 30])
        ),
        err("MEMORY_CONSTRAINT_VIOLATION_ORDER", &[])
    );
    c.ok(
        "VM.set_HVM_boot_params",
        json!([vm, {"firmware": "uefi", "order": "c"}]),
    );
    c.ok("VM.add_to_platform", json!([vm, "secureboot", "true"]));
    c.ok(
        "VM.set_blocked_operations",
        json!([vm, {"start": "importing"}]),
    );
    c.ok(
        "VM.add_to_blocked_operations",
        json!([vm, "start_on", "importing"]),
    );
    assert_eq!(
        c.err("VM.add_to_blocked_operations", json!([vm, "teleport", "x"]))
            .0,
        "INVALID_VALUE"
    );
    c.ok("VM.remove_from_blocked_operations", json!([vm, "start"]));
    c.ok("VM.add_tags", json!([vm, "xenlift"]));
    c.ok("VM.add_tags", json!([vm, "xenlift"]));
    let rec = c.ok("VM.get_record", json!([vm]));
    assert_eq!(rec["HVM_boot_params"]["firmware"], "uefi");
    assert_eq!(rec["platform"]["secureboot"], "true");
    assert_eq!(rec["blocked_operations"], json!({"start_on": "importing"}));
    assert_eq!(rec["tags"], json!(["xenlift"]));
    assert_eq!(rec["VCPUs_at_startup"], 4);

    // VBDs: used and invalid devices.
    let (disk, _) = c.vdi(&sr, 1 << 20);
    let vbd = |userdevice: &str, kind: &str, mode: &str| {
        json!([{"VM": vm, "VDI": disk, "userdevice": userdevice, "bootable": false, "mode": mode, "type": kind,
                "empty": false, "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}}])
    };
    assert_eq!(
        c.err("VBD.create", vbd("0", "Disk", "RW")),
        err("DEVICE_ALREADY_EXISTS", &["0"])
    );
    assert_eq!(
        c.err("VBD.create", vbd("xvda", "Disk", "RW")),
        err("DEVICE_ALREADY_EXISTS", &["xvda"])
    );
    assert_eq!(
        c.err("VBD.create", vbd("disk-one", "Disk", "RW")),
        err("INVALID_DEVICE", &["disk-one"])
    );
    assert_eq!(
        c.err("VBD.create", vbd("2", "CD", "RW")),
        err("VBD_CDS_MUST_BE_READONLY", &[])
    );
    let second = c.ok("VBD.create", vbd("1", "Disk", "RW"));
    assert_eq!(c.ok("VBD.get_userdevice", json!([second])), "1");
    let allowed = c.ok("VM.get_allowed_VBD_devices", json!([vm]));
    assert_eq!(allowed[0], "2");

    // VIFs: MAC checks and devices.
    let net = c.ok("network.get_all", json!([]))[0].clone();
    let vif = |device: &str, mac: &str| {
        json!([{"device": device, "network": net, "VM": vm, "MAC": mac, "MTU": 1500, "other_config": {},
                "qos_algorithm_type": "", "qos_algorithm_params": {}}])
    };
    assert_eq!(
        c.err("VIF.create", vif("0", "00:16:3e:zz:00:01")),
        err("MAC_INVALID", &["00:16:3e:zz:00:01"])
    );
    assert_eq!(
        c.err("VIF.create", vif("x", "00:16:3e:00:00:01")),
        err("INVALID_DEVICE", &["x"])
    );
    let v0 = c.ok("VIF.create", vif("0", "00:16:3e:00:00:01"));
    assert_eq!(c.ok("VIF.get_MAC", json!([v0])), "00:16:3e:00:00:01");
    assert_eq!(
        c.err("VIF.create", vif("0", "00:16:3e:00:00:02")),
        err("DEVICE_ALREADY_EXISTS", &["0"])
    );
    assert_eq!(c.ok("VM.get_allowed_VIF_devices", json!([vm]))[0], "1");
    c.ok("VIF.destroy", json!([v0]));
    assert_eq!(c.ok("VM.get_allowed_VIF_devices", json!([vm]))[0], "0");

    // VM.destroy takes VBDs and VIFs, leaves the VDIs.
    c.ok("VM.destroy", json!([vm]));
    assert_eq!(c.err("VBD.get_VM", json!([second])).0, "HANDLE_INVALID");
    assert!(c.ok("VDI.get_uuid", json!([disk])).is_string());
    assert_eq!(
        c.err("VM.destroy", json!([template])).0,
        "VM_CANNOT_DELETE_DEFAULT_TEMPLATE"
    );
}

#[test]
fn tasks_and_async_calls() {
    let sim = Sim::start();
    let c = sim.client();
    let task = c.task();
    assert_eq!(c.ok("task.get_status", json!([task])), "pending");
    assert_eq!(c.ok("task.get_progress", json!([task])), json!(0.0));
    c.ok("task.set_progress", json!([task, 0.5]));
    assert_eq!(c.ok("task.get_progress", json!([task])), json!(0.5));
    c.ok("task.cancel", json!([task]));
    assert_eq!(c.ok("task.get_status", json!([task])), "cancelling");
    c.ok("task.destroy", json!([task]));

    let sr = c.default_sr();
    let t = c
        .ok(
            "Async.VDI.create",
            json!([{"SR": sr, "virtual_size": 512, "type": "user", "sharable": false, "read_only": false, "other_config": {}}]),
        )
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = c.wait(&t);
    assert_eq!(status, "success");
    let result = c.ok("task.get_result", json!([t]));
    let vdi = result
        .as_str()
        .unwrap()
        .trim_start_matches("<value>")
        .trim_end_matches("</value>");
    assert_eq!(c.ok("VDI.get_virtual_size", json!([vdi])), 512);
    c.ok("task.destroy", json!([t]));
    assert_eq!(c.err("task.get_status", json!([t])).0, "HANDLE_INVALID");
}
