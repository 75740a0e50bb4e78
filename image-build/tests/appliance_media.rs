//! The built media, read by independent tools: El Torito boot images for
//! BIOS and UEFI, the ESP as a GPT partition, the embed area, and
//! reproducibility (a fresh build of the same inputs gives the same bytes).

mod support;

use std::process::Command;

use sha2::{Digest, Sha256};
use support::*;

fn sha(path: &std::path::Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn iso_has_bios_and_uefi_boot_images_and_an_esp_partition() {
    let iso = appliance().join("xenlift.iso");
    let report = run(Command::new("xorriso").args(["-indev"]).arg(&iso).args([
        "-report_el_torito",
        "plain",
        "-report_system_area",
        "plain",
    ]));
    assert!(
        report.contains("El Torito boot img :   1  BIOS"),
        "{report}"
    );
    assert!(
        report.contains("El Torito boot img :   2  UEFI"),
        "{report}"
    );
    assert!(
        report.contains("GPT type GUID      :   2  28732ac11ff8d211ba4b00a0c93ec93b"),
        "{report}"
    );
    let id = run(Command::new("xorriso")
        .args(["-indev"])
        .arg(&iso)
        .args(["-pvd_info"]));
    assert!(id.contains("Volume Id    : XENLIFT"), "{id}");
}

#[test]
fn answer_file_is_embedded_in_place_and_shown_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let a = answer(
        dir.path(),
        "a.toml",
        // Interactive: checked as TOML only (no command takes --password yet).
        "run = \"interactive\"\nto = \"dir:/tmp/x\"\npassword = \"hunter2\"\npost = \"reboot\"\n",
    );
    let original = appliance().join("xenlift.iso");
    let iso = customized_iso(dir.path(), &a);
    let (before, after) = (
        std::fs::read(&original).unwrap(),
        std::fs::read(&iso).unwrap(),
    );
    assert_eq!(
        before.len(),
        after.len(),
        "customize must not resize the ISO"
    );
    let changed: Vec<usize> = (0..before.len())
        .filter(|&i| before[i] != after[i])
        .collect();
    assert!(changed.len() < 4096, "{} bytes changed", changed.len());
    let shown = run(Command::new(xenlift()).args(["iso", "show"]).arg(&iso));
    assert!(
        shown.contains("to = dir:/tmp/x") && shown.contains("post = reboot"),
        "{shown}"
    );
    assert!(!shown.contains("hunter2"), "{shown}");
    // The ISO9660 tree still reads, and the file holding the area has the answer.
    let extract = dir.path().join("area");
    run(Command::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(&iso)
        .args(["-extract", "/xenlift/answer.area"])
        .arg(&extract));
    let area = std::fs::read(&extract).unwrap();
    assert!(area.windows(7).any(|w| w == b"hunter2"));
    // A typo is refused before anything is written.
    let bad = answer(dir.path(), "bad.toml", "run = \"inspect\"\njsn = true\n");
    let out = Command::new(xenlift())
        .args(["iso", "customize", "--answer"])
        .arg(&bad)
        .arg(&iso)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not fit `xenlift inspect`"));
    assert_eq!(std::fs::read(&iso).unwrap(), after);
}

/// A second, fresh build (nothing reused but downloads and unpacked
/// packages) gives byte-identical media.
#[test]
fn builds_are_reproducible() {
    let first = appliance();
    let dir = tempfile::tempdir().unwrap();
    build_into(dir.path(), true);
    for f in [
        "xenlift.iso",
        "pxe/initrd.img",
        "pxe/vmlinuz",
        "pxe/grub/grub.cfg",
        "pxe/boot.ipxe",
    ] {
        assert_eq!(
            sha(&first.join(f)),
            sha(&dir.path().join(f)),
            "{f} differs between builds"
        );
    }
}
