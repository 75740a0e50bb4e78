//! GET /export_raw_vdi: raw and VHD, read until the server closes, checked
//! with qemu-img and libvhdi.
// Test helpers here unwrap as tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{get, need, qemu_size, raw_image, run, Sim};

const MIB: u64 = 1 << 20;

#[test]
fn raw_and_vhd_exports_match_the_vdi() {
    need("qemu-img");
    need("vhdiinfo");
    let sim = Sim::start();
    let c = sim.client();
    let size = 10 * MIB + 3 * 512;
    let (vdi, uuid) = c.vdi(&c.default_sr(), size);
    let raw = sim.path("src.raw");
    raw_image(
        &raw,
        size,
        &[(0, 512), (4 * MIB + 100, 70_000), (size - 512, 512)],
    );
    let task = c.task();
    c.import(
        &format!("vdi={vdi}&task_id={task}"),
        &std::fs::read(&raw).unwrap(),
    );
    assert_eq!(c.wait(&task).0, "success");

    let task = c.task();
    let resp = get(
        c.addr,
        &format!(
            "/export_raw_vdi?session_id={}&vdi={uuid}&task_id={task}",
            c.session
        ),
    );
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert_eq!(resp.header("content-length"), None, "read until close");
    assert_eq!(resp.header("task-id"), Some(task.as_str()));
    assert_eq!(
        resp.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(
        resp.header("content-disposition"),
        Some(format!("attachment; filename=\"{uuid}.raw\"").as_str())
    );
    assert!(resp.body == std::fs::read(&raw).unwrap());
    assert_eq!(c.wait(&task).0, "success");

    let resp = get(
        c.addr,
        &format!(
            "/export_raw_vdi?session_id={}&vdi={vdi}&format=vhd",
            c.session
        ),
    );
    assert_eq!(resp.header("content-type"), Some("application/vhd"));
    let vhd = sim.path("out.vhd");
    std::fs::write(&vhd, &resp.body).unwrap();
    assert_eq!(qemu_size(&vhd), size, "qemu-img reads the exact size");
    run(
        "qemu-img",
        &[
            "compare",
            "-f",
            "vpc",
            "-F",
            "raw",
            vhd.to_str().unwrap(),
            raw.to_str().unwrap(),
        ],
    );
    let info = testkit::run_stdout("vhdiinfo", &[vhd.to_str().unwrap()]);
    assert!(info.contains("Dynamic"), "{info}");
    assert!(info.contains(&format!("({size} bytes)")), "{info}");
    // Blocks 0, 2 and 5 hold data: three blocks in the stream.
    let entries = size.div_ceil(2 * MIB);
    let bat = (4 * entries).div_ceil(512) * 512;
    assert_eq!(
        resp.body.len() as u64,
        512 + 1024 + bat + 3 * (512 + 2 * MIB) + 512
    );

    // The exported VHD imports back into a fresh VDI unchanged.
    let (copy, copy_uuid) = c.vdi(&c.default_sr(), size);
    let task = c.task();
    c.import(&format!("vdi={copy}&format=vhd&task_id={task}"), &resp.body);
    assert_eq!(c.wait(&task).0, "success");
    assert!(
        std::fs::read(sim.handle.vdi_path(&copy_uuid)).unwrap() == std::fs::read(&raw).unwrap()
    );

    // Against a base, only the changed block travels.
    let task = c.task();
    c.import(&format!("vdi={copy}&task_id={task}&chunked"), &{
        let mut f = (8 * MIB).to_le_bytes().to_vec();
        f.extend(512u32.to_le_bytes());
        f.extend([9u8; 512]);
        f.extend([0u8; 12]);
        f
    });
    assert_eq!(c.wait(&task).0, "success");
    let resp = get(
        c.addr,
        &format!(
            "/export_raw_vdi?session_id={}&vdi={copy}&base={vdi}&format=vhd",
            c.session
        ),
    );
    assert_eq!(
        resp.body.len() as u64,
        512 + 1024 + bat + (512 + 2 * MIB) + 512
    );

    let task = c.task();
    let resp = get(
        c.addr,
        &format!(
            "/export_raw_vdi?session_id={}&vdi={vdi}&format=tarball&task_id={task}",
            c.session
        ),
    );
    assert_eq!(resp.status_line, "HTTP/1.0 404 Not Found");
    assert_eq!(
        c.wait(&task).1,
        vec!["INTERNAL_ERROR".to_owned(), "Unknown format tarball".into()]
    );
    let resp = get(c.addr, &format!("/export_raw_vdi?vdi={vdi}"));
    assert_eq!(
        resp.header("WWW-Authenticate"),
        Some("Basic realm=\"get_export_raw_vdi\"")
    );
    assert_eq!(
        get(c.addr, &format!("/export_raw_vdi?session_id={}", c.session)).status(),
        500
    );
}
