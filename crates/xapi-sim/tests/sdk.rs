//! Fidelity: the official XenAPI Python SDK and curl drive the `xapi-sim`
//! binary over TLS; and the binary's fault flags.
// Test helpers here unwrap as tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{need, qemu_size, qemu_vhd, raw_image, run, Client};
use serde_json::{json, Value};

/// The binary, killed when dropped.
struct Running {
    child: Child,
    lines: Vec<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn start(args: &[&str], expect_lines: usize) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_xapi-sim"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let mut lines = Vec::new();
        for _ in 0..expect_lines {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            lines.push(line.trim().to_owned());
        }
        Running { child, lines }
    }

    /// The last word of the line that starts with `prefix`.
    fn value(&self, prefix: &str) -> String {
        let line = self
            .lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in {:?}", self.lines));
        line.rsplit(' ').next().unwrap().to_owned()
    }
}

#[test]
fn official_sdk_and_curl_over_tls() {
    need("curl");
    need("openssl");
    let python_has_sdk = Command::new("python3")
        .args(["-c", "import XenAPI"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        python_has_sdk,
        "python3 with the XenAPI SDK is missing: run ci/setup"
    );
    let dir = testkit::tempdir().unwrap();
    let state = dir.path().join("state");
    let sim = Running::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--state",
            state.to_str().unwrap(),
            "--tls",
        ],
        3,
    );
    let url = sim.value("xapi-sim listening on");
    let fingerprint = sim.value("xapi-sim certificate SHA-256 fingerprint");
    let cert = sim.value("xapi-sim certificate file");
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let openssl = testkit::run_stdout(
        "openssl",
        &["x509", "-in", &cert, "-noout", "-fingerprint", "-sha256"],
    );
    assert_eq!(openssl.trim(), format!("sha256 Fingerprint={fingerprint}"));
    let key = testkit::run_stdout("openssl", &["x509", "-in", &cert, "-noout", "-text"]);
    assert!(
        key.contains("Public-Key: (2048 bit)") && key.contains("rsaEncryption"),
        "{key}"
    );

    let raw = dir.path().join("disk.raw");
    raw_image(
        &raw,
        48 << 20,
        &[(0, 4096), (5 << 20, 1 << 20), (40 << 20, 123_457)],
    );
    let vhd = dir.path().join("disk.vhd");
    qemu_vhd(&raw, &vhd);
    // qemu writes creator "qemu" and rounds the size up to its CHS geometry.
    let footer = std::fs::read(&vhd).unwrap();
    assert_eq!(&footer[28..32], b"qemu");
    let size = qemu_size(&vhd);
    assert!(size >= 48 << 20);

    let out_raw = dir.path().join("back.raw");
    let out_vhd = dir.path().join("back.vhd");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk_roundtrip.py");
    let out = Command::new("python3")
        .arg(&script)
        .args([
            &url,
            vhd.to_str().unwrap(),
            &size.to_string(),
            out_raw.to_str().unwrap(),
            out_vhd.to_str().unwrap(),
        ])
        .env("SSL_CERT_FILE", &cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "success", "{report}");
    assert_eq!(report["error_info"], json!([]));
    assert_eq!(
        report["result"],
        json!(format!(
            "<value>{}</value>",
            report["vdi"].as_str().unwrap()
        ))
    );
    assert_eq!(report["progress"], json!(1.0));
    assert_eq!(report["sr_type"], "ext");
    assert_eq!(
        report["virtual_size"],
        json!(size.to_string()),
        "int64 travels as a string in XML-RPC"
    );
    assert_eq!(
        report["bad_ref"],
        json!(["HANDLE_INVALID", "VDI", "OpaqueRef:does-not-exist"])
    );
    assert_eq!(report["fingerprints"], json!([fingerprint]));
    assert_eq!(report["api_version"], "2.21");

    let source = std::fs::read(&raw).unwrap();
    let back = std::fs::read(&out_raw).unwrap();
    assert_eq!(back.len() as u64, size);
    assert!(
        common::same_then_zero(&back, &source),
        "the exported bytes differ from the source"
    );
    run(
        "qemu-img",
        &[
            "compare",
            "-f",
            "vpc",
            "-F",
            "raw",
            out_vhd.to_str().unwrap(),
            out_raw.to_str().unwrap(),
        ],
    );
    assert_eq!(qemu_size(&out_vhd), size);
}

#[test]
fn cli_flags_set_faults() {
    let dir = testkit::tempdir().unwrap();
    let state = dir.path().join("state");
    let sim = Running::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--state",
            state.to_str().unwrap(),
            "--sr-size",
            "1048576",
            "--rbac-deny",
            "VM.clone",
            "--fail-task",
            "VDI_IO_ERROR",
            "--fail-task-param",
            "Device I/O errors",
            "--fault-times",
            "1",
        ],
        1,
    );
    let url = sim.value("xapi-sim listening on");
    let addr = url.trim_start_matches("http://").parse().unwrap();
    let c = Client::login(addr);
    let template = c.ok("VM.get_by_name_label", json!([xapi_sim::TEMPLATE]))[0].clone();
    assert_eq!(
        c.err("VM.clone", json!([template, "a"])).0,
        "RBAC_PERMISSION_DENIED"
    );
    c.ok("VM.clone", json!([template, "b"]));
    let sr = c.default_sr();
    assert_eq!(c.ok("SR.get_physical_size", json!([sr])), 1048576);
    let too_big = json!([{"SR": sr, "virtual_size": 2097152, "type": "user", "sharable": false, "read_only": false, "other_config": {}}]);
    assert_eq!(c.err("VDI.create", too_big).0, "SR_FULL");
    let (vdi, _) = c.vdi(&sr, 4096);
    let task = c.task();
    c.import(&format!("vdi={vdi}&task_id={task}"), &[1u8; 4096]);
    assert_eq!(
        c.wait(&task),
        (
            "failure".to_owned(),
            vec!["VDI_IO_ERROR".into(), "Device I/O errors".into()]
        )
    );
    let task = c.task();
    c.import(&format!("vdi={vdi}&task_id={task}"), &[1u8; 4096]);
    assert_eq!(c.wait(&task).0, "success");
}
