//! End to end: a UEFI VM whose disk is a real Debian 12 install with its
//! root on LVM, /boot apart and an ESP (tests/guests/build.sh uefi-lvm)
//! boots the appliance ISO from CD and converts itself into xapi-sim on the
//! host; the guest fix-up runs inside the appliance with the tools of its
//! initramfs (the logical volume reached through its PV's metadata, no
//! device-mapper), and its changes land on the VDI. The source disk is never
//! written. The BIOS/MBR guest's fix-up is proven natively in
//! crates/guest/tests/fixup_boots.rs.
//!
//! The guest builds its initramfs from a module list (MODULES=list, set on
//! the copy): a MODULES=most rebuild copies over a thousand modules one
//! process at a time, which under TCG takes half an hour; that rebuild is
//! proven natively in crates/guest/tests/fixup_boots.rs.

// Test fixtures: a failed step is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use support::*;
use testkit::qemu::{Bus, Firmware, Machine};

/// Not the sim's default: the console must never show it.
const PASSWORD: &str = "pw-fixup-never-shown-5190";
const NAME: &str = "debian-uefi-lvm";
const VARIANT: &str = "uefi-lvm";

/// The cached guest image (built on first use), copied to `dir`, set to
/// build its initramfs from its module list.
fn guest_copy(dir: &Path) -> PathBuf {
    let out = run(Command::new(workspace().join("tests/guests/build.sh")).arg(VARIANT));
    let cached = PathBuf::from(out.trim().lines().last().unwrap().trim());
    let copy = dir.join("source.img");
    // Sparse copy: the image is mostly holes.
    run(Command::new("cp")
        .arg("--sparse=always")
        .arg(&cached)
        .arg(&copy));
    let root = LoopMount::new(&copy, root_volume(&copy), &dir.join("setup"), true);
    let conf = root.dir.join("etc/initramfs-tools/initramfs.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .map(|l| {
            if l.starts_with("MODULES=") {
                "MODULES=list"
            } else {
                l
            }
        })
        .collect();
    assert!(lines.contains(&"MODULES=list"), "no MODULES line:\n{text}");
    std::fs::write(&conf, lines.join("\n") + "\n").unwrap();
    copy
}

fn sha256(path: &Path) -> String {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).unwrap();
    hex::encode(h.finalize())
}

/// Partition `number`'s byte offset and size, by sfdisk.
fn partition(image: &Path, number: usize) -> (u64, u64) {
    let doc: serde_json::Value =
        serde_json::from_str(&run(Command::new("sfdisk").arg("--json").arg(image))).unwrap();
    let table = &doc["partitiontable"];
    let sector = table["sectorsize"].as_u64().unwrap_or(512);
    let p = &table["partitions"][number - 1];
    (
        p["start"].as_u64().unwrap() * sector,
        p["size"].as_u64().unwrap() * sector,
    )
}

