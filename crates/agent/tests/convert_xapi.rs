//! `xenlift convert --to https://` against xapi-sim over TLS with a pinned
//! certificate, on disks made by the real tools: the VM, its disks byte for
//! byte, and what happens on faults (dropped connections, SR full, wrong
//! password, a pool member, VDI_IO_ERROR, a task cancelled on the server).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use disk::SourceDisk;
use serde_json::Value;
use testkit::{
    copy_mapped, fill_tree, require, run, sha256_file, sparse_image, tempdir, Loop, Mount, Rng,
};
use xapi_sim::{AfterBytes, FailTask, Faults, PoolMember, SimHandle, Times};

const MIB: u64 = 1 << 20;
/// Distinct enough to be found if it leaks into output or reports.
const PASSWORD: &str = "pw-Zq81-secret";
const NET: &str = "Pool-wide network associated with eth0";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Sim {
    handle: SimHandle,
    _state: tempfile::TempDir,
}

fn start_sim() -> Sim {
    let state = tempdir().unwrap();
    let mut config = xapi_sim::Config::new(state.path()).with_tls();
    config.password = PASSWORD.into();
    let handle = xapi_sim::spawn(config).unwrap();
    Sim {
        handle,
        _state: state,
    }
}

/// Runs the real binary against `sim` with a pinned fingerprint and a
/// password file.
fn convert(
    sim: &SimHandle,
    work: &Path,
    password: &str,
    extra: &[&str],
    disks: &[&Path],
) -> Output {
    let pw = work.join("password");
    std::fs::write(&pw, format!("{password}\n")).unwrap();
    let fp = sim.fingerprint().unwrap();
    let url = sim.base_url();
    let mut args: Vec<String> = [
        "convert",
        "--to",
        &url,
        "--fingerprint",
        &fp,
        "--password-file",
        s(&pw),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(extra.iter().map(|a| a.to_string()));
    args.extend(disks.iter().map(|d| s(d).to_string()));
    Command::new(env!("CARGO_BIN_EXE_xenlift"))
        .args(&args)
        .output()
        .expect("running xenlift")
}

fn text_of(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(out: &Output) -> String {
    let (o, e) = text_of(out);
    assert!(out.status.success(), "xenlift failed:\n{o}\n{e}");
    o
}

fn failed(out: &Output) -> String {
    let (o, e) = text_of(out);
    assert!(
        !out.status.success(),
        "xenlift should have failed:\n{o}\n{e}"
    );
    assert!(!o.contains("xenlift: converted"), "{o}");
    e
}

/// The VMs that are not templates.
fn vms(sim: &SimHandle) -> Vec<xapi_sim::Object> {
    sim.objects("VM")
        .into_iter()
        .filter(|v| !v.bool("is_a_template") && !v.bool("is_control_domain"))
        .collect()
}

fn vdi_uuids_in_order(sim: &SimHandle, vm: &xapi_sim::Object) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vm
        .get("VBDs")
        .as_array()
        .unwrap()
        .iter()
        .map(|r| sim.object("VBD", r.as_str().unwrap()).unwrap())
        .map(|vbd| {
            let vdi = sim.object("VDI", vbd.str("VDI")).unwrap();
            (
                vbd.str("userdevice").to_string(),
                vdi.str("uuid").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The bytes a target must hold: the source's mapped extents, zeros elsewhere.
fn reference(img: &Path, out: &Path) {
    let src = SourceDisk::open(img).unwrap();
    let size = src.info().size;
    let layouts = disk::inspect(&[src]).unwrap();
    copy_mapped(img, &layouts[0].map.aligned_out(512), out, size);
}

/// First `len` bytes of a file, hashed.
fn sha256_prefix(path: &Path, len: u64) -> String {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = std::fs::File::open(path).unwrap().take(len);
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).unwrap();
    hex::encode(h.finalize())
}

fn assert_vdi_holds(sim: &SimHandle, uuid: &str, img: &Path, work: &Path) {
    let size = std::fs::metadata(img).unwrap().len();
    let want = work.join(format!("ref-{uuid}.img"));
    reference(img, &want);
    let got = sim.vdi_path(uuid);
    assert!(std::fs::metadata(&got).unwrap().len() >= size);
    assert_eq!(
        sha256_prefix(&got, size),
        sha256_file(&want),
        "VDI {uuid} differs from {}",
        img.display()
    );
}

/// GPT: an EFI system partition with EFI/BOOT/BOOTX64.EFI, ext4 and xfs.
fn uefi_disk(img: &Path, seed: u64) {
    const ESP: (u64, u64) = (MIB, 33 * MIB);
    const EXT: (u64, u64) = (34 * MIB, 64 * MIB);
    const XFS: (u64, u64) = (98 * MIB, 320 * MIB);
    sparse_image(img, 420 * MIB);
    run(
        "sgdisk",
        &[
            "-n",
            "1:2048:+33M",
            "-t",
            "1:ef00",
            "-n",
            "2:0:+64M",
            "-t",
            "2:8300",
            "-n",
            "3:0:+320M",
            "-t",
            "3:8300",
            s(img),
        ],
    );
    run(
        "mkfs.vfat",
        &[
            "-F",
            "16",
            "-n",
            "ESP",
            "--offset",
            &(ESP.0 / 512).to_string(),
            s(img),
            &(ESP.1 / 1024).to_string(),
        ],
    );
    let loader = img.with_extension("efi");
    let mut bytes = vec![0u8; 200 << 10];
    Rng::new(seed).fill(&mut bytes);
    bytes[..2].copy_from_slice(b"MZ");
    std::fs::write(&loader, bytes).unwrap();
    let spec = format!("{}@@{}", s(img), ESP.0);
    let mtools = |args: &[&str]| {
        let st = Command::new(args[0])
            .args(&args[1..])
            .env("MTOOLS_SKIP_CHECK", "1")
            .status()
            .unwrap();
        assert!(st.success(), "{args:?}");
    };
    mtools(&["mmd", "-i", &spec, "::/EFI", "::/EFI/BOOT"]);
    mtools(&["mcopy", "-i", &spec, s(&loader), "::/EFI/BOOT/BOOTX64.EFI"]);
    run(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-E",
            &format!("offset={},nodiscard", EXT.0),
            s(img),
            "64M",
        ],
    );
    {
        let lo = Loop::attach(img, EXT.0, Some(EXT.1), false);
        let m = Mount::new(lo.path(), Some("ext4"), "rw");
        fill_tree(m.path(), seed + 1, 24 * MIB);
    }
    {
        let lo = Loop::attach(img, XFS.0, Some(XFS.1), false);
        run("mkfs.xfs", &["-q", "-f", lo.path()]);
        let m = Mount::new(lo.path(), Some("xfs"), "rw");
        fill_tree(m.path(), seed + 2, 24 * MIB);
    }
}

/// MBR with one NTFS partition.
fn ntfs_disk(img: &Path, seed: u64) {
    sparse_image(img, 64 * MIB);
    let script = "label: dos\nstart=2048, type=7\n";
    let mut child = Command::new("sfdisk")
        .args(["-q", s(img)])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let size = 63 * MIB;
    let lo = Loop::attach(img, MIB, Some(size), false);
    run(
        "mkntfs",
        &["-f", "-F", "-q", "-p", "2048", "-L", "data", lo.path()],
    );
    let m = Mount::new(lo.path(), Some("ntfs-3g"), "rw");
    fill_tree(m.path(), seed, 12 * MIB);
    drop(m);
    drop(lo);
}

/// GPT with one ext4 partition holding `data` bytes of random files.
fn data_disk(img: &Path, size: u64, data: u64, seed: u64) {
    sparse_image(img, size);
    run("sgdisk", &["-n", "1:2048:0", "-t", "1:8300", s(img)]);
    let part = size - 2 * MIB;
    run(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-E",
            &format!("offset={MIB},nodiscard"),
            s(img),
            &format!("{}M", part / MIB),
        ],
    );
    let lo = Loop::attach(img, MIB, Some(part), false);
    let m = Mount::new(lo.path(), Some("ext4"), "rw");
    fill_tree(m.path(), seed, data);
}

fn report(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn two_disks_become_a_uefi_vm_with_their_bytes() {
    require(&[
        "sgdisk",
        "sfdisk",
        "mkfs.vfat",
        "mmd",
        "mcopy",
        "mkfs.ext4",
        "mkfs.xfs",
        "mkntfs",
        "ntfs-3g",
        "losetup",
    ]);
    let work = tempdir().unwrap();
    let a = work.path().join("system.img");
    let b = work.path().join("data.img");
    uefi_disk(&a, 1);
    ntfs_disk(&b, 5);
    let before = (sha256_file(&a), sha256_file(&b));
    let sim = start_sim();
    let rep = work.path().join("report.json");
    let out = convert(
        &sim.handle,
        work.path(),
        PASSWORD,
        &[
            "--name",
            "web1",
            "--vcpus",
            "4",
            "--memory",
            "3G",
            "--network",
            &format!("02:00:00:aa:bb:01={NET}"),
            "--network",
            &format!("02:00:00:aa:bb:02={NET}"),
            "--verify",
            "full",
            "--report",
            s(&rep),
        ],
        &[&a, &b],
    );
    let stdout = ok(&out);
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("xenlift: converted"), "{stdout}");
    assert_eq!(
        (sha256_file(&a), sha256_file(&b)),
        before,
        "the sources changed"
    );

    let vms = vms(&sim.handle);
    assert_eq!(vms.len(), 1, "one VM");
    let vm = &vms[0];
    assert!(last.contains(vm.str("uuid")), "{last}");
    assert_eq!(vm.str("name_label"), "web1");
    assert_eq!(vm.get("HVM_boot_params")["firmware"], "uefi");
    assert_eq!(vm.int("VCPUs_max"), 4);
    assert_eq!(vm.int("memory_static_max"), 3 << 30);
    assert!(
        vm.get("blocked_operations").as_object().unwrap().is_empty(),
        "start unblocked"
    );
    assert!(vm
        .get("tags")
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "xenlift"));
    assert_eq!(vm.get("other_config")["xenlift-state"], "complete");

    let disks = vdi_uuids_in_order(&sim.handle, vm);
    assert_eq!(
        disks.iter().map(|d| d.0.as_str()).collect::<Vec<_>>(),
        vec!["0", "1"]
    );
    assert_vdi_holds(&sim.handle, &disks[0].1, &a, work.path());
    assert_vdi_holds(&sim.handle, &disks[1].1, &b, work.path());

    let mut macs: Vec<String> = vm
        .get("VIFs")
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            sim.handle
                .object("VIF", r.as_str().unwrap())
                .unwrap()
                .str("MAC")
                .to_string()
        })
        .collect();
    macs.sort();
    assert_eq!(macs, vec!["02:00:00:aa:bb:01", "02:00:00:aa:bb:02"]);

    let r = report(&rep);
    assert_eq!(r["outcome"], "converted");
    assert_eq!(r["plan"]["firmware"], "uefi");
    assert_eq!(r["disks"].as_array().unwrap().len(), 2);
    for d in r["disks"].as_array().unwrap() {
        assert_eq!(d["retries"], 0);
        assert_eq!(d["verify"]["disk_sha256_matches"], true);
        assert!(d["disk_sha256"].as_str().unwrap().len() == 64);
    }
    let text = std::fs::read_to_string(&rep).unwrap();
    assert!(!text.contains(PASSWORD), "the password is in the report");
    let (o, e) = text_of(&out);
    assert!(!o.contains(PASSWORD) && !e.contains(PASSWORD));
}

