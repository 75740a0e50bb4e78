//! Every typed call against xapi-sim over pinned TLS, and the XAPI errors around them.
// Test helpers may panic: a failed fixture is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use common::{fast_options, new_vdi, Sim};
use xapi_sim::{Faults, PoolMember, RbacDeny, Times};
use xenlift_xapi::{
    codes, Connect, Error, Firmware, NetworkRef, SecureBoot, TaskStatus, VbdSpec, VifSpec,
    VmSettings, BLANK_TEMPLATE,
};

const GIB: u64 = 1 << 30;

#[test]
fn pool_sr_and_network_lookups() {
    let sim = Sim::start();
    let session = sim.login();
    let default_sr = session.pool_default_sr().unwrap().expect("default SR");
    assert_eq!(session.sr_lookup(xapi_sim::DEFAULT_SR).unwrap(), default_sr);
    let record = session.sr_record(&default_sr).unwrap();
    assert_eq!(record.name_label, xapi_sim::DEFAULT_SR);
    assert!(record.physical_size > 0);
    assert_eq!(session.sr_lookup(&record.uuid).unwrap(), default_sr);

    let net_name = "Pool-wide network associated with eth0";
    let network = session.network_lookup(net_name).unwrap();
    let net = session.network_record(&network).unwrap();
    assert_eq!((net.bridge.as_str(), net.mtu), ("xenbr0", 1500));
    assert_eq!(session.network_lookup(&net.uuid).unwrap(), network);

    let missing = session.sr_lookup("no such SR").unwrap_err();
    assert!(
        matches!(missing, Error::NotFound { class: "SR", .. }),
        "{missing}"
    );
    // A UUID-shaped key that matches nothing is not found either (and says so).
    let missing = session
        .network_lookup("00000000-0000-0000-0000-000000000000")
        .unwrap_err();
    assert!(matches!(missing, Error::NotFound { .. }), "{missing}");
    session.logout().unwrap();
    assert!(
        sim.handle.objects("session").is_empty(),
        "logout ends the session on the host"
    );
}

#[test]
fn vm_from_template_with_settings() {
    let sim = Sim::start();
    let session = sim.login();
    let vm = session
        .vm_from_template(BLANK_TEMPLATE, "converted web01")
        .unwrap();
    let rec = session.vm_record(&vm).unwrap();
    assert!(!rec.is_a_template);
    assert_eq!(rec.name_label, "converted web01");
    assert!(
        !rec.other_config.contains_key("disks"),
        "template disks dropped: {:?}",
        rec.other_config
    );
    assert!(
        rec.VBDs.is_empty(),
        "provision added no disk: {:?}",
        rec.VBDs
    );

    let settings = VmSettings {
        vcpus: 4,
        memory_bytes: 2 * GIB,
        firmware: Firmware::Uefi,
        secure_boot: SecureBoot::On,
    };
    session.vm_apply(&vm, &settings).unwrap();
    let rec = session.vm_record(&vm).unwrap();
    assert_eq!((rec.VCPUs_max, rec.VCPUs_at_startup), (4, 4));
    let two_gib = 2 * GIB as i64;
    assert_eq!(
        (
            rec.memory_static_max,
            rec.memory_dynamic_min,
            rec.memory_dynamic_max
        ),
        (two_gib, two_gib, two_gib)
    );
    assert!(rec.memory_static_min <= two_gib);
    assert_eq!(
        rec.HVM_boot_params.get("firmware").map(String::as_str),
        Some("uefi")
    );
    assert_eq!(
        rec.platform.get("secureboot").map(String::as_str),
        Some("true")
    );

    // Fewer CPUs: at_startup must drop before max.
    session.vm_set_vcpus(&vm, 2).unwrap();
    let rec = session.vm_record(&vm).unwrap();
    assert_eq!((rec.VCPUs_max, rec.VCPUs_at_startup), (2, 2));
    // Firmware and Secure Boot can be changed again (no MAP_DUPLICATE_KEY).
    session.vm_set_firmware(&vm, Firmware::Bios).unwrap();
    session.vm_set_secure_boot(&vm, SecureBoot::Auto).unwrap();

    session
        .vm_block_operation(&vm, "start", "xenlift is importing the disks")
        .unwrap();
    session
        .vm_set_other_config(&vm, "xenlift-source", "web01")
        .unwrap();
    session
        .vm_set_other_config(&vm, "xenlift-source", "web01.example")
        .unwrap();
    session.vm_add_tag(&vm, "xenlift").unwrap();
    session
        .vm_set_description(&vm, "converted by xenlift")
        .unwrap();
    let rec = session.vm_record(&vm).unwrap();
    assert_eq!(
        rec.HVM_boot_params.get("firmware").map(String::as_str),
        Some("bios")
    );
    assert_eq!(
        rec.platform.get("secureboot").map(String::as_str),
        Some("auto")
    );
    assert_eq!(
        rec.blocked_operations.get("start").map(String::as_str),
        Some("xenlift is importing the disks")
    );
    assert_eq!(
        rec.other_config.get("xenlift-source").map(String::as_str),
        Some("web01.example")
    );
    assert_eq!(rec.tags, vec!["xenlift".to_string()]);
    assert_eq!(rec.name_description, "converted by xenlift");
    session.vm_unblock_operation(&vm, "start").unwrap();
    session
        .vm_remove_other_config(&vm, "xenlift-source")
        .unwrap();
    let rec = session.vm_record(&vm).unwrap();
    assert!(rec.blocked_operations.is_empty() && !rec.other_config.contains_key("xenlift-source"));

    assert!(session
        .vm_allowed_vif_devices(&vm)
        .unwrap()
        .contains(&"0".to_string()));
    assert!(session
        .vm_allowed_vbd_devices(&vm)
        .unwrap()
        .contains(&"0".to_string()));
    let uuid = session.vm_uuid(&vm).unwrap();
    assert_eq!(session.vm_by_uuid(&uuid).unwrap(), vm);
    session.vm_destroy(&vm).unwrap();
    assert!(sim.handle.object("VM", &uuid).is_none());
}

