//! The built initramfs, read back from its archive by the host's own tools
//! (zstd, cpio, readelf, chroot), not by image-build: every dynamic ELF in it
//! finds its interpreter and each DT_NEEDED library, and the guest fix-up's
//! programs run from the unpacked archive alone.

// Test fixtures: a failed step is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::*;

/// The programs crates/guest runs (`cmd::run`/`cmd::output`).
const FIXUP_TOOLS: [&str; 11] = [
    "losetup", "mount", "umount", "blkid", "sfdisk", "e2fsck", "mdir", "mcopy", "mmd", "chroot",
    "sync",
];
const PATH: [&str; 4] = ["bin", "sbin", "usr/bin", "usr/sbin"];

/// The initramfs unpacked into `dir` by cpio.
fn unpack(dir: &Path) {
    let zst = std::fs::read(appliance().join("pxe/initrd.img")).unwrap();
    // One zstd frame, then zero padding.
    let mut cpio = Vec::new();
    zstd::stream::read::Decoder::new(&zst[..])
        .unwrap()
        .single_frame()
        .read_to_end(&mut cpio)
        .unwrap();
    let mut child = Command::new("cpio")
        .args(["-id", "--quiet", "--no-absolute-filenames"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .spawn()
        .expect("cpio (run ci/setup)");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &cpio).unwrap();
    assert!(child.wait().unwrap().success(), "cpio failed");
}

/// `rel` inside `root`, links followed as if `root` were `/`.
fn inside(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut p = root.join(rel.trim_start_matches('/'));
    for _ in 0..10 {
        match std::fs::read_link(&p) {
            Ok(t) if t.is_absolute() => p = root.join(t.strip_prefix("/").unwrap()),
            Ok(t) => p = p.parent().unwrap().join(t),
            Err(_) => return p.is_file().then_some(p),
        }
    }
    None
}

/// Regular ELF files under `dir`, kernel modules and firmware aside.
fn elf_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if rel.starts_with("lib/modules") || rel.starts_with("lib/firmware") {
            continue;
        }
        let t = e.file_type().unwrap();
        if t.is_dir() {
            elf_files(root, &p, out);
        } else if t.is_file() {
            let mut magic = [0u8; 4];
            let n = std::fs::File::open(&p).unwrap().read(&mut magic).unwrap();
            if n == 4 && &magic == b"\x7fELF" {
                out.push(p);
            }
        }
    }
}

/// (interpreter, NEEDED libraries) as readelf shows them.
fn readelf(file: &Path) -> (Option<String>, Vec<String>) {
    let text = run(Command::new("readelf").args(["-l", "-d", "-W"]).arg(file));
    let between = |l: &str, a: &str, b: char| {
        l.split_once(a)
            .and_then(|(_, r)| r.split_once(b))
            .map(|(v, _)| v.to_string())
    };
    let interp = text
        .lines()
        .find_map(|l| between(l, "Requesting program interpreter: ", ']'));
    let needed = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| between(l, "Shared library: [", ']'))
        .collect();
    (interp, needed)
}

#[test]
fn every_dynamic_program_finds_its_libraries_and_the_fixup_tools_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    unpack(root);

    let mut files = Vec::new();
    elf_files(root, root, &mut files);
    let mut missing = BTreeSet::new();
    let mut dynamic = 0;
    for f in &files {
        let (interp, needed) = readelf(f);
        let rel = f.strip_prefix(root).unwrap().display().to_string();
        if let Some(i) = &interp {
            dynamic += 1;
            if inside(root, i).is_none() {
                missing.insert(format!("{rel}: interpreter {i}"));
            }
        }
        for lib in needed {
            // The interpreter's default path; there is no ld.so.cache.
            if inside(root, &format!("lib/x86_64-linux-gnu/{lib}")).is_none() {
                missing.insert(format!("{rel}: {lib}"));
            }
        }
    }
    assert!(missing.is_empty(), "missing in the initramfs: {missing:#?}");
    assert!(dynamic >= 7, "only {dynamic} dynamic programs: {files:?}");

    for tool in FIXUP_TOOLS {
        assert!(
            PATH.iter()
                .any(|d| inside(root, &format!("{d}/{tool}")).is_some()),
            "{tool} is not on the appliance's PATH"
        );
    }

    // The appliance's /dev is a devtmpfs; e2fsck wants /dev/null.
    run(Command::new("mknod")
        .arg(root.join("dev/null"))
        .args(["c", "1", "3"]));
    // They run with only the initramfs's files (the host's libraries are
    // out of reach in the chroot).
    let in_root = |args: &[&str]| {
        let out = Command::new("chroot")
            .arg(root)
            .args(args)
            .env("PATH", "/bin:/sbin:/usr/bin:/usr/sbin")
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{args:?} in the initramfs: {text}");
        text
    };
    for (args, want) in [
        (&["losetup", "--version"][..], "util-linux"),
        (&["mount", "--version"], "libmount"),
        (&["umount", "--version"], "util-linux"),
        (&["blkid", "--version"], "libblkid"),
        (&["sfdisk", "--version"], "util-linux"),
        (&["e2fsck", "-V"], "EXT2FS Library"),
        (&["mtools", "--version"], "mtools"),
    ] {
        let text = in_root(args);
        assert!(text.contains(want), "{args:?}: {text}");
    }
    // Real work: a partition table read as JSON, a file system identified
    // and checked, inside the unpacked initramfs.
    sample_disk(root);
    let json = in_root(&["sfdisk", "--json", "/disk.img"]);
    assert!(json.contains("\"start\": 2048"), "{json}");
    run(Command::new("sh").arg("-c").arg(format!(
        "dd if={0}/disk.img of={0}/part.img bs=1M skip=1 status=none",
        root.display()
    )));
    let blkid = in_root(&["blkid", "-p", "/part.img"]);
    assert!(blkid.contains("TYPE=\"ext4\""), "{blkid}");
    in_root(&["e2fsck", "-n", "/part.img"]);

    // An ESP made by the host's dosfstools and mtools, read and written by
    // the initramfs's mtools as the UEFI fallback fix-up does.
    let esp = root.join("esp.img");
    run(Command::new("mkfs.vfat").arg("-C").arg(&esp).arg("8192"));
    let image = esp.display().to_string();
    run(Command::new("mmd").args(["-i", &image, "::/EFI", "::/EFI/debian"]));
    std::fs::write(root.join("loader"), b"not really shim").unwrap();
    run(Command::new("mcopy")
        .args(["-i", &image])
        .arg(root.join("loader"))
        .arg("::/EFI/debian/shimx64.efi"));
    let listing = in_root(&["mdir", "-b", "-i", "/esp.img", "::/EFI/debian"]);
    assert!(
        listing.to_lowercase().contains("::/efi/debian/shimx64.efi"),
        "{listing}"
    );
    in_root(&["mmd", "-i", "/esp.img", "::/EFI/BOOT"]);
    // Out to the appliance's files and back in, as the fix-up copies.
    for (from, to) in [
        ("::/EFI/debian/shimx64.efi", "/copied"),
        ("/copied", "::/EFI/BOOT/BOOTX64.EFI"),
    ] {
        in_root(&["mcopy", "-n", "-o", "-i", "/esp.img", from, to]);
    }
    let back = run(Command::new("mtype").args(["-i", &image, "::/EFI/BOOT/BOOTX64.EFI"]));
    assert_eq!(back, "not really shim", "the copy on the ESP");
}
