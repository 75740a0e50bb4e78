//! Shared by the appliance's end-to-end tests: the built appliance (built
//! once per test binary, cached by image-build across runs), fixture disks
//! made by the real tools, a small HTTP server for answer files, and the
//! seam to run "the appliance with a configuration" and read what it did.

#![allow(dead_code)]
// Test fixtures: a failed step is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use testkit::qemu::Running;

pub const MAC: &str = "52:54:00:12:34:56";
/// Limits that only guard against hangs (TCG is slow, CI shares 2 cores).
pub const BOOT_LIMIT: Duration = Duration::from_secs(600);
pub const RUN_LIMIT: Duration = Duration::from_secs(300);

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The built appliance: `DIR/xenlift.iso` and `DIR/pxe/`.
pub fn appliance() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = workspace().join("target/appliance");
        build_into(&out, false);
        out
    })
}

/// Runs image-build into `out` (`fresh`: ignore the cache of finished builds).
pub fn build_into(out: &Path, fresh: bool) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_image-build"));
    cmd.args(["iso", "--out"]).arg(out);
    if fresh {
        cmd.arg("--fresh");
    }
    let result = cmd.output().expect("image-build");
    let stdout = String::from_utf8_lossy(&result.stdout).into_owned();
    assert!(
        result.status.success(),
        "image-build failed (run ci/setup if a tool is missing):\n{stdout}\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    stdout
}

/// The static agent built with the appliance; it runs on the host too.
pub fn xenlift() -> PathBuf {
    appliance();
    workspace().join("target/musl/x86_64-unknown-linux-musl/release/xenlift")
}

/// At most as many QEMUs at once as the host has cores: each TCG vCPU
/// keeps one core busy, and more would only stretch every boot.
pub fn qemu_lock() -> QemuSlot {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut running = QEMU_SLOTS.0.lock().unwrap_or_else(|p| p.into_inner());
    while *running >= cores {
        running = QEMU_SLOTS
            .1
            .wait(running)
            .unwrap_or_else(|p| p.into_inner());
    }
    *running += 1;
    QemuSlot(())
}

static QEMU_SLOTS: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// A QEMU slot, given back when dropped.
pub struct QemuSlot(());

