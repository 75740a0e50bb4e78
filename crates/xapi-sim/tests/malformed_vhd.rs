//! Broken VHD streams fail the import's task with VDI_IO_ERROR and leave the
//! other VDIs as they were.
// Test helpers here unwrap as tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};

use common::{qemu_vhd, raw_image, sha256_file, Client, Sim};
use serde_json::json;

const MIB: u64 = 1 << 20;

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn set_be32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Sends a Content-Length of `declared` but only `body`, then half-closes.
fn send_short(c: &Client, vdi: &str, task: &str, body: &[u8], declared: usize) {
    let mut s = TcpStream::connect(c.addr).unwrap();
    let head = format!(
        "PUT /import_raw_vdi?session_id={}&vdi={vdi}&format=vhd&task_id={task} HTTP/1.1\r\nContent-Length: {declared}\r\n\r\n",
        c.session
    );
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    s.shutdown(Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert!(
        answer.starts_with(b"HTTP/1.1 200 OK"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[test]
fn malformed_streams_fail_the_task_and_touch_no_other_vdi() {
    let sim = Sim::start();
    let c = sim.client();
    let sr = c.default_sr();
    let raw = sim.path("src.raw");
    raw_image(
        &raw,
        12 * MIB,
        &[(100, 3000), (4 * MIB, 8192), (8 * MIB + 512, 4096)],
    );
    let vhd_path = sim.path("src.vhd");
    qemu_vhd(&raw, &vhd_path);
    let good = std::fs::read(&vhd_path).unwrap();
    let size = common::qemu_size(&vhd_path);

    // Bystanders with content, hashed before and after every attempt.
    let mut others = Vec::new();
    for seed in 1..=2u8 {
        let (vdi, uuid) = c.vdi(&sr, 4 * MIB);
        let data: Vec<u8> = (0..4 * MIB as usize).map(|i| (i as u8) ^ seed).collect();
        c.import(&format!("vdi={vdi}"), &data);
        others.push(sim.handle.vdi_path(&uuid));
    }
    let hashes: Vec<String> = others.iter().map(|p| sha256_file(p)).collect();

    let bat = u64::from_be_bytes(good[512 + 16..512 + 24].try_into().unwrap()) as usize;
    let block0 = be32(&good, bat);
    let block2 = be32(&good, bat + 8);
    assert_ne!(block0, u32::MAX, "qemu should have written block 0");
    assert_ne!(block2, u32::MAX, "qemu should have written block 2");

    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut v = good.clone();
    v[64] ^= 0xff;
    cases.push(("bad leading footer checksum", v));
    let mut v = good.clone();
    let end = v.len();
    v[end - 512 + 65] ^= 0x01;
    cases.push(("bad trailing footer checksum", v));
    let mut v = good.clone();
    v[512] = b'X';
    cases.push(("bad dynamic header cookie", v));
    let mut v = good.clone();
    set_be32(&mut v, bat + 8, 2);
    cases.push(("block out of order (inside the header)", v));
    let mut v = good.clone();
    set_be32(&mut v, bat + 8, block0 + 1);
    cases.push(("overlapping blocks", v));
    let mut v = good.clone();
    set_be32(&mut v, bat + 8, block0);
    cases.push(("two blocks at one offset", v));

    for (what, body) in &cases {
        let (vdi, _) = c.vdi(&sr, size);
        let task = c.task();
        let resp = c.import(&format!("vdi={vdi}&format=vhd&task_id={task}"), body);
        assert_eq!(resp.status(), 200, "{what}: the error comes after the 200");
        assert_eq!(
            c.wait(&task),
            (
                "failure".to_owned(),
                vec!["VDI_IO_ERROR".into(), "Device I/O errors".into()]
            ),
            "{what}"
        );
        let detail = c.ok("task.get_other_config", json!([task]))["xapi-sim:detail"].clone();
        assert!(
            detail.as_str().unwrap().contains("malformed VHD"),
            "{what}: {detail}"
        );
    }

    // Truncated: the connection ends before Content-Length bytes.
    let (vdi, _) = c.vdi(&sr, size);
    let task = c.task();
    send_short(&c, &vdi, &task, &good[..good.len() / 2], good.len());
    assert_eq!(
        c.wait(&task),
        (
            "failure".to_owned(),
            vec!["VDI_IO_ERROR".into(), "Device I/O errors".into()]
        )
    );
    let detail = c.ok("task.get_other_config", json!([task]))["xapi-sim:detail"].clone();
    assert!(detail.as_str().unwrap().contains("ended early"), "{detail}");

    // A body cut short with a matching Content-Length misses its footer.
    let (vdi, _) = c.vdi(&sr, size);
    let task = c.task();
    c.import(
        &format!("vdi={vdi}&format=vhd&task_id={task}"),
        &good[..good.len() - 512],
    );
    assert_eq!(c.wait(&task).0, "failure");

    let after: Vec<String> = others.iter().map(|p| sha256_file(p)).collect();
    assert_eq!(hashes, after, "other VDIs changed");

    // And the intact stream still imports.
    let (vdi, uuid) = c.vdi(&sr, size);
    let task = c.task();
    c.import(&format!("vdi={vdi}&format=vhd&task_id={task}"), &good);
    assert_eq!(c.wait(&task).0, "success");
    let written = std::fs::read(sim.handle.vdi_path(&uuid)).unwrap();
    assert!(common::same_then_zero(
        &written,
        &std::fs::read(&raw).unwrap()
    ));
}

#[test]
fn fixed_vhd_is_refused() {
    let sim = Sim::start();
    let c = sim.client();
    let raw = sim.path("f.raw");
    raw_image(&raw, 2 * MIB, &[(0, 512)]);
    let vhd = sim.path("f.vhd");
    common::need("qemu-img");
    common::run(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "vpc",
            "-o",
            "subformat=fixed",
            raw.to_str().unwrap(),
            vhd.to_str().unwrap(),
        ],
    );
    let body = std::fs::read(&vhd).unwrap();
    let (vdi, _) = c.vdi(&c.default_sr(), common::qemu_size(&vhd));
    let task = c.task();
    c.import(&format!("vdi={vdi}&format=vhd&task_id={task}"), &body);
    assert_eq!(c.wait(&task).1[0], "VDI_IO_ERROR");
}
