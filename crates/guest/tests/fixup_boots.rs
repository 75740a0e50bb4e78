//! End to end: copy a guest image, fix the copy, and boot it on different
//! hardware (IDE or AHCI instead of virtio, e1000 in another slot instead of
//! virtio-net, OVMF with an empty NVRAM for UEFI) to multi-user with its
//! root read-write and its network up under the old interface name. The
//! source image is never changed; every kernel's new initramfs holds the
//! Xen PV drivers (listed by the guest's own tool in a chroot).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Instant;

use common::{assert_up, copy_image, guest_image, target_machine, took, wait_marker, SOURCE_MAC};
use testkit::qemu::{Bus, Firmware};
use testkit::{sh, sha256_file, tempdir};
use xenlift_guest::{fixup, Action, FixupReport, Options, SourceNic, WritableDisk};

fn options() -> Options {
    Options {
        nics: vec![SourceNic {
            mac: SOURCE_MAC.into(),
            name: None,
        }],
        ..Options::default()
    }
}

/// Copies the variant's image, fixes the copy, checks the source is
/// unchanged, and returns the copy's directory, path and the report.
fn fixed_copy(variant: &str) -> (testkit::TempDir, std::path::PathBuf, FixupReport) {
    let source = guest_image(variant);
    let before = sha256_file(&source);
    let dir = tempdir().unwrap();
    let copy = dir.path().join("copy.img");
    copy_image(&source, &copy);
    let t = Instant::now();
    let disk = WritableDisk::from_partition_table(&copy).unwrap();
    let report = fixup(&[disk], &options()).unwrap_or_else(|e| panic!("fix-up of {variant}: {e}"));
    took(&format!("fix-up of {variant}"), t);
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    assert_eq!(sha256_file(&source), before, "the source image changed");
    assert_eq!(report.guests.len(), 1, "{report:#?}");
    (dir, copy, report)
}

fn changed<'a>(report: &'a FixupReport, path: &str) -> &'a xenlift_guest::Change {
    report
        .changes()
        .find(|c| c.path == path)
        .unwrap_or_else(|| panic!("no change to {path} in {report:#?}"))
}

