//! The appliance boots in QEMU (TCG) from every medium, reaches "ready"
//! (drivers loaded, the disk seen, the network up by DHCP), runs the agent
//! as configured and powers off. The agent's output must equal what the
//! same command prints on the host for the same disk image.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use support::*;
use testkit::qemu::{Bus, Firmware, Machine};

const INSPECT: &str = "run = \"inspect\"\njson = true\npost = \"poweroff\"\n";

/// Boots `machine`, checks the ready line, the agent's run and the end.
fn boots_and_inspects(name: &str, machine: Machine, firmware: &str, disk: &Path) {
    let _one = qemu_lock();
    let started = Instant::now();
    let mut vm = machine.start();
    let ready = wait_ready(&mut vm);
    let ready_secs = started.elapsed().as_secs_f64();
    for want in [
        format!("firmware: {firmware};"),
        "disks: vda (64 MiB);".to_string(),
        "network: eth0 10.0.2.15/24 via 10.0.2.2".to_string(),
    ] {
        assert!(
            ready.line.contains(&want),
            "{name}: ready line lacks {want:?}: {}",
            ready.line
        );
    }
    let agent = wait_agent(&mut vm);
    assert_eq!(
        agent.command, "xenlift inspect --json -- /dev/vda",
        "{name}"
    );
    let (host_output, host_status) = host_run(&["inspect", "--json", "--"], disk, "/dev/vda");
    assert_eq!(
        (agent.output.as_str(), agent.status),
        (host_output.as_str(), host_status),
        "{name}: the appliance's agent and the host's disagree"
    );
    wait_poweroff(&mut vm);
    eprintln!(
        "{name}: ready {ready_secs:.0}s after QEMU started, powered off after {:.0}s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn cd_bios() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sample_disk(dir.path());
    let iso = customized_iso(dir.path(), &answer(dir.path(), "a.toml", INSPECT));
    let m = Machine::new(Firmware::Bios)
        .cdrom(&iso)
        .disk(&disk, Bus::Virtio, "raw")
        .nic("virtio-net-pci", MAC, "")
        .boot_order("d");
    boots_and_inspects("CD, BIOS", m, "BIOS", &disk);
}

#[test]
fn cd_uefi_secure_boot() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sample_disk(dir.path());
    let iso = customized_iso(dir.path(), &answer(dir.path(), "a.toml", INSPECT));
    let m = Machine::new(Firmware::UefiSecureBoot)
        .cdrom(&iso)
        .disk(&disk, Bus::Virtio, "raw")
        .nic("virtio-net-pci", MAC, "")
        .boot_order("d");
    boots_and_inspects("CD, UEFI Secure Boot", m, "UEFI, Secure Boot on", &disk);
}

/// The ISO written to a USB stick as `dd` would (a byte copy), booted by
/// BIOS (isohybrid MBR) and by UEFI with Secure Boot (GPT ESP).
#[test]
fn usb_stick_bios_and_uefi_secure_boot() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sample_disk(dir.path());
    let iso = customized_iso(dir.path(), &answer(dir.path(), "a.toml", INSPECT));
    let stick = dir.path().join("stick.img");
    std::fs::copy(&iso, &stick).unwrap();
    for (firmware, shown) in [
        (Firmware::Bios, "BIOS"),
        (Firmware::UefiSecureBoot, "UEFI, Secure Boot on"),
    ] {
        let m = Machine::new(firmware)
            .disk_snapshot(&stick, Bus::Usb, "raw")
            .disk(&disk, Bus::Virtio, "raw")
            .nic("virtio-net-pci", MAC, "");
        boots_and_inspects(&format!("USB, {shown}"), m, shown, &disk);
    }
}

/// BIOS PXE: QEMU's iPXE loads a site script that sets the answer file URL
/// and chains the shipped boot.ipxe; the answer file comes over HTTP.
#[test]
fn pxe_bios_ipxe_answer_file_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sample_disk(dir.path());
    let server = HttpServer::start(BTreeMap::from([(
        format!("/{MAC}.toml"),
        INSPECT.to_string(),
    )]));
    let root = tftp_root(dir.path());
    ipxe_site_script(&root, server.port);
    let m = Machine::new(Firmware::Bios)
        .disk(&disk, Bus::Virtio, "raw")
        .nic(
            "virtio-net-pci",
            MAC,
            &format!("tftp={},bootfile=site.ipxe", root.display()),
        )
        .boot_order("n");
    boots_and_inspects("PXE, BIOS, iPXE", m, "BIOS", &disk);
    assert_eq!(*server.requests.lock().unwrap(), [format!("/{MAC}.toml")]);
}

/// UEFI Secure Boot PXE: the firmware's own PXE loads shim, shim the signed
/// grubnetx64, GRUB the signed kernel; the URL template is expanded by the
/// appliance (`${mac_hyphens}`).
#[test]
fn pxe_uefi_secure_boot_shim_grub() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sample_disk(dir.path());
    let path = format!("/{}.toml", MAC.replace(':', "-"));
    let server = HttpServer::start(BTreeMap::from([(path.clone(), INSPECT.to_string())]));
    let root = tftp_root(dir.path());
    grub_site_menu(&root, server.port);
    let m = Machine::new(Firmware::UefiSecureBoot)
        .disk(&disk, Bus::Virtio, "raw")
        .nic(
            "virtio-net-pci,romfile=",
            MAC,
            &format!("tftp={},bootfile=shimx64.efi", root.display()),
        )
        .boot_order("n");
    boots_and_inspects("PXE, UEFI Secure Boot", m, "UEFI, Secure Boot on", &disk);
    assert_eq!(*server.requests.lock().unwrap(), [path]);
}
