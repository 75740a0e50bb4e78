//! `xenlift convert --to https://` of the Debian 12 BIOS/MBR guest (made by
//! tests/guests/build.sh, cached) into xapi-sim: the faithful copy goes
//! first, then the fix-up's changes as a delta onto the same VDI. Full
//! verification hashes the whole VDI after the delta, so the report's block
//! hashes must be those of the patched disk; the patched files are read from
//! the VDI; the source never changes. Needs root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use testkit::{guest_image, run_stdout, sha256_file, tempdir, Loop, Mount};

const PASSWORD: &str = "fixup-pw-7781";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Sim {
    handle: xapi_sim::SimHandle,
    _state: tempfile::TempDir,
    password_file: PathBuf,
    _work: tempfile::TempDir,
}

fn start_sim() -> Sim {
    let state = tempdir().unwrap();
    let mut config = xapi_sim::Config::new(state.path()).with_tls();
    config.password = PASSWORD.into();
    let handle = xapi_sim::spawn(config).unwrap();
    let work = tempdir().unwrap();
    let password_file = work.path().join("password");
    std::fs::write(&password_file, PASSWORD).unwrap();
    Sim {
        handle,
        _state: state,
        password_file,
        _work: work,
    }
}

/// Runs `xenlift COMMAND --to SIM --fingerprint .. --password-file .. EXTRA..`.
fn xenlift(sim: &Sim, command: &str, extra: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xenlift"))
        .args([
            command,
            "--to",
            &sim.handle.base_url(),
            "--fingerprint",
            &sim.handle.fingerprint().unwrap(),
            "--password-file",
            s(&sim.password_file),
        ])
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The root filesystem's /etc/fstab on the VDI, and whether the fix-up's
/// backup and log are there.
fn root_files(vdi: &Path) -> (String, bool) {
    let table: Value = serde_json::from_str(&run_stdout("sfdisk", &["--json", s(vdi)])).unwrap();
    let root = &table["partitiontable"]["partitions"][0];
    let offset = root["start"].as_u64().unwrap() * 512;
    let size = root["size"].as_u64().unwrap() * 512;
    let lo = Loop::attach(vdi, offset, Some(size), true);
    let mount = Mount::new(lo.path(), Some("ext4"), "ro,noload");
    let fstab = std::fs::read_to_string(mount.path().join("etc/fstab")).unwrap();
    let marks = mount.path().join("etc/fstab.xenlift-orig").exists()
        && mount.path().join("var/log/xenlift-fixup.log").exists();
    (fstab, marks)
}

#[test]
fn the_fixup_reaches_the_vdi_as_a_delta_and_full_verify_agrees() {
    let image = guest_image("bios-mbr");
    let before = sha256_file(&image);
    let sim = start_sim();
    let work = tempdir().unwrap();
    let report_path = work.path().join("report.json");

    let (ok, text) = xenlift(
        &sim,
        "convert",
        &["--verify", "full", "--report", s(&report_path), s(&image)],
    );
    assert!(ok, "{text}");
    assert!(text.contains("guest fix-up"), "{text}");
    assert_eq!(sha256_file(&image), before, "the source changed");

    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report["fixup"]["status"], "done", "{:#}", report["fixup"]);
    assert!(report["fixup"]["delta_wire_bytes"].as_u64().unwrap() > 0);
    let changes = report["fixup"]["guests"][0]["changes"].as_array().unwrap();
    assert!(
        changes.iter().any(|c| c["path"] == "/etc/fstab"),
        "{changes:#?}"
    );
    let disk = &report["disks"][0];
    assert_eq!(disk["verify"]["mode"], "full", "{disk:#}");
    assert_eq!(disk["verify"]["disk_sha256_matches"], true, "{disk:#}");

    let (fstab, marks) = root_files(&sim.handle.vdi_path(disk["vdi_uuid"].as_str().unwrap()));
    assert!(fstab.contains("UUID="), "{fstab}");
    assert!(marks, "backup or log missing");
}

#[test]
fn xenlift_fixup_patches_a_vm_converted_without_it() {
    let image = guest_image("bios-mbr");
    let before = sha256_file(&image);
    let sim = start_sim();
    let work = tempdir().unwrap();
    let report_path = work.path().join("report.json");

    let (ok, text) = xenlift(
        &sim,
        "convert",
        &["--no-fixup", "--report", s(&report_path), s(&image)],
    );
    assert!(ok, "{text}");
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report["fixup"]["status"], "skipped");
    let vm = report["vm_uuid"].as_str().unwrap().to_string();
    let vdi = sim
        .handle
        .vdi_path(report["disks"][0]["vdi_uuid"].as_str().unwrap());
    let (fstab, marks) = root_files(&vdi);
    assert!(!marks, "--no-fixup changed the copy");
    let faithful = fstab;

    let (ok, text) = xenlift(&sim, "fixup", &["--vm", "no-such-vm", s(&image)]);
    assert!(!ok && text.contains("no-such-vm"), "{text}");

    // Refused before any write: the VM is left as it was, free to start.
    let (ok, text) = xenlift(&sim, "fixup", &["--vm", &vm, s(&image), s(&image)]);
    assert!(
        !ok && text.contains("has 1 disks but 2 were given"),
        "{text}"
    );
    assert_eq!(start_block(&sim, &vm), None, "{text}");

    // The delta upload refused half way: the VM stays blocked, saying why.
    sim.handle.set_faults(xapi_sim::Faults {
        rbac_deny: Some(xapi_sim::RbacDeny::methods(&["http/put_import_raw_vdi"])),
        ..Default::default()
    });
    let (ok, text) = xenlift(&sim, "fixup", &["--vm", &vm, s(&image)]);
    assert!(!ok, "{text}");
    assert!(text.contains("stays blocked from starting"), "{text}");
    let reason = start_block(&sim, &vm).expect("start blocked after a failed fix-up");
    assert!(reason.contains("did not finish"), "{reason}");
    sim.handle.set_faults(xapi_sim::Faults::default());

    let (ok, text) = xenlift(&sim, "fixup", &["--vm", &vm, s(&image)]);
    assert!(ok, "{text}");
    assert!(text.contains(&format!("fixed up the VM {vm}")), "{text}");
    assert_eq!(start_block(&sim, &vm), None, "the VM may start again");
    let (fstab, marks) = root_files(&vdi);
    assert!(marks, "backup or log missing after xenlift fixup");
    assert!(fstab.contains("UUID=") && fstab != faithful, "{fstab}");
    assert_eq!(sha256_file(&image), before, "the source changed");
}

/// The reason the VM `uuid` is blocked from starting, if it is.
fn start_block(sim: &Sim, uuid: &str) -> Option<String> {
    let vms = sim.handle.find("VM", "uuid", uuid);
    let blocked = vms[0].get("blocked_operations");
    blocked
        .get("start")
        .and_then(|r| r.as_str())
        .map(str::to_string)
}
