//! Objects, VDI contents and the certificate survive a stop and a start on
//! the same state directory; sessions do not, as in XAPI.
// Test helpers here unwrap as tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{raw_image, sha256_file, Client};
use serde_json::json;
use xapi_sim::Config;

#[test]
fn state_survives_a_restart() {
    let dir = testkit::tempdir().unwrap();
    let state = dir.path().join("state");
    let sim = xapi_sim::spawn(Config::new(&state).with_tls()).unwrap();
    let fingerprint = sim.fingerprint().unwrap();
    assert_eq!(fingerprint.len(), 95);
    assert!(fingerprint
        .chars()
        .all(|c| c == ':' || c.is_ascii_hexdigit() && !c.is_ascii_lowercase()));
    sim.shutdown();

    // Plain HTTP for the calls (the test has no TLS client of its own).
    let sim = xapi_sim::spawn(Config::new(&state)).unwrap();
    let c = Client::login(sim.addr());
    let (vdi, uuid) = c.vdi(&c.default_sr(), 8 << 20);
    let raw = dir.path().join("d.raw");
    raw_image(&raw, 8 << 20, &[(12345, 100_000)]);
    c.import(&format!("vdi={vdi}"), &std::fs::read(&raw).unwrap());
    let template = c.ok("VM.get_by_name_label", json!([xapi_sim::TEMPLATE]))[0].clone();
    let vm = c.ok("VM.clone", json!([template, "kept"]));
    c.ok(
        "VM.add_to_other_config",
        json!([vm, "xenlift-source", "host-1"]),
    );
    let task = c.task();
    let session = c.session.clone();
    let hash = sha256_file(&sim.vdi_path(&uuid));
    sim.shutdown();

    let sim = xapi_sim::spawn(Config::new(&state).with_tls()).unwrap();
    assert_eq!(
        sim.fingerprint().unwrap(),
        fingerprint,
        "the certificate is kept"
    );
    assert_eq!(sha256_file(&sim.vdi_path(&uuid)), hash);
    assert_eq!(sim.find("VM", "name_label", "kept").len(), 1);
    let vm_obj = sim.object("VM", vm.as_str().unwrap()).unwrap();
    assert_eq!(vm_obj.get("other_config")["xenlift-source"], "host-1");
    assert_eq!(sim.object("VDI", &uuid).unwrap().reference, vdi);
    assert!(sim.object("task", &task).is_some());
    assert!(
        sim.objects("session").is_empty(),
        "sessions end with the server"
    );
    assert_eq!(sim.objects("Certificate").len(), 1);
    assert_eq!(
        sim.objects("Certificate")[0].str("fingerprint_sha256"),
        fingerprint
    );
    sim.shutdown();

    let sim = xapi_sim::spawn(Config::new(&state)).unwrap();
    assert_eq!(
        common::rpc(sim.addr(), "VM.get_all", json!([session])),
        Err(("SESSION_INVALID".to_owned(), vec![session.clone()]))
    );
    let c = Client::login(sim.addr());
    assert_eq!(c.ok("VM.get_name_label", json!([vm])), "kept");
    assert_eq!(c.ok("VDI.get_uuid", json!([vdi])), json!(uuid));
    // The saved state is plain JSON.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("db.json")).unwrap()).unwrap();
    assert!(saved["tables"]["VM"][vm.as_str().unwrap()].is_object());
}