#[test]
fn dry_run_prints_the_plan_and_creates_nothing() {
    require(&["sgdisk", "mkfs.ext4", "losetup"]);
    let work = tempdir().unwrap();
    let img = work.path().join("small.img");
    data_disk(&img, 64 * MIB, 4 * MIB, 3);
    let sim = start_sim();
    let out = convert(&sim.handle, work.path(), PASSWORD, &["--dry-run"], &[&img]);
    let stdout = ok(&out);
    assert!(stdout.contains("VM \"small\""), "{stdout}");
    assert!(stdout.contains("firmware bios"), "{stdout}");
    assert!(stdout.contains("userdevice 0"), "{stdout}");
    assert!(vms(&sim.handle).is_empty());
    assert!(sim
        .handle
        .objects("VDI")
        .iter()
        .all(|v| v.str("name_label") != "small disk 0"));
}

#[test]
fn dropped_connections_resume_without_starting_over() {
    require(&["sgdisk", "mkfs.ext4", "losetup"]);
    let work = tempdir().unwrap();
    let img = work.path().join("big.img");
    data_disk(&img, 256 * MIB, 160 * MIB, 9);
    let before = sha256_file(&img);
    let sim = start_sim();
    sim.handle.set_faults(Faults {
        drop_import_after: Some(AfterBytes::new(40 * MIB).times(3)),
        ..Faults::default()
    });
    let rep = work.path().join("report.json");
    let out = convert(
        &sim.handle,
        work.path(),
        PASSWORD,
        &["--verify", "full", "--report", s(&rep)],
        &[&img],
    );
    let stdout = ok(&out);
    assert!(stdout
        .lines()
        .last()
        .unwrap()
        .starts_with("xenlift: converted"));
    assert_eq!(
        sim.handle.faults(),
        Faults::default(),
        "all three drops happened"
    );
    assert_eq!(sha256_file(&img), before);
    let vm = &vms(&sim.handle)[0];
    let disks = vdi_uuids_in_order(&sim.handle, vm);
    assert_vdi_holds(&sim.handle, &disks[0].1, &img, work.path());
    let r = report(&rep);
    let d = &r["disks"][0];
    assert_eq!(d["retries"], 3, "{d}");
    let resent = d["bytes_resent"].as_u64().unwrap();
    let full = d["stream_bytes"].as_u64().unwrap();
    assert!(resent > 0, "{d}");
    // A restart from zero would have resent everything sent before each break.
    assert!(resent < 3 * 40 * MIB, "{d}");
    assert!(
        d["wire_bytes"].as_u64().unwrap() < full + 3 * 40 * MIB,
        "{d}"
    );
    assert_eq!(d["verify"]["disk_sha256_matches"], true);
}

