//! Shared by the guest tests: the guest images (built by tests/guests/build.sh,
//! cached), the source and target machines, and the marker line.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use testkit::qemu::{Bus, Firmware, Machine, Running};

/// The source NIC's MAC; the target VIF keeps it, as XenServer's VIF would.
pub const SOURCE_MAC: &str = "52:54:00:12:34:56";
/// The name systemd gives the virtio NIC at PCI slot 5 on q35.
pub const SOURCE_IFACE: &str = "enp0s5";
/// Guards against hangs only (TCG on a busy 2-core host is slow); asserts nothing about speed.
pub const BOOT_LIMIT: Duration = Duration::from_secs(40 * 60);

pub use testkit::guest_image;

/// A sparse copy of an image.
pub fn copy_image(src: &Path, dst: &Path) {
    let ok = Command::new("cp")
        .arg("--sparse=always")
        .arg(src)
        .arg(dst)
        .status()
        .expect("cp");
    assert!(ok.success(), "copying {}", src.display());
}

/// The hardware the image was made on: q35, virtio disk, virtio NIC in slot 5.
pub fn source_machine(firmware: Firmware, image: &Path) -> Machine {
    Machine::new(firmware)
        .disk_snapshot(image, Bus::Virtio, "raw")
        .nic("virtio-net-pci,addr=0x5", SOURCE_MAC, "")
}

/// Hardware like a XenServer HVM guest's before its PV drivers load: an
/// emulated IDE or SATA disk and an e1000 NIC in another slot (same MAC).
pub fn target_machine(firmware: Firmware, image: &Path, bus: Bus) -> Machine {
    Machine::new(firmware)
        .disk_snapshot(image, bus, "raw")
        .nic("e1000,addr=0x6", SOURCE_MAC, "")
}

/// The facts the guest's marker service prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub root: String,
    pub iface: String,
    pub addr: String,
    pub links: String,
}

/// Waits for the marker line and parses it.
pub fn wait_marker(vm: &mut Running) -> Marker {
    vm.wait_for("XENLIFT-GUEST-UP ", BOOT_LIMIT)
        .unwrap_or_else(|e| panic!("{e}"));
    let line = vm
        .wait_for("\n", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let line = line
        .rsplit("XENLIFT-GUEST-UP ")
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let field = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .unwrap_or("")
            .to_string()
    };
    Marker {
        root: field("root"),
        iface: field("iface"),
        addr: field("addr"),
        links: field("links"),
    }
}

/// Asserts the guest came up as on its source: root read-write, the
/// configured interface up with a DHCP address from QEMU user networking.
pub fn assert_up(m: &Marker) {
    assert_eq!(m.root, "rw", "root filesystem not read-write: {m:?}");
    assert_eq!(m.iface, SOURCE_IFACE, "{m:?}");
    assert!(
        m.addr.starts_with("10.0.2."),
        "{SOURCE_IFACE} has no DHCP address: {m:?}"
    );
}

/// Time since `start`, for the test log.
pub fn took(what: &str, start: Instant) {
    eprintln!("{what}: {:.0?}", start.elapsed());
}
