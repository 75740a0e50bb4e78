//! End to end: a source VM boots the appliance ISO from its CD drive and
//! converts its own disk into xapi-sim on the host (reached from QEMU's user
//! network as 10.0.2.2), unattended from an answer file and interactively
//! over the serial console. The VDIs must hold the source's mapped extents
//! and zeros elsewhere, and the source must be unchanged.

// Test fixtures: a failed step is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use support::*;
use testkit::qemu::{Bus, Firmware, Machine, Running};
use xapi_sim::SimHandle;

/// Not the sim's default: the console must never show it.
const PASSWORD: &str = "pw-never-on-console-7341";

/// A 64 MiB MBR disk whose ext4 holds a few files of varied bytes.
fn source_disk(dir: &Path) -> PathBuf {
    let files = dir.join("files");
    std::fs::create_dir_all(files.join("etc")).unwrap();
    std::fs::write(files.join("etc/hostname"), "source-vm\n").unwrap();
    let mut data = Vec::with_capacity(3 << 20);
    let mut x: u32 = 0x1234_5678;
    while data.len() < 3 << 20 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(files.join("data.bin"), &data).unwrap();
    let img = dir.join("source.img");
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(64 << 20).unwrap();
    let mut sfdisk = Command::new("sfdisk");
    sfdisk
        .arg("--quiet")
        .arg(&img)
        .stdin(std::process::Stdio::piped());
    let mut child = sfdisk.spawn().expect("sfdisk (run ci/setup)");
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        b"label: dos\nstart=2048, type=83\n",
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-E", "offset=1048576", "-L", "source", "-d"])
        .arg(&files)
        .arg(&img)
        .arg("63M"));
    img
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// The sim on 127.0.0.1 with TLS, logging in `root` with [`PASSWORD`].
fn sim(dir: &Path) -> SimHandle {
    let mut config = xapi_sim::Config::new(dir.join("sim")).with_tls();
    config.password = PASSWORD.into();
    xapi_sim::spawn(config).unwrap()
}

/// What the guest types as the target: the host seen from QEMU's user net.
fn guest_url(sim: &SimHandle) -> String {
    format!("https://10.0.2.2:{}", sim.addr().port())
}

/// `[offset, length]` extents the host's `inspect --extents` maps on `image`.
fn mapped_extents(image: &Path) -> Vec<(u64, u64)> {
    let out = run(Command::new(xenlift())
        .args(["inspect", "--json", "--extents", "--"])
        .arg(image));
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    doc["disks"][0]["extents"]
        .as_array()
        .expect("inspect --extents lists extents")
        .iter()
        .map(|e| (e[0].as_u64().unwrap(), e[1].as_u64().unwrap()))
        .collect()
}

/// The VM named `name` is complete (tagged, start unblocked) and its one
/// VDI holds exactly the source's mapped extents, zeros elsewhere.
fn assert_converted(sim: &SimHandle, name: &str, source: &Path) {
    let vms = sim.find("VM", "name_label", name);
    assert_eq!(vms.len(), 1, "one VM named {name} in the sim");
    let vm = &vms[0];
    let tags = vm.get("tags").as_array().cloned().unwrap_or_default();
    assert!(
        tags.iter().any(|t| t == "xenlift"),
        "VM {name} tagged xenlift: {tags:?}"
    );
    let blocked = vm.get("blocked_operations");
    assert!(
        blocked.get("start").is_none(),
        "VM {name} may start: blocked_operations {blocked}"
    );
    let vdis = vm_disks(sim, vm);
    assert_eq!(vdis.len(), 1, "one disk attached to {name}");
    let source_bytes = std::fs::read(source).unwrap();
    assert_eq!(vdis[0].int("virtual_size") as usize, source_bytes.len());
    let mut expected = vec![0u8; source_bytes.len()];
    let extents = mapped_extents(source);
    assert!(!extents.is_empty());
    for (offset, len) in extents {
        let (a, b) = (offset as usize, (offset + len) as usize);
        expected[a..b].copy_from_slice(&source_bytes[a..b]);
    }
    let mut got = std::fs::read(sim.vdi_path(vdis[0].str("uuid"))).unwrap();
    assert!(got.len() <= expected.len(), "VDI file longer than the disk");
    got.resize(expected.len(), 0);
    let first_difference = got.iter().zip(&expected).position(|(g, e)| g != e);
    assert_eq!(
        first_difference, None,
        "the VDI of {name} differs from the source's mapped extents"
    );
}