/// Mounts the copy's root (and /boot) with the host's own tools and lists
/// each initramfs with the guest's tool in a chroot.
fn initramfs_listing(copy: &Path, variant: &str) -> String {
    let c = copy.display();
    let script = format!(
        r#"
        img={c}; m=$(mktemp -d); loops=()
        cleanup() {{ for d in dev sys proc boot ""; do umount $m/$d 2>/dev/null || true; done; for l in "${{loops[@]}}"; do losetup -d $l || true; done; rmdir $m || true; }}
        trap cleanup EXIT
        part() {{ sfdisk -J $img | python3 -c "import json,sys; p=json.load(sys.stdin)['partitiontable']['partitions'][$1-1]; print(p['start']*512, p['size']*512)"; }}
        attach() {{ local d; d=$(losetup -f --show -r -o $1 --sizelimit $2 $img); loops+=($d); echo $d; }}
        if [ {variant} = uefi-lvm ]; then
            read off size < <(part 3); pv=$(attach $off $size)
            conf="devices {{ filter=[\"a|^$pv\$|\",\"r|.*|\"] }}"
            pe=$(pvs --config "$conf" --noheadings --nosuffix --units b -o pe_start $pv | tr -d ' ')
            ext=$(vgs --config "$conf" --noheadings --nosuffix --units b -o vg_extent_size vg0 | tr -d ' ')
            r=$(lvs --config "$conf" --noheadings -o seg_pe_ranges vg0/root | tr -d ' '); f=${{r##*:}}; f=${{f%-*}}; l=${{r##*-}}
            mount -o ro,noload $(attach $((off + pe + f * ext)) $(((l - f + 1) * ext))) $m
            read off size < <(part 2); mount -o ro,noload $(attach $off $size) $m/boot
        else
            read off size < <(part 1); mount -o ro,noload $(attach $off $size) $m
        fi
        for d in proc sys dev; do mount --bind /$d $m/$d; done
        for i in $m/boot/initrd.img-*; do
            case $i in *.xenlift-orig) continue;; esac
            echo "== ${{i#$m}}"
            if [ -x $m/usr/bin/lsinitrd ]; then chroot $m lsinitrd ${{i#$m}}; else chroot $m lsinitramfs ${{i#$m}}; fi
        done
        "#
    );
    sh(&script)
}

fn assert_initramfs_has_xen_drivers(listing: &str) {
    let images: Vec<&str> = listing.split("== ").skip(1).collect();
    assert!(!images.is_empty(), "no initramfs listed:\n{listing}");
    for image in images {
        let name = image.lines().next().unwrap_or("");
        for driver in [
            "xen-blkfront.ko",
            "xen-netfront.ko",
            "ata_piix.ko",
            "ahci.ko",
        ] {
            assert!(image.contains(driver), "{name} lacks {driver}");
        }
    }
}

#[test]
fn fixed_bios_mbr_guest_boots_on_ide_and_e1000() {
    let (_dir, copy, report) = fixed_copy("bios-mbr");
    let fstab = changed(&report, "/etc/fstab");
    assert_eq!(fstab.backup.as_deref(), Some("/etc/fstab.xenlift-orig"));
    assert_eq!(fstab.details.len(), 2, "{fstab:?}");
    assert!(changed(&report, "/boot/grub/grub.cfg")
        .details
        .iter()
        .any(|d| d.contains("root=/dev/vda1 -> root=UUID=")));
    assert!(changed(&report, "/etc/default/grub")
        .details
        .iter()
        .any(|d| d.contains("resume=/dev/vda2 -> resume=UUID=")));
    assert_eq!(
        changed(&report, "/etc/udev/rules.d/70-persistent-net.rules").action,
        Action::Disabled
    );
    assert_eq!(
        changed(&report, "/etc/systemd/network/10-xenlift-enp0s5.link").action,
        Action::Created
    );
    assert_eq!(
        changed(&report, "/boot/grub/device.map").action,
        Action::Disabled
    );
    assert_initramfs_has_xen_drivers(&initramfs_listing(&copy, "bios-mbr"));

    let t = Instant::now();
    let mut vm = target_machine(Firmware::Bios, &copy, Bus::Ide).start();
    assert_up(&wait_marker(&mut vm));
    took("fixed bios-mbr on IDE + e1000", t);
}

#[test]
fn fixed_uefi_lvm_guest_boots_on_ahci_with_empty_nvram() {
    let (_dir, copy, report) = fixed_copy("uefi-lvm");
    assert!(
        report
            .changes()
            .any(|c| c.path == "ESP:\\EFI\\BOOT\\BOOTX64.EFI"),
        "{report:#?}"
    );
    assert!(report
        .changes()
        .any(|c| c.path == "ESP:\\EFI\\BOOT\\grubx64.efi"));
    let fstab = changed(&report, "/etc/fstab");
    assert!(
        fstab
            .details
            .iter()
            .any(|d| d.contains("/dev/disk/by-path/pci-0000:00:02.0-part2 -> UUID=")),
        "{fstab:?}"
    );
    assert_initramfs_has_xen_drivers(&initramfs_listing(&copy, "uefi-lvm"));

    let t = Instant::now();
    let mut vm = target_machine(Firmware::Uefi, &copy, Bus::Ahci).start();
    assert_up(&wait_marker(&mut vm));
    took("fixed uefi-lvm on AHCI + e1000, empty NVRAM", t);
}

#[test]
fn fixed_dracut_guest_boots_on_ide_and_e1000() {
    let (_dir, copy, report) = fixed_copy("dracut");
    assert_eq!(
        changed(&report, "/etc/dracut.conf.d/90-xenlift.conf").action,
        Action::Created
    );
    assert!(report
        .changes()
        .any(|c| c.fixup == "initramfs" && c.action == Action::Regenerated));
    assert_initramfs_has_xen_drivers(&initramfs_listing(&copy, "dracut"));

    let t = Instant::now();
    let mut vm = target_machine(Firmware::Bios, &copy, Bus::Ide).start();
    assert_up(&wait_marker(&mut vm));
    took("fixed dracut on IDE + e1000", t);
}