/// Byte offset and size of the linear LV vg0/root on partition 3, read by
/// the host's LVM tools from the PV alone (no device-mapper here).
fn root_volume(image: &Path) -> (u64, u64) {
    let (offset, size) = partition(image, 3);
    let script = format!(
        r#"
        set -eu
        pv=$(losetup -f --show -r -o {offset} --sizelimit {size} '{image}')
        trap 'losetup -d $pv' EXIT
        conf="devices {{ filter=[\"a|^$pv\$|\",\"r|.*|\"] }}"
        pe=$(pvs --config "$conf" --noheadings --nosuffix --units b -o pe_start $pv | tr -d ' ')
        ext=$(vgs --config "$conf" --noheadings --nosuffix --units b -o vg_extent_size vg0 | tr -d ' ')
        r=$(lvs --config "$conf" --noheadings -o seg_pe_ranges vg0/root | tr -d ' ')
        first=${{r##*:}}; first=${{first%-*}}; last=${{r##*-}}
        echo $((pe + first * ext)) $(((last - first + 1) * ext))
        "#,
        image = image.display()
    );
    let out = run(Command::new("bash").arg("-c").arg(script));
    let mut it = out.split_whitespace().map(|n| n.parse::<u64>().unwrap());
    let (lv_offset, lv_size) = (it.next().unwrap(), it.next().unwrap());
    (offset + lv_offset, lv_size)
}

/// Unmounts and detaches on drop, also when an assertion fails.
struct LoopMount {
    dir: PathBuf,
    device: String,
}

impl LoopMount {
    fn new(image: &Path, (offset, size): (u64, u64), at: &Path, writable: bool) -> LoopMount {
        let mut losetup = Command::new("losetup");
        losetup.args(["--find", "--show"]);
        if !writable {
            losetup.arg("--read-only");
        }
        let device = run(losetup
            .arg("-o")
            .arg(offset.to_string())
            .arg("--sizelimit")
            .arg(size.to_string())
            .arg(image))
        .trim()
        .to_string();
        std::fs::create_dir_all(at).unwrap();
        let mounted = Command::new("mount")
            .args(["-o", if writable { "rw" } else { "ro,noload" }, &device])
            .arg(at)
            .status()
            .unwrap();
        if !mounted.success() {
            let _ = Command::new("losetup").args(["-d", &device]).status();
            panic!("mounting {} at {offset} failed", image.display());
        }
        LoopMount {
            dir: at.to_path_buf(),
            device,
        }
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

/// A 2 GiB guest through TCG and user networking outlasts the shared
/// support's limit; this one only guards against a hang.
const CONVERT_LIMIT: Duration = Duration::from_secs(1800);

#[test]
fn cd_uefi_converts_an_lvm_rooted_debian_guest_and_fixes_it_up_in_the_appliance() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let source = guest_copy(dir.path());
    let before = sha256(&source);

    let mut config = xapi_sim::Config::new(dir.path().join("sim")).with_tls();
    config.password = PASSWORD.into();
    let sim = xapi_sim::spawn(config).unwrap();
    // No read-back: exporting 700 MiB through TLS under TCG takes longer
    // than the whole conversion (verification is proven by convert_xapi and
    // appliance_convert).
    let text = format!(
        "run = \"convert\"\npost = \"poweroff\"\nto = \"https://10.0.2.2:{}\"\n\
         fingerprint = \"{}\"\nusername = \"root\"\npassword = \"{PASSWORD}\"\nname = \"{NAME}\"\n\
         verify = \"none\"\n",
        sim.addr().port(),
        sim.fingerprint().unwrap()
    );
    let iso = customized_iso(dir.path(), &answer(dir.path(), "a.toml", &text));

    let _one = qemu_lock();
    let mut vm = Machine::new(Firmware::Uefi)
        .memory_mib(1536)
        .cpus(2)
        // AES-NI and PCLMULQDQ: TLS at a few MiB/s with the default CPU model.
        .arg("-cpu")
        .arg("max")
        .cdrom(&iso)
        .disk(&source, Bus::Virtio, "raw")
        .nic("virtio-net-pci", MAC, "")
        .boot_order("d")
        .start();
    wait_ready(&mut vm);
    let agent = wait_agent_within(&mut vm, CONVERT_LIMIT);
    eprintln!("{}", agent.output);
    assert_eq!(agent.status, 0, "the conversion failed:\n{}", agent.output);
    let summary = agent
        .output
        .lines()
        .find(|l| l.starts_with("guest fix-up ("))
        .unwrap_or_else(|| panic!("no guest fix-up summary:\n{}", agent.output));
    let changes: usize = summary
        .split_once("): ")
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(changes > 0, "the fix-up changed nothing: {summary}");
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
    wait_poweroff(&mut vm);
    assert!(
        !vm.console_text().contains(PASSWORD),
        "password on the console"
    );

    // The sim: one VM, tagged, startable, with the fixed-up disk.
    let vms = sim.find("VM", "name_label", NAME);
    assert_eq!(vms.len(), 1, "one VM named {NAME} in the sim");
    let blocked = vms[0].get("blocked_operations");
    assert!(
        blocked.get("start").is_none(),
        "the VM may not start: {blocked}"
    );
    let boot = vms[0].get("HVM_boot_params");
    assert_eq!(boot["firmware"], "uefi", "the VM's firmware: {boot}");
    let vdis = vm_disks(&sim, &vms[0]);
    assert_eq!(vdis.len(), 1, "one disk attached to {NAME}");
    let vdi = sim.vdi_path(vdis[0].str("uuid"));
    {
        let root = LoopMount::new(&vdi, root_volume(&vdi), &dir.path().join("root"), false);
        let fstab = std::fs::read_to_string(root.dir.join("etc/fstab")).unwrap();
        assert!(
            fstab.lines().any(|l| l.trim_start().starts_with("UUID=")),
            "fstab names nothing by UUID:\n{fstab}"
        );
        let log = std::fs::read_to_string(root.dir.join("var/log/xenlift-fixup.log"))
            .expect("the fix-up's log in the guest");
        assert!(!log.trim().is_empty(), "an empty fix-up log");
        let modules =
            std::fs::read_to_string(root.dir.join("etc/initramfs-tools/modules")).unwrap();
        for driver in ["xen-blkfront", "xen-netfront", "ata_piix"] {
            assert!(
                modules.lines().any(|l| l.trim() == driver),
                "{driver} not listed for the initramfs:\n{modules}"
            );
        }
        assert!(
            !fstab.contains("/dev/disk/by-path/"),
            "by-path names left in fstab:\n{fstab}"
        );
        let boot = LoopMount::new(&vdi, partition(&vdi, 2), &dir.path().join("boot"), false);
        let kept = std::fs::read_dir(&boot.dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().ends_with(".xenlift-orig"));
        assert!(kept, "no initramfs was rebuilt (no original kept in /boot)");
        let (esp, _) = partition(&vdi, 1);
        let listing = run(Command::new("mdir")
            .arg("-b")
            .arg("-i")
            .arg(format!("{}@@{esp}", vdi.display()))
            .arg("::/EFI/BOOT"));
        assert!(
            listing.to_uppercase().contains("BOOTX64.EFI"),
            "no UEFI fallback loader on the ESP:\n{listing}"
        );
    }
    assert_eq!(sha256(&source), before, "the source disk was written");
    sim.shutdown();
    eprintln!(
        "converted and fixed up in {:.0}s",
        started.elapsed().as_secs_f64()
    );
}