/// An answer file converting into `sim` as VM `name`.
fn convert_answer(sim: &SimHandle, name: &str) -> String {
    format!(
        "run = \"convert\"\npost = \"poweroff\"\nto = \"{}\"\nfingerprint = \"{}\"\n\
         username = \"root\"\npassword = \"{PASSWORD}\"\nname = \"{name}\"\n",
        guest_url(sim),
        sim.fingerprint().unwrap()
    )
}

/// Waits for the agent's run: a conversion that succeeds, then power-off.
fn expect_converted(vm: &mut Running) {
    wait_ready(vm);
    let agent = wait_agent(vm);
    eprintln!("{}", agent.output);
    assert_eq!(agent.status, 0, "the conversion failed:\n{}", agent.output);
    assert!(
        agent.command.contains("--password ********"),
        "{}",
        agent.command
    );
    assert!(
        agent
            .output
            .lines()
            .last()
            .unwrap_or("")
            .starts_with("xenlift: converted"),
        "{}",
        agent.output
    );
    wait_poweroff(vm);
    assert!(
        !vm.console_text().contains(PASSWORD),
        "password on the console"
    );
}

/// The source VM: BIOS, the ISO as CD, the disk on virtio, one NIC.
fn source_vm(iso: &Path, disk: &Path) -> Running {
    Machine::new(Firmware::Bios)
        .cdrom(iso)
        .disk(disk, Bus::Virtio, "raw")
        .nic("virtio-net-pci", MAC, "")
        .boot_order("d")
        .start()
}

/// One unattended conversion: a QEMU slot, a source disk, the sim, and
/// the VM name the answer file asks for.
struct Unattended {
    _one: QemuSlot,
    dir: tempfile::TempDir,
    disk: PathBuf,
    before: String,
    sim: SimHandle,
    name: &'static str,
}