impl Drop for QemuSlot {
    fn drop(&mut self) {
        *QEMU_SLOTS.0.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        QEMU_SLOTS.1.notify_one();
    }
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (run ci/setup)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A 64 MiB disk: MBR with one Linux partition holding ext4 with a file.
pub fn sample_disk(dir: &Path) -> PathBuf {
    let img = dir.join("disk.img");
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(64 << 20).unwrap();
    let mut sfdisk = Command::new("sfdisk");
    sfdisk
        .arg("--quiet")
        .arg(&img)
        .stdin(std::process::Stdio::piped());
    let mut child = sfdisk.spawn().expect("sfdisk (run ci/setup)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"label: dos\nstart=2048, type=83\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-E", "offset=1048576", "-L", "sample"])
        .arg(&img)
        .arg("63M"));
    img
}

/// A copy of the appliance's PXE folder, the TFTP root of one test.
pub fn tftp_root(dir: &Path) -> PathBuf {
    let root = dir.join("tftp");
    run(Command::new("cp")
        .arg("-r")
        .arg(appliance().join("pxe"))
        .arg(&root));
    root
}

/// BIOS PXE: a site script for QEMU's iPXE that sets the answer file URL
/// (`${mac}` expanded by iPXE) and chains the shipped boot.ipxe.
pub fn ipxe_site_script(root: &Path, port: u16) {
    std::fs::write(
        root.join("site.ipxe"),
        format!(
            "#!ipxe\nset xenlift_args xenlift.config=http://10.0.2.2:{port}/${{mac}}.toml\nchain boot.ipxe\n"
        ),
    )
    .unwrap();
}

/// UEFI PXE: the site's answer file URL on the shipped GRUB menu's linux
/// line; the appliance expands `${mac_hyphens}`.
pub fn grub_site_menu(root: &Path, port: u16) {
    let cfg = root.join("grub/grub.cfg");
    let menu = std::fs::read_to_string(&cfg).unwrap();
    let site = format!(" quiet 'xenlift.config=http://10.0.2.2:{port}/${{mac_hyphens}}.toml'\n");
    assert!(menu.contains(" quiet\n"), "{menu}");
    std::fs::write(&cfg, menu.replace(" quiet\n", &site)).unwrap();
}

/// An answer file written to `dir`.
pub fn answer(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A copy of the ISO with `answer` embedded by `xenlift iso customize`.
pub fn customized_iso(dir: &Path, answer_file: &Path) -> PathBuf {
    let iso = dir.join("custom.iso");
    run(Command::new(xenlift())
        .args(["iso", "customize", "--force", "--answer"])
        .arg(answer_file)
        .arg("-o")
        .arg(&iso)
        .arg(appliance().join("xenlift.iso")));
    iso
}

/// Serves files on 127.0.0.1 (the guest reaches it as 10.0.2.2) and
/// records the paths asked for.
pub struct HttpServer {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl HttpServer {
    pub fn start(files: BTreeMap<String, String>) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().take(50) {
                let Ok(mut s) = stream else { continue };
                let mut reader = BufReader::new(s.try_clone().unwrap());
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
                log.lock().unwrap().push(path.clone());
                let (status, body) = match files.get(&path) {
                    Some(b) => ("200 OK", b.clone()),
                    None => ("404 Not Found", String::new()),
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        HttpServer { port, requests }
    }
}

/// The console after init's "ready" line, its fields checked by callers.
pub struct Ready {
    pub line: String,
}

/// Waits for init's ready line.
pub fn wait_ready(vm: &mut Running) -> Ready {
    vm.wait_for("xenlift-init: ready after", BOOT_LIMIT)
        .unwrap_or_else(|e| panic!("{e}"));
    let text = vm
        .wait_for("\n", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let line = text
        .rsplit("xenlift-init: ready after")
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    eprintln!("ready after {line}");
    Ready { line }
}

/// The agent's output from its "running:" line to init's report of its
/// exit, and the exit status.
pub struct AgentRun {
    pub command: String,
    pub output: String,
    pub status: i32,
}

pub fn wait_agent(vm: &mut Running) -> AgentRun {
    wait_agent_within(vm, RUN_LIMIT)
}

/// Like [`wait_agent`], allowing the agent `limit` to finish (a hang guard
/// for long runs such as a multi-GiB conversion under TCG).
pub fn wait_agent_within(vm: &mut Running, limit: Duration) -> AgentRun {
    vm.wait_for("xenlift: appliance: running: ", RUN_LIMIT)
        .unwrap_or_else(|e| panic!("{e}"));
    let command = vm
        .wait_for("\n", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let command = last_line_after(&command, "running: ");
    let text = vm
        .wait_for("xenlift-init: agent exited with status ", limit)
        .unwrap_or_else(|e| panic!("{e}"));
    let after = vm
        .wait_for("\n", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let status = last_line_after(&after, "exited with status ")
        .parse()
        .unwrap_or(-1);
    let body = text
        .rsplit_once(&command)
        .map(|(_, b)| b)
        .unwrap_or(&text)
        .rsplit_once("xenlift-init: agent exited with status ")
        .map(|(b, _)| b)
        .unwrap_or("");
    let output = body
        .replace('\r', "")
        .lines()
        .filter(|l| !l.starts_with("xenlift-init:") && !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    AgentRun {
        command,
        output,
        status,
    }
}

/// What follows `marker` on the last line of `text`.
fn last_line_after(text: &str, marker: &str) -> String {
    let line = text.trim_end().lines().last().unwrap_or("");
    line.rsplit(marker).next().unwrap_or("").trim().to_string()
}

/// The same command on the host, on the image file instead of /dev/vda,
/// its JSON `kind` of the disk shown as the appliance's (`block-device`).
pub fn host_run(args: &[&str], image: &Path, guest_device: &str) -> (String, i32) {
    let out = Command::new(xenlift())
        .args(args)
        .arg(image)
        .output()
        .expect("xenlift on the host");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .replace(&image.display().to_string(), guest_device)
    // The host reads an image file where the appliance reads a block
    // device: the one field that must differ.
    .replace("\"kind\": \"image-file\"", "\"kind\": \"block-device\"");
    let text = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    (text, out.status.code().unwrap_or(-1))
}

/// Waits for the configured power-off: the message, then QEMU's exit.
pub fn wait_poweroff(vm: &mut Running) {
    vm.wait_for("xenlift-init: powering off", RUN_LIMIT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        vm.wait_exit(Duration::from_secs(120)),
        "QEMU did not exit after power-off"
    );
}

/// The VDIs of a VM's disk VBDs, as the sim holds them.
pub fn vm_disks(sim: &xapi_sim::SimHandle, vm: &xapi_sim::Object) -> Vec<xapi_sim::Object> {
    vm.get("VBDs")
        .as_array()
        .expect("VBDs is a list")
        .iter()
        .filter_map(|r| sim.object("VBD", r.as_str().unwrap_or_default()))
        .filter(|vbd| vbd.str("type") == "Disk")
        .map(|vbd| sim.object("VDI", vbd.str("VDI")).expect("the VBD's VDI"))
        .collect()
}