#[test]
fn wrong_password_is_clear_and_creates_nothing() {
    require(&["sgdisk", "mkfs.ext4", "losetup"]);
    let work = tempdir().unwrap();
    let img = work.path().join("d.img");
    data_disk(&img, 32 * MIB, MIB, 4);
    let sim = start_sim();
    let out = convert(&sim.handle, work.path(), "not-the-password", &[], &[&img]);
    let err = failed(&out);
    assert!(err.contains("wrong user name or password"), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");
    assert!(vms(&sim.handle).is_empty());
}

#[test]
fn sr_full_leaves_an_incomplete_blocked_vm_or_nothing_with_cleanup() {
    require(&["sgdisk", "mkfs.ext4", "losetup"]);
    let work = tempdir().unwrap();
    let img = work.path().join("d.img");
    data_disk(&img, 32 * MIB, MIB, 4);
    let sim = start_sim();
    let vdis_before = sim.handle.objects("VDI").len();
    sim.handle.set_faults(Faults {
        sr_full: Some(Times::default().times(1)),
        ..Faults::default()
    });
    let err = failed(&convert(&sim.handle, work.path(), PASSWORD, &[], &[&img]));
    assert!(err.contains("storage repository is full"), "{err}");
    assert!(err.contains("marked incomplete"), "{err}");
    let vms_now = vms(&sim.handle);
    assert_eq!(vms_now.len(), 1);
    let vm = &vms_now[0];
    assert!(
        vm.get("blocked_operations").get("start").is_some(),
        "start stays blocked"
    );
    assert_eq!(vm.get("other_config")["xenlift-state"], "incomplete");
    assert!(vm.str("name_label").contains("incomplete"));
    assert!(vm.str("name_description").starts_with("INCOMPLETE"));
    assert!(!vm
        .get("tags")
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "xenlift"));

    sim.handle.set_faults(Faults {
        sr_full: Some(Times::default().times(1)),
        ..Faults::default()
    });
    let err = failed(&convert(
        &sim.handle,
        work.path(),
        PASSWORD,
        &["--cleanup-on-failure", "--name", "second"],
        &[&img],
    ));
    assert!(err.contains("removed"), "{err}");
    assert_eq!(vms(&sim.handle).len(), 1, "the second VM is gone");
    assert_eq!(sim.handle.objects("VDI").len(), vdis_before);
}

