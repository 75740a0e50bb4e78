//! `xenlift convert --to dir:` with the guest fix-up, on the Debian 12
//! BIOS/MBR guest that crates/guest's tests/guests/build.sh makes (cached):
//! the patched VHD, read back by qemu-img and vhdiinfo and loop-mounted,
//! holds the fix-up; the manifest's hashes are those of the patched image;
//! the source's hash never changes; a failed fix-up leaves the faithful
//! copy and exits non-zero. Needs root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};
use testkit::{guest_image, run, run_stdout, sha256_file, tempdir, Loop, Mount};

/// Runs xenlift with `args`, and `env` set over the test's environment.
fn xenlift(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xenlift"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("running xenlift")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// The disk hash as the README defines it, over a raw image.
fn disk_hash(raw: &Path) -> String {
    let data = std::fs::read(raw).unwrap();
    let mut outer = Sha256::new();
    for block in data.chunks(2 << 20) {
        outer.update(Sha256::digest(block));
    }
    hex::encode(outer.finalize())
}

/// The first partition's offset and size, from the table.
fn root_partition(raw: &Path) -> (u64, u64) {
    let json: serde_json::Value =
        serde_json::from_str(&run_stdout("sfdisk", &["--json", s(raw)])).unwrap();
    let p = &json["partitiontable"]["partitions"][0];
    (
        p["start"].as_u64().unwrap() * 512,
        p["size"].as_u64().unwrap() * 512,
    )
}

fn to_raw(vhd: &Path, raw: &Path) {
    let info = run_stdout("vhdiinfo", &[s(vhd)]);
    assert!(info.contains("Dynamic"), "vhdiinfo: {info}");
    run(
        "qemu-img",
        &["convert", "-f", "vpc", "-O", "raw", s(vhd), s(raw)],
    );
}

fn identical(a: &Path, fa: &str, b: &Path, fb: &str) -> bool {
    Command::new("qemu-img")
        .args(["compare", "-q", "-f", fa, "-F", fb, s(a), s(b)])
        .status()
        .unwrap()
        .code()
        == Some(0)
}

#[test]
fn convert_to_dir_delivers_the_fixup_and_never_writes_the_source() {
    let image = guest_image("bios-mbr");
    let before = sha256_file(&image);
    let tmp = tempdir().unwrap();

    // Faithful copy, on request.
    let plain = tmp.path().join("plain");
    let out = xenlift(
        &[
            "convert",
            "--no-fixup",
            "--to",
            &format!("dir:{}", s(&plain)),
            s(&image),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(manifest(&plain)["fixup"]["status"], "skipped");

    // A fix-up that cannot run (no losetup on the PATH): non-zero exit, a
    // clear message, the faithful copy intact, the manifest says so.
    let failed = tmp.path().join("failed");
    let out = xenlift(
        &["convert", "--to", &format!("dir:{}", s(&failed)), s(&image)],
        &[("PATH", "/nonexistent")],
    );
    assert!(!out.status.success(), "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains("fix-up failed") && msg.contains("faithful"),
        "{msg}"
    );
    assert_eq!(manifest(&failed)["fixup"]["status"], "failed");
    assert!(identical(
        &plain.join("disk0.vhd"),
        "vpc",
        &failed.join("disk0.vhd"),
        "vpc"
    ));

    // The fix-up's changes go to a scratch file under TMPDIR; one that
    // cannot be made is named, with the way out.
    let no_scratch = tmp.path().join("no-scratch");
    let out = xenlift(
        &[
            "convert",
            "--to",
            &format!("dir:{}", s(&no_scratch)),
            s(&image),
        ],
        &[("TMPDIR", "/nonexistent-scratch")],
    );
    let msg = text(&out);
    assert!(!out.status.success(), "{msg}");
    assert!(
        msg.contains("/nonexistent-scratch") && msg.contains("set TMPDIR"),
        "{msg}"
    );
    assert_eq!(manifest(&no_scratch)["fixup"]["status"], "failed");

    // With the fix-up.
    let fixed = tmp.path().join("fixed");
    let out = xenlift(
        &["convert", "--to", &format!("dir:{}", s(&fixed)), s(&image)],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("guest fix-up"), "{}", text(&out));
    assert_eq!(sha256_file(&image), before, "the source changed");

    let m = manifest(&fixed);
    assert_eq!(m["fixup"]["status"], "done", "{:#}", m["fixup"]);
    let changes = m["fixup"]["guests"][0]["changes"].as_array().unwrap();
    assert!(
        changes.iter().any(|c| c["path"] == "/etc/fstab"),
        "{changes:#?}"
    );
    let disk = &m["disks"][0];
    assert!(disk["fixup"]["changed_bytes"].as_u64().unwrap() > 0);
    assert!(!identical(
        &plain.join("disk0.vhd"),
        "vpc",
        &fixed.join("disk0.vhd"),
        "vpc"
    ));

    let raw = tmp.path().join("fixed.raw");
    to_raw(&fixed.join("disk0.vhd"), &raw);
    assert_eq!(
        disk["disk_sha256"].as_str().unwrap(),
        disk_hash(&raw),
        "manifest hash of the patched image"
    );
    assert_eq!(
        disk["stream_bytes"].as_u64().unwrap(),
        std::fs::metadata(fixed.join("disk0.vhd")).unwrap().len()
    );

    let (offset, size) = root_partition(&raw);
    let lo = Loop::attach(&raw, offset, Some(size), true);
    {
        let m = Mount::new(lo.path(), Some("ext4"), "ro,noload");
        let root = m.path();
        let fstab = std::fs::read_to_string(root.join("etc/fstab")).unwrap();
        assert!(fstab.contains("UUID="), "{fstab}");
        assert!(
            !fstab
                .lines()
                .any(|l| l.trim_start().starts_with("/dev/vda")),
            "{fstab}"
        );
        assert!(root.join("etc/fstab.xenlift-orig").exists());
        let log = std::fs::read_to_string(root.join("var/log/xenlift-fixup.log")).unwrap();
        assert!(log.contains("xenlift"), "{log}");
        let initrds: Vec<PathBuf> = std::fs::read_dir(root.join("boot"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy().into_owned();
                n.starts_with("initrd.img-") && !n.ends_with(".xenlift-orig")
            })
            .collect();
        assert!(!initrds.is_empty());
        // The guest's own lister (the host need not have one), in a chroot.
        let mut binds = Vec::new();
        for d in ["proc", "sys", "dev"] {
            run("mount", &["--bind", &format!("/{d}"), s(&root.join(d))]);
            binds.push(root.join(d));
        }
        let listings: Vec<(PathBuf, std::process::Output)> = initrds
            .iter()
            .map(|i| {
                let inside = Path::new("/").join(i.strip_prefix(root).unwrap());
                let out = Command::new("chroot")
                    .arg(root)
                    .arg("lsinitramfs")
                    .arg(inside)
                    .output()
                    .unwrap();
                (i.clone(), out)
            })
            .collect();
        for b in binds.iter().rev() {
            run("umount", &[s(b)]);
        }
        for (initrd, out) in listings {
            assert!(
                out.status.success(),
                "lsinitramfs {}: {}",
                initrd.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            let list = String::from_utf8_lossy(&out.stdout);
            assert!(
                list.contains("xen-blkfront"),
                "{} lacks xen-blkfront",
                initrd.display()
            );
            assert!(
                list.contains("xen-netfront"),
                "{} lacks xen-netfront",
                initrd.display()
            );
        }
    }
    drop(lo);

    // `xenlift fixup` alone, against the same target.
    let out = xenlift(
        &["fixup", "--to", &format!("dir:{}", s(&fixed)), s(&image)],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(manifest(&fixed)["fixup"]["status"], "done");
    let raw2 = tmp.path().join("again.raw");
    to_raw(&fixed.join("disk0.vhd"), &raw2);
    assert_eq!(
        manifest(&fixed)["disks"][0]["disk_sha256"]
            .as_str()
            .unwrap(),
        disk_hash(&raw2)
    );
    assert_eq!(sha256_file(&image), before, "the source changed");
}

#[test]
fn fixup_refuses_a_directory_without_manifest() {
    let tmp = tempdir().unwrap();
    let img = tmp.path().join("d.img");
    testkit::sparse_image(&img, 4 << 20);
    let out = xenlift(
        &["fixup", "--to", &format!("dir:{}", s(tmp.path())), s(&img)],
        &[],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("manifest.json"), "{}", text(&out));
}
