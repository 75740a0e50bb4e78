//! The fix-up on a small disk made with the real tools (no boot): an MBR
//! disk with an ext4 root left dirty, swap, and an LVM PV holding an LV,
//! with configuration files in the styles real installs have. Checks every
//! rewrite on disk, the backups, the guest log, the report, the journal
//! replay, read-only inspection, and that a second run changes nothing more.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use testkit::{sh, sha256_file, tempdir, Loop, Mount, TempDir};
use xenlift_guest::{
    fixup, inspect, Action, Error, FsState, Location, Options, SourceNic, WritableDisk,
};

const ROOT_UUID: &str = "2f1e6c2a-9d1b-4f44-8a41-0c3b5e8d7a10";
const DATA_UUID: &str = "7c0a3b9e-5e54-4d0e-9d1f-3a2b1c0d9e8f";
const SWAP_UUID: &str = "0b7e4f55-1c4d-4a21-b6f3-5d2e9a8c7b61";
const OLD_MAC: &str = "00:25:90:aa:bb:01";

struct Fixture {
    _dir: TempDir,
    image: PathBuf,
}

/// Builds the disk: p1 ext4 root (dirty), p2 swap, p3 LVM PV with vg1/data (ext4).
fn build() -> Fixture {
    let dir = tempdir().unwrap();
    let image = dir.path().join("disk.img");
    let tree = dir.path().join("tree");
    write_tree(&tree);
    sh(&format!(
        r#"
        img={img}; tree={tree}
        truncate -s 160M $img
        printf 'label: dos\n,64MiB,L,*\n,16MiB,S\n,,8e\n' | sfdisk -q $img
        part() {{ sfdisk -J $img | python3 -c "import json,sys; p=json.load(sys.stdin)['partitiontable']['partitions'][$1-1]; print(p['start']*512, p['size']*512)"; }}
        read off size < <(part 1); d=$(losetup -f --show -o $off --sizelimit $size $img)
        mkfs.ext4 -q -U {ROOT_UUID} -d $tree $d
        # An unclean shutdown: the journal needs recovery.
        debugfs -w -R 'feature needs_recovery' $d >/dev/null 2>&1
        losetup -d $d
        read off size < <(part 2); d=$(losetup -f --show -o $off --sizelimit $size $img); mkswap -q -U {SWAP_UUID} $d; losetup -d $d
        read off size < <(part 3); pv=$(losetup -f --show -o $off --sizelimit $size $img)
        conf="devices {{ filter=[\"a|^$pv\$|\",\"r|.*|\"] }}"
        pvcreate -q --config "$conf" $pv; vgcreate -q --config "$conf" vg1 $pv
        lvcreate -q --config "$conf" --driverloaded n -an -Zn -L 8M -n pad vg1 2>/dev/null
        lvcreate -q --config "$conf" --driverloaded n -an -Zn -L 40M -n data vg1 2>/dev/null
        pe=$(pvs --config "$conf" --noheadings --nosuffix --units b -o pe_start $pv | tr -d ' ')
        ext=$(vgs --config "$conf" --noheadings --nosuffix --units b -o vg_extent_size vg1 | tr -d ' ')
        r=$(lvs --config "$conf" --noheadings -o seg_pe_ranges vg1/data | tr -d ' '); f=${{r##*:}}; f=${{f%-*}}; l=${{r##*-}}
        losetup -d $pv
        d=$(losetup -f --show -o $((off + pe + f * ext)) --sizelimit $(((l - f + 1) * ext)) $img); mkfs.ext4 -q -U {DATA_UUID} $d; losetup -d $d
        "#,
        img = image.display(),
        tree = tree.display(),
    ));
    Fixture { _dir: dir, image }
}

fn write_tree(root: &Path) {
    let files: &[(&str, &str)] = &[
        ("etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 11 (bullseye)\"\nID=debian\nVERSION_ID=\"11\"\n"),
        (
            "etc/fstab",
            "# <file system> <mount point>   <type>  <options>       <dump>  <pass>\n/dev/sda1\t/\text4\terrors=remount-ro\t0\t1\n/dev/sda2 none swap sw 0 0\n/dev/mapper/vg1-data /data ext4 defaults,nofail 0 2\nLABEL=usbdisk /media/usb ext4 noauto,nofail 0 0\n/data/www /var/www none bind 0 0\ntmpfs /tmp tmpfs nosuid,nodev 0 0\n",
        ),
        ("etc/crypttab", "# <target> <source> <key> <options>\nswap_crypt /dev/sda2 /dev/urandom swap,cipher=aes-xts-plain64\n"),
        ("etc/default/grub", "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet resume=/dev/sda2\"\nGRUB_CMDLINE_LINUX=\"\"\n"),
        (
            "boot/grub/grub.cfg",
            "menuentry 'Debian' {\n\tset root='hd0,msdos1'\n\tlinux\t/boot/vmlinuz-5.10.0-28-amd64 root=/dev/sda1 ro quiet resume=/dev/sda2\n\tinitrd\t/boot/initrd.img-5.10.0-28-amd64\n}\n",
        ),
        ("boot/grub/device.map", "(hd0)\t/dev/sda\n"),
        ("etc/initramfs-tools/conf.d/resume", "RESUME=/dev/sda2\n"),
        ("etc/lvm/lvm.conf", "devices {\n\tfilter = [ \"a|^/dev/sda3$|\", \"r|.*|\" ]\n}\n"),
        ("etc/lvm/devices/system.devices", "VERSION=1.1.1\nIDTYPE=devname IDNAME=/dev/sda3 DEVNAME=/dev/sda3 PVID=x\n"),
        ("etc/network/interfaces", "auto lo\niface lo inet loopback\n\nallow-hotplug eth0\niface eth0 inet dhcp\n"),
        (
            "etc/udev/rules.d/70-persistent-net.rules",
            "SUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"?*\", ATTR{address}==\"00:25:90:aa:bb:01\", ATTR{dev_id}==\"0x0\", ATTR{type}==\"1\", KERNEL==\"eth*\", NAME=\"eth0\"\n",
        ),
        ("usr/bin/vmtoolsd", ""),
        ("usr/lib/systemd/systemd-udevd", ""),
        ("usr/lib/systemd/libsystemd-shared-247.so", ""),
        ("var/log/.keep", ""),
        ("data/.keep", ""),
    ];
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
    let wants = root.join("etc/systemd/system/multi-user.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    std::os::unix::fs::symlink(
        "/lib/systemd/system/open-vm-tools.service",
        wants.join("open-vm-tools.service"),
    )
    .unwrap();
    std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
}

fn disk(f: &Fixture) -> WritableDisk {
    WritableDisk::from_partition_table(&f.image).unwrap()
}

fn options() -> Options {
    Options {
        nics: vec![
            SourceNic {
                mac: OLD_MAC.to_uppercase(),
                name: None,
            },
            SourceNic {
                mac: "00:25:90:aa:bb:02".into(),
                name: None,
            },
        ],
        disable_foreign_tools: true,
        replay_dirty_journals: true,
    }
}

/// Reads a file of the root filesystem with the host's own mount.
fn read_root(f: &Fixture, path: &str) -> Option<String> {
    let d = disk(f);
    let p = &d.partitions[0];
    let l = Loop::attach(&f.image, p.offset, Some(p.size), true);
    let m = Mount::new(l.path(), Some("ext4"), "ro");
    std::fs::read_to_string(m.path().join(path)).ok()
}

#[test]
fn inspection_changes_nothing_and_finds_the_guest() {
    let f = build();
    let before = sha256_file(&f.image);
    let found = inspect(&[disk(&f)]).unwrap();
    let (volumes, guests) = (&found.volumes, &found.guests);
    assert_eq!(
        sha256_file(&f.image),
        before,
        "inspection wrote to the disk"
    );
    assert_eq!(guests.len(), 1);
    assert_eq!(guests[0].os.id, "debian");
    assert_eq!(guests[0].root, Location::Partition { disk: 0, number: 1 });
    let root = volumes
        .iter()
        .find(|v| v.probe.uuid.as_deref() == Some(ROOT_UUID))
        .unwrap();
    assert_eq!(root.state, FsState::Dirty);
    // The LV is reached through the PV's metadata, past the "pad" LV.
    let data = volumes
        .iter()
        .find(|v| v.probe.uuid.as_deref() == Some(DATA_UUID))
        .expect("LV vg1/data found");
    assert!(
        matches!(&data.location, Location::LogicalVolume { vg, lv, .. } if vg == "vg1" && lv == "data")
    );
    assert_eq!(data.size, 40 << 20);
    assert_eq!(guests[0].foreign_tools, ["VMware Tools (open-vm-tools)"]);
}

#[test]
fn a_dirty_root_is_refused_when_replay_is_not_allowed() {
    let f = build();
    let before = sha256_file(&f.image);
    let options = Options {
        replay_dirty_journals: false,
        ..options()
    };
    match fixup(&[disk(&f)], &options) {
        Err(Error::Dirty { .. }) => {}
        other => panic!("expected a dirty-filesystem error, got {other:?}"),
    }
    assert_eq!(sha256_file(&f.image), before);
}

#[test]
fn fixup_rewrites_configuration_keeps_originals_and_logs() {
    let f = build();
    let report = fixup(&[disk(&f)], &options()).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    let root = report
        .volumes
        .iter()
        .find(|v| v.probe.uuid.as_deref() == Some(ROOT_UUID))
        .unwrap();
    assert_eq!(root.state, FsState::Replayed);

    let fstab = read_root(&f, "etc/fstab").unwrap();
    assert_eq!(
        fstab,
        format!("# <file system> <mount point>   <type>  <options>       <dump>  <pass>\nUUID={ROOT_UUID}\t/\text4\terrors=remount-ro\t0\t1\nUUID={SWAP_UUID} none swap sw 0 0\n/dev/mapper/vg1-data /data ext4 defaults,nofail 0 2\nLABEL=usbdisk /media/usb ext4 noauto,nofail 0 0\n/data/www /var/www none bind 0 0\ntmpfs /tmp tmpfs nosuid,nodev 0 0\n")
    );
    assert!(read_root(&f, "etc/fstab.xenlift-orig")
        .unwrap()
        .contains("/dev/sda1\t/"));
    // Random-key swap has no header: its partition has a PARTUUID (MBR signature + number).
    let crypttab = read_root(&f, "etc/crypttab").unwrap();
    assert!(
        crypttab.contains("swap_crypt PARTUUID=") && crypttab.contains("-02 /dev/urandom swap,"),
        "{crypttab}"
    );
    let grub_cfg = read_root(&f, "boot/grub/grub.cfg").unwrap();
    assert!(
        grub_cfg.contains(&format!(
            "root=UUID={ROOT_UUID} ro quiet resume=UUID={SWAP_UUID}\n"
        )),
        "{grub_cfg}"
    );
    assert!(grub_cfg.contains("set root='hd0,msdos1'"));
    assert!(read_root(&f, "etc/default/grub")
        .unwrap()
        .contains(&format!("\"quiet resume=UUID={SWAP_UUID}\"")));
    assert_eq!(
        read_root(&f, "etc/initramfs-tools/conf.d/resume").unwrap(),
        format!("RESUME=UUID={SWAP_UUID}\n")
    );
    assert!(read_root(&f, "boot/grub/device.map").is_none());
    assert!(read_root(&f, "boot/grub/device.map.xenlift-orig").is_some());
    assert!(read_root(&f, "etc/lvm/devices/system.devices").is_none());
    assert!(read_root(&f, "etc/lvm/lvm.conf")
        .unwrap()
        .contains("\"a|^/dev/xvd.*|\", \"a|^/dev/sd.*|\", \"a|^/dev/hd.*|\", \"r|.*|\""));
    // eth0's persistent-net rule names a source NIC's MAC: that is the evidence.
    let link = read_root(&f, "etc/systemd/network/10-xenlift-eth0.link").unwrap();
    assert!(
        link.contains(&format!("PermanentMACAddress={OLD_MAC}\n")) && link.contains("Name=eth0\n"),
        "{link}"
    );
    assert!(read_root(&f, "etc/udev/rules.d/70-persistent-net.rules").is_none());
    assert!(read_root(
        &f,
        "etc/systemd/system/multi-user.target.wants/open-vm-tools.service"
    )
    .is_none());

    let log = read_root(&f, "var/log/xenlift-fixup.log").unwrap();
    assert!(
        log.contains("fstab Edited /etc/fstab (original: /etc/fstab.xenlift-orig)"),
        "{log}"
    );
    assert!(
        log.contains("initramfs not done: no initramfs tool"),
        "{log}"
    );

    let guest = &report.guests[0];
    let skipped = |fixup: &str| guest.skipped.iter().any(|s| s.fixup == fixup);
    assert!(
        skipped("uefi-fallback") && skipped("initramfs"),
        "{:#?}",
        guest.skipped
    );
    assert!(guest
        .changes
        .iter()
        .any(|c| c.action == Action::Removed && c.fixup == "foreign-tools"));

    // A second run finds nothing left to rewrite and keeps the first originals.
    let again = fixup(&[disk(&f)], &options()).unwrap();
    assert!(
        !again
            .changes()
            .any(|c| c.path == "/etc/fstab" || c.path == "/boot/grub/grub.cfg"),
        "{again:#?}"
    );
    assert!(read_root(&f, "etc/fstab.xenlift-orig")
        .unwrap()
        .contains("/dev/sda1\t/"));
}

#[test]
fn a_disk_without_linux_is_an_error_and_stays_unchanged() {
    let dir = tempdir().unwrap();
    let image = dir.path().join("empty.img");
    sh(&format!(
        "truncate -s 40M {0}; printf 'label: dos\\n,,L\\n' | sfdisk -q {0}; d=$(losetup -f --show -o 1048576 {0}); mkfs.ext4 -q $d; losetup -d $d",
        image.display()
    ));
    let before = sha256_file(&image);
    let err = fixup(
        &[WritableDisk::from_partition_table(&image).unwrap()],
        &Options::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::NoRoot { looked_at: 1 }), "{err}");
    assert!(err.to_string().contains("left unchanged"));
    assert_eq!(sha256_file(&image), before);
}