#[test]
fn unknown_template_is_not_found() {
    let sim = Sim::start();
    let session = sim.login();
    let err = session
        .vm_from_template("No such template", "x")
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                class: "VM template",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn vdi_vbd_vif_create_and_destroy() {
    let sim = Sim::start();
    let session = sim.login();
    let vm = session.vm_from_template(BLANK_TEMPLATE, "devices").unwrap();
    let vdi = new_vdi(&session, 3 * GIB);
    let rec = session.vdi_record(&vdi).unwrap();
    assert_eq!(rec.virtual_size, 3 * GIB as i64);
    assert_eq!(Some(rec.sr.clone()), session.pool_default_sr().unwrap());
    assert_eq!(
        (rec.kind.as_str(), rec.read_only, rec.sharable),
        ("user", false, false)
    );
    session
        .vdi_add_other_config(&vdi, "xenlift-disk", "sda")
        .unwrap();
    assert_eq!(
        session
            .vdi_record(&vdi)
            .unwrap()
            .other_config
            .get("xenlift-disk")
            .map(String::as_str),
        Some("sda")
    );
    assert_eq!(session.vdi_by_uuid(&rec.uuid).unwrap(), vdi);

    let vbd = session
        .vbd_create(&VbdSpec {
            vm: vm.clone(),
            vdi: vdi.clone(),
            userdevice: "0".into(),
            bootable: true,
            other_config: BTreeMap::new(),
        })
        .unwrap();
    let vbd_rec = session.vbd_record(&vbd).unwrap();
    assert_eq!(
        (vbd_rec.vm.clone(), vbd_rec.vdi.clone()),
        (vm.clone(), vdi.clone())
    );
    assert_eq!(
        (
            vbd_rec.userdevice.as_str(),
            vbd_rec.bootable,
            vbd_rec.mode.as_str()
        ),
        ("0", true, "RW")
    );
    assert_eq!((vbd_rec.kind.as_str(), vbd_rec.empty), ("Disk", false));

    let network: NetworkRef = session
        .network_lookup("Pool-wide network associated with eth0")
        .unwrap();
    let device = session
        .vm_allowed_vif_devices(&vm)
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let vif = session
        .vif_create(&VifSpec {
            vm: vm.clone(),
            network: network.clone(),
            device: device.clone(),
            mac: "52:54:00:12:34:56".into(),
            mtu: 1500,
            other_config: BTreeMap::new(),
        })
        .unwrap();
    let vif_rec = session.vif_record(&vif).unwrap();
    assert_eq!(
        (vif_rec.device, vif_rec.mac.as_str(), vif_rec.network),
        (device.clone(), "52:54:00:12:34:56", network)
    );
    assert!(
        !session
            .vm_allowed_vif_devices(&vm)
            .unwrap()
            .contains(&device),
        "device now taken"
    );

    session.vif_destroy(&vif).unwrap();
    session.vbd_destroy(&vbd).unwrap();
    session.vdi_destroy(&vdi).unwrap();
    let gone = session.vdi_record(&vdi).unwrap_err();
    assert!(gone.is_code(codes::HANDLE_INVALID), "{gone}");
    let text = gone.to_string();
    assert!(
        text.contains("does not exist") && text.contains("run the conversion again"),
        "{text}"
    );
}

#[test]
fn task_lifecycle() {
    let sim = Sim::start();
    let session = sim.login();
    let task = session
        .task_create("xenlift: convert web01", "disk 1 of 2")
        .unwrap();
    let rec = session.task_record(&task).unwrap();
    assert_eq!(
        (rec.name_label.as_str(), rec.status),
        ("xenlift: convert web01", TaskStatus::Pending)
    );
    assert_eq!(session.task_status(&task).unwrap(), TaskStatus::Pending);
    assert!(
        session.task_set_progress(&task, 0.25).unwrap(),
        "the sim (like current XAPI) has task.set_progress"
    );
    assert_eq!(session.task_progress(&task).unwrap(), 0.25);
    assert!(session.task_set_progress(&task, 7.0).unwrap());
    assert_eq!(
        session.task_progress(&task).unwrap(),
        1.0,
        "progress is clamped to 0..1"
    );
    assert_eq!(session.task_result(&task).unwrap(), "");
    assert!(session.task_error_info(&task).unwrap().is_empty());
    session.task_cancel(&task).unwrap();
    let status = session.task_status(&task).unwrap();
    assert!(
        matches!(status, TaskStatus::Cancelling | TaskStatus::Cancelled),
        "{status:?}"
    );
    session.task_destroy(&task).unwrap();
}

#[test]
fn set_progress_on_a_host_without_it_is_remembered() {
    let sim = Sim::start();
    let session = sim.login();
    let task = session.task_create("t", "").unwrap();
    sim.handle.set_faults(Faults {
        rbac_deny: Some(RbacDeny::methods(&["task.set_progress"])),
        ..Faults::default()
    });
    // RBAC denial is an error the caller sees, not "unsupported".
    let err = session.task_set_progress(&task, 0.5).unwrap_err();
    assert!(err.is_code(codes::RBAC_PERMISSION_DENIED), "{err}");
    assert!(err.to_string().contains("pool-admin or vm-admin"), "{err}");
}

#[test]
fn certificates_name_the_pinned_fingerprint() {
    let sim = Sim::start();
    let session = sim.login();
    let pinned = sim.fingerprint();
    let certs = session.certificates().unwrap();
    assert!(
        certs
            .iter()
            .any(|(_, c)| c.kind == "host" && c.sha256() == Some(pinned)),
        "{certs:?}"
    );
    assert_eq!(
        session.host_fingerprints("127.0.0.1").unwrap(),
        vec![pinned]
    );
    assert!(session.host_fingerprints("192.0.2.1").unwrap().is_empty());
}

#[test]
fn wrong_password_is_typed_and_keeps_the_password_secret() {
    let sim = Sim::start();
    let err = sim
        .connect()
        .login("root", "not-the-password".into())
        .unwrap_err();
    assert!(err.is_code(codes::SESSION_AUTHENTICATION_FAILED), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("wrong user name or password") && text.contains("check the user name"),
        "{text}"
    );
    assert!(
        !text.contains("not-the-password") && !format!("{err:?}").contains("not-the-password"),
        "{text}"
    );
    assert!(sim.handle.objects("session").is_empty());
}

#[test]
fn sr_full_is_typed_with_a_next_step() {
    let sim = Sim::start();
    let session = sim.login();
    sim.handle.set_faults(Faults {
        sr_full: Some(Times::default().times(1)),
        ..Faults::default()
    });
    let sr = session.pool_default_sr().unwrap().unwrap();
    let spec = xenlift_xapi::VdiSpec {
        sr,
        name_label: "big".into(),
        name_description: String::new(),
        virtual_size: GIB,
        other_config: BTreeMap::new(),
    };
    let err = session.vdi_create(&spec).unwrap_err();
    let Error::Api { call, error, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        (call.as_str(), error.code.as_str()),
        ("VDI.create", codes::SR_FULL)
    );
    assert_eq!(error.params.len(), 2, "{error}");
    assert!(err.to_string().contains("choose another SR"), "{err}");
    // The fault was for one call only.
    session.vdi_create(&spec).unwrap();
}

#[test]
fn rbac_denied_call_is_typed() {
    let sim = Sim::start();
    let session = sim.login();
    let vm = session.vm_from_template(BLANK_TEMPLATE, "keep me").unwrap();
    sim.handle.set_faults(Faults {
        rbac_deny: Some(RbacDeny::methods(&["VM.destroy"])),
        ..Faults::default()
    });
    let err = session.vm_destroy(&vm).unwrap_err();
    assert!(err.is_code(codes::RBAC_PERMISSION_DENIED), "{err}");
    assert_eq!(err.xapi().unwrap().param(0), Some("VM.destroy"));
}

#[test]
fn invalid_session_logs_in_again_once() {
    let sim = Sim::start();
    let session = sim.login();
    let first = sim.handle.objects("session");
    assert_eq!(first.len(), 1);
    // End the session behind the client's back.
    session.call_void("session.logout", &[]).unwrap();
    assert!(sim.handle.objects("session").is_empty());
    assert!(
        session.pool_default_sr().unwrap().is_some(),
        "the call succeeds after a transparent login"
    );
    let now = sim.handle.objects("session");
    assert_eq!(now.len(), 1);
    assert_ne!(now[0].reference, first[0].reference);
    // The session id never shows in Debug output.
    let shown = format!("{session:?}");
    assert!(
        !shown.contains(&now[0].reference) && shown.contains("<redacted>"),
        "{shown}"
    );
}

#[test]
fn pool_member_sends_the_client_to_its_master() {
    let master = Sim::start();
    let member = Sim::start();
    member.handle.set_faults(Faults {
        pool_member: Some(PoolMember {
            master: master.handle.addr().to_string(),
            master_fingerprint_sha256: Some(master.fingerprint().to_string()),
            ..PoolMember::default()
        }),
        ..Faults::default()
    });
    // Pinned to the member only: the master's certificate comes from the member's answer.
    let session = member.login();
    assert_eq!(session.host(), master.handle.addr().to_string());
    assert!(session.pool_default_sr().unwrap().is_some());
    assert_eq!(master.handle.objects("session").len(), 1);
    assert!(member.handle.objects("session").is_empty());
}

#[test]
fn master_with_an_unannounced_certificate_is_refused() {
    let master = Sim::start();
    let member = Sim::start();
    // The member names the master but vouches for its own certificate, not the master's.
    member.handle.set_faults(Faults {
        pool_member: Some(PoolMember::new(&master.handle.addr().to_string())),
        ..Faults::default()
    });
    let err = member
        .connect()
        .login("root", xapi_sim::DEFAULT_PASSWORD.into())
        .unwrap_err();
    let Error::FingerprintMismatch { seen, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(*seen, master.fingerprint());
    assert!(
        master.handle.objects("session").is_empty(),
        "no login reached the master"
    );
}

/// Answers every request with `reply` (a full HTTP response); for hosts without JSON-RPC.
fn fake_http(reply: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = std::io::Read::read_exact(&mut reader, &mut body);
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    format!("http://{addr}")
}

#[test]
fn hosts_without_json_rpc_are_named_as_such() {
    let xml = fake_http("HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 8\r\nConnection: close\r\n\r\n<value/>");
    let not_found =
        fake_http("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    for url in [xml, not_found] {
        let err = Connect::new(&url)
            .allow_plaintext(true)
            .options(fast_options())
            .login("root", "pw".into())
            .unwrap_err();
        assert!(matches!(err, Error::NoJsonRpc { .. }), "{url}: {err}");
        assert!(err.to_string().contains("too old for xenlift"), "{err}");
    }
}