impl Unattended {
    fn new(name: &'static str) -> Unattended {
        let one = qemu_lock();
        let dir = tempfile::tempdir().unwrap();
        let disk = source_disk(dir.path());
        let before = sha256(&disk);
        let sim = sim(dir.path());
        Unattended {
            _one: one,
            dir,
            disk,
            before,
            sim,
            name,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn answer(&self) -> String {
        convert_answer(&self.sim, self.name)
    }

    /// A copy of the ISO with the answer file embedded.
    fn iso(&self) -> PathBuf {
        customized_iso(self.path(), &answer(self.path(), "a.toml", &self.answer()))
    }

    /// The VM converts its disk and powers off; the VM in the sim holds
    /// the source's mapped extents; the source is unchanged.
    fn expect_converted(self, vm: &mut Running) {
        expect_converted(vm);
        assert_converted(&self.sim, self.name, &self.disk);
        assert_eq!(
            sha256(&self.disk),
            self.before,
            "the source disk was written"
        );
        self.sim.shutdown();
    }
}

#[test]
fn cd_bios_converts_unattended_into_the_sim() {
    let case = Unattended::new("cd-bios-unattended");
    let mut vm = source_vm(&case.iso(), &case.disk);
    case.expect_converted(&mut vm);
}

/// The same under UEFI with Secure Boot (OVMF): shim, GRUB, signed kernel.
#[test]
fn cd_uefi_secure_boot_converts_unattended_into_the_sim() {
    let case = Unattended::new("cd-uefi-unattended");
    let mut vm = Machine::new(Firmware::UefiSecureBoot)
        .cdrom(&case.iso())
        .disk(&case.disk, Bus::Virtio, "raw")
        .nic("virtio-net-pci", MAC, "")
        .boot_order("d")
        .start();
    case.expect_converted(&mut vm);
}

/// PXE (QEMU's TFTP and iPXE, BIOS): the answer file, password included,
/// comes over HTTP from a per-machine URL.
#[test]
fn pxe_bios_answer_file_over_http_converts_into_the_sim() {
    let case = Unattended::new("pxe-bios-unattended");
    let path = format!("/{MAC}.toml");
    let server = HttpServer::start(BTreeMap::from([(path.clone(), case.answer())]));
    let root = tftp_root(case.path());
    ipxe_site_script(&root, server.port);
    let mut vm = Machine::new(Firmware::Bios)
        .disk(&case.disk, Bus::Virtio, "raw")
        .nic(
            "virtio-net-pci",
            MAC,
            &format!("tftp={},bootfile=site.ipxe", root.display()),
        )
        .boot_order("n")
        .start();
    case.expect_converted(&mut vm);
    assert_eq!(*server.requests.lock().unwrap(), [path]);
}

/// PXE under UEFI with Secure Boot: the firmware's PXE loads shim, shim
/// the signed grubnetx64, GRUB the signed kernel; the answer file comes
/// over HTTP from a URL the appliance expands per machine.
#[test]
fn pxe_uefi_secure_boot_answer_file_over_http_converts_into_the_sim() {
    let case = Unattended::new("pxe-uefi-unattended");
    let path = format!("/{}.toml", MAC.replace(':', "-"));
    let server = HttpServer::start(BTreeMap::from([(path.clone(), case.answer())]));
    let root = tftp_root(case.path());
    grub_site_menu(&root, server.port);
    let mut vm = Machine::new(Firmware::UefiSecureBoot)
        .disk(&case.disk, Bus::Virtio, "raw")
        .nic(
            "virtio-net-pci,romfile=",
            MAC,
            &format!("tftp={},bootfile=shimx64.efi", root.display()),
        )
        .boot_order("n")
        .start();
    case.expect_converted(&mut vm);
    assert_eq!(*server.requests.lock().unwrap(), [path]);
}

/// The ISO written to a USB stick as `dd` would, booted by UEFI with
/// Secure Boot: the stick the appliance runs from is not converted, only
/// the machine's disk is.
#[test]
fn usb_stick_uefi_secure_boot_converts_unattended_into_the_sim() {
    let case = Unattended::new("usb-uefi-unattended");
    let stick = case.path().join("stick.img");
    std::fs::copy(case.iso(), &stick).unwrap();
    let mut vm = Machine::new(Firmware::UefiSecureBoot)
        .disk_snapshot(&stick, Bus::Usb, "raw")
        .disk(&case.disk, Bus::Virtio, "raw")
        .nic("virtio-net-pci", MAC, "")
        .start();
    case.expect_converted(&mut vm);
}

/// Types `answer` once the console shows `prompt`.
fn reply(vm: &mut Running, prompt: &str, answer: &str) -> String {
    let text = vm
        .wait_for(prompt, RUN_LIMIT)
        .unwrap_or_else(|e| panic!("{e}"));
    vm.send(answer);
    vm.send("\n");
    text
}

#[test]
fn cd_bios_interactive_over_the_serial_console() {
    let _one = qemu_lock();
    let dir = tempfile::tempdir().unwrap();
    let disk = source_disk(dir.path());
    let before = sha256(&disk);
    let sim = sim(dir.path());
    // No target: the dialog runs; the answer file only says how to end.
    let iso = customized_iso(
        dir.path(),
        &answer(dir.path(), "a.toml", "post = \"poweroff\"\n"),
    );
    let mut vm = source_vm(&iso, &disk);
    wait_ready(&mut vm);
    let target = guest_url(&sim).replace("https://", "");
    reply(&mut vm, "Target XenServer / XCP-ng host", &target);
    let shown = reply(&mut vm, "Is this the host's fingerprint? [y/n]: ", "y");
    assert!(
        shown.contains(&sim.fingerprint().unwrap()),
        "the dialog shows the sim's fingerprint"
    );
    reply(&mut vm, "User name [root]: ", "");
    reply(&mut vm, "Password: ", "not-the-password");
    vm.wait_for("wrong user name or password; try again", RUN_LIMIT)
        .unwrap_or_else(|e| panic!("{e}"));
    reply(&mut vm, "User name [root]: ", "");
    reply(&mut vm, "Password: ", PASSWORD);
    reply(&mut vm, "Storage repository for the disks", "");
    reply(&mut vm, &format!("Network for eth0 ({MAC})"), "");
    let disks = reply(&mut vm, "Disks to convert", "");
    assert!(
        disks.contains("1) /dev/vda  64.0 MiB  MBR: ext4 \"source\""),
        "{disks}"
    );
    reply(&mut vm, "VM name", "cd-bios-interactive");
    let plan = reply(&mut vm, "Start the conversion?", "y");
    assert!(plan.contains("disk     /dev/vda (64.0 MiB)"), "{plan}");
    let agent = wait_agent(&mut vm);
    assert_eq!(agent.status, 0, "the conversion failed:\n{}", agent.output);
    wait_poweroff(&mut vm);
    let console = vm.console_text();
    assert!(!console.contains(PASSWORD), "password on the console");
    assert!(
        !console.contains("not-the-password"),
        "a typed password was echoed"
    );
    assert_converted(&sim, "cd-bios-interactive", &disk);
    assert_eq!(sha256(&disk), before, "the source disk was written");
    sim.shutdown();
}

/// VMs in the sim that are neither templates nor dom0.
fn vm_count(sim: &SimHandle) -> usize {
    sim.objects("VM")
        .into_iter()
        .filter(|v| !v.bool("is_a_template") && !v.bool("is_control_domain"))
        .count()
}

/// Boots with `answer_text`; the agent must fail with output holding every
/// one of `said`, then the configured end (power-off) follows.
fn fails_clearly(dir: &Path, disk: &Path, answer_text: &str, said: &[&str]) {
    let iso = customized_iso(dir, &answer(dir, "a.toml", answer_text));
    let mut vm = source_vm(&iso, disk);
    wait_ready(&mut vm);
    let agent = wait_agent(&mut vm);
    eprintln!("{}", agent.output);
    assert_ne!(agent.status, 0, "{}", agent.output);
    for s in said {
        assert!(agent.output.contains(s), "{s:?} not in:\n{}", agent.output);
    }
    wait_poweroff(&mut vm);
    assert!(
        !vm.console_text().contains(PASSWORD),
        "password on the console"
    );
}

/// Wrong settings end with a clear message and the configured end, not a
/// hang, and create nothing: a wrong fingerprint (the one seen is named,
/// nothing is sent), a wrong password, an unreachable host.
#[test]
fn cd_bios_wrong_settings_say_so_and_power_off() {
    let _one = qemu_lock();
    let dir = tempfile::tempdir().unwrap();
    let disk = source_disk(dir.path());
    let sim = sim(dir.path());
    let good = convert_answer(&sim, "never-created");
    let fingerprint = sim.fingerprint().unwrap();

    let wrong_fingerprint = good.replace(&fingerprint, &("AB:".repeat(31) + "AB"));
    fails_clearly(
        dir.path(),
        &disk,
        &wrong_fingerprint,
        &[&fingerprint, "nothing was sent"],
    );

    let wrong_password = good.replace(PASSWORD, "not-the-password");
    fails_clearly(
        dir.path(),
        &disk,
        &wrong_password,
        &["wrong user name or password"],
    );

    // Nothing listens on port 1 of the host.
    let unreachable = good.replace(&guest_url(&sim), "https://10.0.2.2:1");
    fails_clearly(
        dir.path(),
        &disk,
        &unreachable,
        &["10.0.2.2:1", "Connection refused"],
    );

    assert_eq!(vm_count(&sim), 0, "nothing created");
    sim.shutdown();
}
