//! Wrong settings give a clear message on the console and the configured
//! end, never a hang or a panic. Direct kernel boots of the PXE kernel and
//! initrd keep these quick.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::*;
use testkit::qemu::{Bus, Firmware, Machine};

fn boot(initrd: &Path, append: &str, disk: Option<&Path>) -> String {
    let _one = qemu_lock();
    let pxe = appliance().join("pxe");
    let mut m = Machine::new(Firmware::Bios)
        .kernel(
            &pxe.join("vmlinuz"),
            initrd,
            &format!("console=ttyS0,115200n8 quiet xenlift.post=poweroff {append}"),
        )
        .nic("virtio-net-pci", MAC, "");
    if let Some(d) = disk {
        m = m.disk(d, Bus::Virtio, "raw");
    }
    let mut vm = m.start();
    wait_poweroff(&mut vm);
    let text = vm.console_text().replace('\r', "");
    assert!(!text.contains("panic"), "a panic on the console:\n{text}");
    text
}

fn assert_says(text: &str, needle: &str) {
    assert!(
        text.contains(needle),
        "the console does not say {needle:?}:\n{text}"
    );
}

#[test]
fn unreachable_config_url() {
    let pxe = appliance().join("pxe");
    // Port 9 on the host: nothing listens there.
    let text = boot(
        &pxe.join("initrd.img"),
        "xenlift.config=http://10.0.2.2:9/${mac}.toml",
        None,
    );
    assert_says(
        &text,
        &format!("fetching the answer file from http://10.0.2.2:9/{MAC}.toml failed after 4 tries"),
    );
    assert_says(&text, "xenlift-init: agent exited with status 1");
}

#[test]
fn malformed_answer_file() {
    let server = HttpServer::start(BTreeMap::from([(
        "/bad.toml".to_string(),
        "run = \"inspect\"\njson = tru\n".to_string(),
    )]));
    let pxe = appliance().join("pxe");
    let text = boot(
        &pxe.join("initrd.img"),
        &format!("xenlift.config=http://10.0.2.2:{}/bad.toml", server.port),
        None,
    );
    assert_says(&text, "answer file is not valid TOML");
    assert_says(&text, "xenlift-init: agent exited with status 1");
}

/// No disk at all, configured through an answer file put into the initrd
/// by `xenlift pxe customize`.
#[test]
fn no_disks() {
    let dir = tempfile::tempdir().unwrap();
    let a = answer(dir.path(), "a.toml", "run = \"inspect\"\njson = true\n");
    let initrd = dir.path().join("initrd.img");
    run(Command::new(xenlift())
        .args(["pxe", "customize", "--answer"])
        .arg(&a)
        .arg("-o")
        .arg(&initrd)
        .arg(appliance().join("pxe/initrd.img")));
    let text = boot(&initrd, "ip=off", None);
    assert_says(&text, "answer file in the initrd");
    assert_says(&text, "disks: none");
    assert_says(&text, "no disks found on this machine");
    assert_says(&text, "xenlift-init: agent exited with status 1");
    let _ = Duration::ZERO;
}

/// Nothing configured and no disk: the interactive setup says there is
/// nothing to convert before asking anything, and the configured end follows.
#[test]
fn interactive_without_disks() {
    let pxe = appliance().join("pxe");
    let text = boot(&pxe.join("initrd.img"), "ip=off", None);
    assert_says(&text, "interactive setup on /dev/ttyS0");
    assert_says(&text, "no disks found on this machine");
    assert!(
        !text.contains("Target XenServer"),
        "asked for a target with nothing to convert:\n{text}"
    );
    assert_says(&text, "xenlift-init: agent exited with status 1");
}

/// The screen is /dev/console here (the last `console=`) and the operator
/// sits at the serial line: the dialog takes answers from every console.
#[test]
fn interactive_answers_come_from_the_serial_line_when_the_screen_is_dev_console() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sample_disk(dir.path());
    let pxe = appliance().join("pxe");
    let _one = qemu_lock();
    let mut vm = Machine::new(Firmware::Bios)
        .kernel(
            &pxe.join("vmlinuz"),
            &pxe.join("initrd.img"),
            "console=ttyS0,115200n8 console=tty0 quiet ip=off",
        )
        .disk(&disk, Bus::Virtio, "raw")
        .start();
    let shown = vm
        .wait_for("Target XenServer / XCP-ng host", BOOT_LIMIT)
        .unwrap_or_else(|e| panic!("{e}"));
    let shown = shown.replace('\r', "");
    assert_says(&shown, "interactive setup on ");
    assert_says(&shown, "/dev/tty0");
    assert_says(&shown, "/dev/ttyS0");
    vm.send("no such host\n");
    vm.wait_for("\"no such host\" is not a host address", RUN_LIMIT)
        .unwrap_or_else(|e| panic!("the answer on the serial line was not read: {e}"));
}
