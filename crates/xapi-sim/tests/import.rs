//! PUT /import_raw_vdi: formats, what gets written, and every answer before
//! the 200.
// Test helpers here unwrap as tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{put, qemu_size, qemu_vhd, raw_image, Sim};
use serde_json::json;

const MIB: u64 = 1 << 20;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
        .collect()
}

/// Fills a VDI with a non-zero pattern through a raw import.
fn fill(c: &common::Client, vdi: &str, len: usize, seed: u8) -> Vec<u8> {
    let data = pattern(len, seed);
    let resp = c.import(&format!("vdi={vdi}"), &data);
    assert_eq!(resp.status(), 200);
    data
}

/// The task a transfer reported in its `task-id` header.
fn last_task(resp: &common::Response) -> String {
    let task = resp.header("task-id").expect("task-id header").to_owned();
    assert!(task.starts_with("OpaqueRef:"), "{task}");
    task
}

#[test]
fn raw_import_writes_every_byte_and_reports_through_the_task() {
    let sim = Sim::start();
    let c = sim.client();
    let (vdi, uuid) = c.vdi(&c.default_sr(), 4 * MIB);
    let old = fill(&c, &vdi, 4 * MIB as usize, 1);
    let task = c.task();
    let mut body = vec![0u8; 3 * MIB as usize];
    body[100] = 42;
    let resp = c.import(&format!("vdi={vdi}&task_id={task}"), &body);
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert_eq!(resp.header("Connection"), Some("close"));
    assert_eq!(resp.header("Cache-Control"), Some("no-cache, no-store"));
    assert_eq!(resp.header("task-id"), Some(task.as_str()));
    assert_eq!(
        resp.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(c.wait(&task), ("success".to_owned(), vec![]));
    assert_eq!(
        c.ok("task.get_result", json!([task])),
        json!(format!("<value>{vdi}</value>"))
    );
    assert_eq!(c.ok("task.get_progress", json!([task])), json!(1.0));
    let now = std::fs::read(sim.handle.vdi_path(&uuid)).unwrap();
    assert_eq!(&now[..body.len()], &body[..], "zeros are written too");
    assert_eq!(
        &now[body.len()..],
        &old[body.len()..],
        "bytes past the body keep their content"
    );

    // A body longer than the VDI fails through the task.
    let too_long = vec![1u8; 4 * MIB as usize + 512];
    let resp = c.import(&format!("vdi={vdi}"), &too_long);
    assert_eq!(resp.status(), 200);
    let t = last_task(&resp);
    assert_eq!(
        c.wait(&t),
        (
            "failure".to_owned(),
            vec!["VDI_IO_ERROR".into(), "Device I/O errors".into()]
        )
    );
}

fn frame(offset: u64, data: &[u8]) -> Vec<u8> {
    let mut f = offset.to_le_bytes().to_vec();
    f.extend_from_slice(&(data.len() as u32).to_le_bytes());
    f.extend_from_slice(data);
    f
}

#[test]
fn chunked_raw_writes_only_the_frames() {
    let sim = Sim::start();
    let c = sim.client();
    let (vdi, uuid) = c.vdi(&c.default_sr(), 4 * MIB);
    let mut expected = fill(&c, &vdi, 4 * MIB as usize, 2);
    let a = pattern(4096, 77);
    let zeros = vec![0u8; 1024];
    let mut body = frame(MIB, &a);
    body.extend(frame(3 * MIB + 512, &zeros));
    body.extend([0u8; 12]);
    let task = c.task();
    let resp = c.import(&format!("vdi={vdi}&task_id={task}&chunked"), &body);
    assert_eq!(resp.status(), 200);
    assert_eq!(c.wait(&task).0, "success");
    expected[MIB as usize..MIB as usize + a.len()].copy_from_slice(&a);
    let z = 3 * MIB as usize + 512;
    expected[z..z + zeros.len()].fill(0);
    assert!(std::fs::read(sim.handle.vdi_path(&uuid)).unwrap() == expected);

    // Frames must be whole sectors, and inside the VDI.
    for bad in [
        frame(100, &[1u8; 512]),
        frame(0, &[1u8; 100]),
        frame(4 * MIB, &[1u8; 512]),
    ] {
        let mut body = bad;
        body.extend([0u8; 12]);
        let task = c.task();
        c.import(&format!("vdi={vdi}&task_id={task}&chunked="), &body);
        assert_eq!(
            c.wait(&task),
            (
                "failure".to_owned(),
                vec!["VDI_IO_ERROR".into(), "Device I/O errors".into()]
            )
        );
    }
    assert!(
        std::fs::read(sim.handle.vdi_path(&uuid)).unwrap() == expected,
        "failed frames wrote nothing"
    );
}

#[test]
fn vhd_import_writes_only_marked_sectors_of_present_blocks() {
    let sim = Sim::start();
    let c = sim.client();
    let raw = sim.path("src.raw");
    // Data in blocks 1 and 5 only (2 MiB blocks); the rest is a hole.
    raw_image(
        &raw,
        16 * MIB,
        &[(2 * MIB + 4096, 100_000), (10 * MIB + 7, 5000)],
    );
    let vhd = sim.path("src.vhd");
    qemu_vhd(&raw, &vhd);
    let size = qemu_size(&vhd);
    let (vdi, uuid) = c.vdi(&c.default_sr(), size);
    let old = fill(&c, &vdi, size as usize, 3);
    let task = c.task();
    let resp = c.import(
        &format!("vdi={vdi}&format=vhd&task_id={task}"),
        &std::fs::read(&vhd).unwrap(),
    );
    assert_eq!(resp.status(), 200);
    assert_eq!(c.wait(&task), ("success".to_owned(), vec![]));
    let source = std::fs::read(&raw).unwrap();
    let now = std::fs::read(sim.handle.vdi_path(&uuid)).unwrap();
    let block = 2 * MIB as usize;
    for b in 0..(size as usize).div_ceil(block) {
        let range = b * block..((b + 1) * block).min(size as usize);
        let expect = if b == 1 || b == 5 {
            &source[range.clone()]
        } else {
            &old[range.clone()]
        };
        assert!(now[range.clone()] == *expect, "block {b}");
    }

    // Clearing bitmap bits leaves those sectors alone.
    let mut partial = std::fs::read(&vhd).unwrap();
    let bat = u64::from_be_bytes(partial[512 + 16..512 + 24].try_into().unwrap()) as usize;
    let entry = u32::from_be_bytes(partial[bat + 4..bat + 8].try_into().unwrap()) as usize;
    let bitmap = entry * 512;
    partial[bitmap..bitmap + 512].fill(0);
    partial[bitmap + 1] = 0x80; // only sector 8 of block 1
    let before = pattern(size as usize, 9);
    c.import(&format!("vdi={vdi}"), &before);
    let task = c.task();
    c.import(&format!("vdi={vdi}&format=VHD&task_id={task}"), &partial);
    assert_eq!(c.wait(&task).0, "success");
    let now = std::fs::read(sim.handle.vdi_path(&uuid)).unwrap();
    let sector8 = block + 8 * 512;
    let mut expect = before.clone();
    expect[sector8..sector8 + 512].copy_from_slice(&source[sector8..sector8 + 512]);
    expect[5 * block..6 * block].copy_from_slice(&source[5 * block..6 * block]);
    assert!(now == expect);
}

#[test]
fn answers_before_the_body() {
    let sim = Sim::start();
    let c = sim.client();
    let addr = sim.addr();
    let (vdi, uuid) = c.vdi(&c.default_sr(), MIB);

    for query in ["vdi=x", "session_id=OpaqueRef:bogus&vdi=x"] {
        let resp = put(addr, &format!("/import_raw_vdi?{query}"), &[], b"abc");
        assert_eq!(resp.status_line, "HTTP/1.1 401 Unauthorised");
        assert_eq!(
            resp.header("WWW-Authenticate"),
            Some("Basic realm=\"put_import_raw_vdi\"")
        );
    }
    let bad_basic = "Authorization: Basic cm9vdDp3cm9uZw=="; // root:wrong
    assert_eq!(
        put(
            addr,
            &format!("/import_raw_vdi?vdi={vdi}"),
            &[bad_basic],
            b""
        )
        .status(),
        401
    );

    let task = c.task();
    let resp = put(
        addr,
        &format!(
            "/import_raw_vdi?session_id={}&vdi={vdi}&task_id={task}",
            c.session
        ),
        &["Transfer-Encoding: chunked"],
        b"",
    );
    assert_eq!(resp.status_line, "HTTP/1.0 404 Not Found");
    assert_eq!(
        c.wait(&task),
        (
            "failure".to_owned(),
            vec![
                "INTERNAL_ERROR".into(),
                "Cannot handle encoding: chunked".into()
            ]
        )
    );

    let task = c.task();
    let resp = c.import(&format!("vdi={vdi}&task_id={task}&format=qcow3"), b"");
    assert_eq!(resp.status_line, "HTTP/1.0 404 Not Found");
    assert_eq!(
        c.wait(&task).1,
        vec!["INTERNAL_ERROR".to_owned(), "Unknown format qcow3".into()]
    );

    let task = c.task();
    let resp = c.import(&format!("vdi={vdi}&task_id={task}&format=vhd&chunked"), b"");
    assert_eq!(resp.status_line, "HTTP/1.0 404 Not Found");
    assert_eq!(
        c.wait(&task).1,
        vec![
            "INTERNAL_ERROR".to_owned(),
            "Cannot handle chunked VHD".into()
        ]
    );

    let task = c.task();
    let resp = c.import(&format!("task_id={task}"), b"abc");
    assert_eq!(resp.status_line, "HTTP/1.1 400 Bad Request");
    assert_eq!(
        c.wait(&task),
        ("failure".to_owned(), vec!["VDI_MISSING".into()])
    );

    let sr_uuid = c.ok("SR.get_uuid", json!([c.default_sr()]));
    let task = c.task();
    let resp = c.import(
        &format!(
            "task_id={task}&format=vhd&sr_uuid={}",
            sr_uuid.as_str().unwrap()
        ),
        b"abc",
    );
    assert_eq!(resp.status_line, "HTTP/1.0 400 Bad Request");
    assert_eq!(c.wait(&task).0, "failure");

    let resp = c.import("vdi=no-such-vdi", b"abc");
    assert_eq!(resp.status(), 500);

    // The VDI by UUID, parameters in cookies, Basic auth instead of a session.
    let body = pattern(2048, 5);
    let task = c.task();
    let cookie = format!(
        "Cookie: session_id={}; task_id={task}; vdi={uuid}",
        c.session
    );
    assert_eq!(
        put(addr, "/import_raw_vdi", &[&cookie], &body).status(),
        200
    );
    assert_eq!(c.wait(&task).0, "success");
    let basic = "Authorization: Basic cm9vdDp4ZW5saWZ0"; // root:xenlift
    let task = c.task();
    let resp = put(
        addr,
        &format!("/import_raw_vdi/?vdi={vdi}&task_id={task}"),
        &[basic],
        &body,
    );
    assert_eq!(resp.status(), 200);
    assert_eq!(c.wait(&task).0, "success");
    assert_eq!(
        &std::fs::read(sim.handle.vdi_path(&uuid)).unwrap()[..2048],
        &body[..]
    );
    // The temporary Basic-auth session is gone again.
    assert_eq!(sim.handle.objects("session").len(), 1);
}

#[test]
fn raw_import_without_vdi_creates_one_on_the_sr() {
    let sim = Sim::start();
    let c = sim.client();
    let sr = c.default_sr();
    let sr_uuid = c
        .ok("SR.get_uuid", json!([sr]))
        .as_str()
        .unwrap()
        .to_owned();
    let body = pattern(3 * 512, 8);
    for query in [format!("sr_uuid={sr_uuid}"), format!("sr_id={sr}")] {
        let task = c.task();
        let resp = c.import(&format!("{query}&task_id={task}"), &body);
        assert_eq!(resp.status(), 200);
        assert_eq!(c.wait(&task).0, "success");
        let result = c.ok("task.get_result", json!([task]));
        let vdi = result
            .as_str()
            .unwrap()
            .trim_start_matches("<value>")
            .trim_end_matches("</value>");
        let rec = c.ok("VDI.get_record", json!([vdi]));
        assert_eq!(rec["name_label"], "Imported VDI");
        assert_eq!(rec["virtual_size"], body.len());
        assert_eq!(rec["SR"], json!(sr));
        assert_eq!(
            std::fs::read(sim.handle.vdi_path(rec["uuid"].as_str().unwrap())).unwrap(),
            body
        );
    }
}

#[test]
fn thick_sr_refuses_vhd_but_takes_chunked_raw() {
    let sim = Sim::start();
    let c = sim.client();
    let thick = c.sr(xapi_sim::THICK_SR);
    assert_eq!(c.ok("SR.get_type", json!([thick])), "lvm");
    let (vdi, uuid) = c.vdi(&thick, 4 * MIB);
    let raw = sim.path("a.raw");
    raw_image(&raw, 4 * MIB, &[(0, 1000)]);
    let vhd = sim.path("a.vhd");
    qemu_vhd(&raw, &vhd);
    let task = c.task();
    let resp = c.import(
        &format!("vdi={vdi}&format=vhd&task_id={task}"),
        &std::fs::read(&vhd).unwrap(),
    );
    assert_eq!(resp.status(), 200, "the error comes after the 200");
    assert_eq!(
        c.wait(&task),
        (
            "failure".to_owned(),
            vec!["VDI_IO_ERROR".into(), "Device I/O errors".into()]
        )
    );
    let detail = c.ok("task.get_other_config", json!([task]))["xapi-sim:detail"].clone();
    assert_eq!(detail, "unimplemented: prezeroed");
    assert!(std::fs::read(sim.handle.vdi_path(&uuid))
        .unwrap()
        .iter()
        .all(|b| *b == 0));

    let data = pattern(1024, 4);
    let mut body = frame(0, &data);
    body.extend([0u8; 12]);
    let task = c.task();
    c.import(&format!("vdi={vdi}&chunked&task_id={task}"), &body);
    assert_eq!(c.wait(&task).0, "success");
    assert_eq!(
        &std::fs::read(sim.handle.vdi_path(&uuid)).unwrap()[..1024],
        &data[..]
    );
}

#[test]
fn read_only_vdi_fails_the_task() {
    let sim = Sim::start();
    let c = sim.client();
    let vdi = c.ok(
        "VDI.create",
        json!([{"SR": c.default_sr(), "virtual_size": 4096, "type": "user", "sharable": false, "read_only": true, "other_config": {}}]),
    );
    let task = c.task();
    c.import(
        &format!("vdi={}&task_id={task}", vdi.as_str().unwrap()),
        &[1u8; 512],
    );
    assert_eq!(
        c.wait(&task),
        (
            "failure".to_owned(),
            vec!["VDI_READONLY".into(), vdi.as_str().unwrap().into()]
        )
    );
}