#[test]
fn a_pool_member_sends_us_to_its_master() {
    require(&["sgdisk", "mkfs.ext4", "losetup"]);
    let work = tempdir().unwrap();
    let img = work.path().join("d.img");
    data_disk(&img, 32 * MIB, 2 * MIB, 6);
    let master = start_sim();
    let member = start_sim();
    let mut pm = PoolMember::new(&master.handle.addr().to_string());
    pm.master_fingerprint_sha256 = master.handle.fingerprint();
    member.handle.set_faults(Faults {
        pool_member: Some(pm),
        ..Faults::default()
    });
    let out = convert(&member.handle, work.path(), PASSWORD, &[], &[&img]);
    ok(&out);
    assert!(vms(&member.handle).is_empty());
    let on_master = vms(&master.handle);
    assert_eq!(on_master.len(), 1);
    let disks = vdi_uuids_in_order(&master.handle, &on_master[0]);
    assert_vdi_holds(&master.handle, &disks[0].1, &img, work.path());
}

#[test]
fn vdi_io_error_after_the_200_is_clear_on_a_vhd_sr() {
    require(&["sgdisk", "mkfs.ext4", "losetup"]);
    let work = tempdir().unwrap();
    let img = work.path().join("d.img");
    data_disk(&img, 32 * MIB, 2 * MIB, 7);
    let sim = start_sim();
    sim.handle.set_faults(Faults {
        fail_task: Some(FailTask::new("VDI_IO_ERROR", &["Device I/O errors"]).times(1)),
        ..Faults::default()
    });
    let err = failed(&convert(
        &sim.handle,
        work.path(),
        PASSWORD,
        &["--cleanup-on-failure"],
        &[&img],
    ));
    assert!(
        err.contains("failed to read or write the virtual disk"),
        "{err}"
    );
    assert!(err.contains("removed"), "{err}");
    assert!(vms(&sim.handle).is_empty());
}

#[test]
fn a_thick_sr_gets_chunked_raw_and_a_refused_vhd_is_sent_again_as_raw() {
    require(&["sgdisk", "mkfs.ext4", "losetup"]);
    let work = tempdir().unwrap();
    let img = work.path().join("d.img");
    data_disk(&img, 48 * MIB, 8 * MIB, 8);
    let sim = start_sim();
    // Known raw SR type: chunked raw from the start.
    let rep = work.path().join("r1.json");
    ok(&convert(
        &sim.handle,
        work.path(),
        PASSWORD,
        &[
            "--sr",
            xapi_sim::THICK_SR,
            "--report",
            s(&rep),
            "--name",
            "one",
        ],
        &[&img],
    ));
    let r = report(&rep);
    assert_eq!(r["disks"][0]["format"], "raw-chunked");
    assert_eq!(r["disks"][0]["retries"], 0);
    // VHD forced onto it: the host fails the task after the 200, xenlift
    // sends the disk again as chunked raw.
    let rep = work.path().join("r2.json");
    ok(&convert(
        &sim.handle,
        work.path(),
        PASSWORD,
        &[
            "--sr",
            xapi_sim::THICK_SR,
            "--format",
            "vhd",
            "--report",
            s(&rep),
            "--name",
            "two",
        ],
        &[&img],
    ));
    let r = report(&rep);
    assert_eq!(r["disks"][0]["format"], "raw-chunked");
    assert_eq!(r["disks"][0]["retries"], 1);
    let vm = sim.handle.find("VM", "name_label", "two").pop().unwrap();
    let disks = vdi_uuids_in_order(&sim.handle, &vm);
    assert_vdi_holds(&sim.handle, &disks[0].1, &img, work.path());
}

#[test]
fn a_task_cancelled_on_the_server_stops_cleanly() {
    require(&["sgdisk", "mkfs.ext4", "losetup"]);
    let work = tempdir().unwrap();
    let img = work.path().join("d.img");
    data_disk(&img, 64 * MIB, 24 * MIB, 10);
    let sim = start_sim();
    sim.handle.set_faults(Faults {
        cancel_import_after: Some(AfterBytes::new(4 * MIB).times(1)),
        ..Faults::default()
    });
    let err = failed(&convert(&sim.handle, work.path(), PASSWORD, &[], &[&img]));
    assert!(err.contains("cancelled on the server"), "{err}");
    let vm = &vms(&sim.handle)[0];
    assert!(vm.get("blocked_operations").get("start").is_some());
    assert_eq!(vm.get("other_config")["xenlift-state"], "incomplete");
}

#[test]
fn ctrl_c_stops_and_leaves_the_vm_blocked_and_incomplete() {
    require(&["sgdisk", "mkfs.ext4", "losetup", "kill"]);
    let work = tempdir().unwrap();
    let img = work.path().join("d.img");
    data_disk(&img, 64 * MIB, 24 * MIB, 12);
    let sim = start_sim();
    // Slow enough that the upload is still running when the signal comes.
    sim.handle.set_faults(Faults {
        rate_limit: Some(xapi_sim::RateLimit::new(MIB)),
        ..Faults::default()
    });
    let pw = work.path().join("password");
    std::fs::write(&pw, PASSWORD).unwrap();
    let rep = work.path().join("report.json");
    let child = Command::new(env!("CARGO_BIN_EXE_xenlift"))
        .args([
            "convert",
            "--to",
            &sim.handle.base_url(),
            "--fingerprint",
            &sim.handle.fingerprint().unwrap(),
            "--password-file",
            s(&pw),
            "--report",
            s(&rep),
            s(&img),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the upload is under way: its task is pending with progress.
    while !sim.handle.objects("task").iter().any(|t| {
        t.str("status") == "pending"
            && t.str("name_label") == "xenlift: import disk"
            && t.get("progress").as_f64().unwrap_or(0.0) > 0.0
    }) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    run("kill", &["-INT", &child.id().to_string()]);
    let out = child.wait_with_output().unwrap();
    let err = failed(&out);
    assert!(err.contains("stopped by the operator"), "{err}");
    let vm = &vms(&sim.handle)[0];
    assert!(vm.get("blocked_operations").get("start").is_some());
    assert_eq!(vm.get("other_config")["xenlift-state"], "incomplete");
    let r = report(&rep);
    assert_eq!(r["outcome"], "failed");
    assert_eq!(r["cleanup"], "left incomplete");
}
