//! Every fault, set through the library, the control endpoint or both, and
//! its `times` limit.
// Test helpers here unwrap as tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{request, rpc, Client, Sim};
use serde_json::{json, Value};
use xapi_sim::{AfterBytes, FailTask, Faults, PoolMember, RateLimit, RbacDeny, Times};

const MIB: usize = 1 << 20;

fn io_error() -> (String, Vec<String>) {
    (
        "failure".to_owned(),
        vec!["VDI_IO_ERROR".into(), "Device I/O errors".into()],
    )
}

/// Starts an import, reads the 200, then sends `body` as far as the server
/// lets it; returns the 200's head.
fn import_until_stopped(c: &Client, query: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(c.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let head = format!(
        "PUT /import_raw_vdi?session_id={}&{query} HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        c.session,
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "no response head");
        got.push(byte[0]);
    }
    let _ = s.write_all(body);
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    String::from_utf8(got).unwrap()
}

fn control(sim: &Sim, method: &str, path: &str, body: &str) -> (u16, Value) {
    let head = format!(
        "{method} {path} HTTP/1.1\nContent-Length: {}\nConnection: close",
        body.len()
    );
    let resp = request(sim.addr(), &head, body.as_bytes());
    (
        resp.status(),
        serde_json::from_slice(&resp.body).unwrap_or(Value::Null),
    )
}

#[test]
fn drop_connection_after_n_bytes_once() {
    let sim = Sim::start();
    let c = sim.client();
    let (vdi, uuid) = c.vdi(&c.default_sr(), 4 * MIB as u64);
    sim.handle.set_faults(Faults {
        drop_import_after: Some(AfterBytes::new(MIB as u64).times(1)),
        ..Faults::default()
    });
    let body = vec![7u8; 4 * MIB];
    let task = c.task();
    let head = import_until_stopped(&c, &format!("vdi={vdi}&task_id={task}"), &body);
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(c.wait(&task), io_error());
    let data = std::fs::read(sim.handle.vdi_path(&uuid)).unwrap();
    assert!(data[..MIB].iter().all(|b| *b == 7), "the first MiB arrived");
    assert!(
        data[MIB..].iter().all(|b| *b == 0),
        "nothing after the drop"
    );
    assert_eq!(sim.handle.faults(), Faults::default(), "the fault ran out");
    let task = c.task();
    c.import(&format!("vdi={vdi}&task_id={task}"), &body);
    assert_eq!(c.wait(&task).0, "success");
}

#[test]
fn fail_task_after_the_200() {
    let sim = Sim::start();
    let c = sim.client();
    let (vdi, _) = c.vdi(&c.default_sr(), MIB as u64);
    sim.handle.set_faults(Faults {
        fail_task: Some(
            FailTask::new(
                "SR_BACKEND_FAILURE_44",
                &["", "There is insufficient space", ""],
            )
            .times(2),
        ),
        ..Faults::default()
    });
    let task = c.task();
    let resp = c.import(&format!("vdi={vdi}&task_id={task}"), &[1u8; 4096]);
    assert_eq!(resp.status(), 200);
    assert_eq!(
        c.wait(&task),
        (
            "failure".to_owned(),
            vec![
                "SR_BACKEND_FAILURE_44".into(),
                "".into(),
                "There is insufficient space".into(),
                "".into()
            ]
        )
    );
    // Exports count as well.
    let task = c.task();
    let resp = common::get(
        c.addr,
        &format!(
            "/export_raw_vdi?session_id={}&vdi={vdi}&task_id={task}",
            c.session
        ),
    );
    assert_eq!(resp.status(), 200);
    assert_eq!(c.wait(&task).1[0], "SR_BACKEND_FAILURE_44");
    let task = c.task();
    c.import(&format!("vdi={vdi}&task_id={task}"), &[1u8; 4096]);
    assert_eq!(c.wait(&task).0, "success");
}

#[test]
fn sr_full_fault_and_physical_size() {
    let sim = Sim::start();
    let c = sim.client();
    let sr = c.default_sr();
    let (status, _) = control(
        &sim,
        "POST",
        "/xapi-sim/faults",
        r#"{"sr_full":{"times":1}}"#,
    );
    assert_eq!(status, 200);
    let free = xapi_sim::DEFAULT_SR_SIZE.to_string();
    let rec = json!([{"SR": sr, "virtual_size": 512, "type": "user", "sharable": false, "read_only": false, "other_config": {}}]);
    assert_eq!(
        c.err("VDI.create", rec.clone()),
        ("SR_FULL".to_owned(), vec!["512".into(), free])
    );
    c.ok("VDI.create", rec);

    let (status, body) = control(
        &sim,
        "POST",
        "/xapi-sim/sr-size",
        r#"{"sr":"Local storage","physical_size":4096}"#,
    );
    assert_eq!((status, body["physical_size"].clone()), (200, json!(4096)));
    assert_eq!(c.ok("SR.get_physical_size", json!([sr])), 4096);
    let big = json!([{"SR": sr, "virtual_size": 8192, "type": "user", "sharable": false, "read_only": false, "other_config": {}}]);
    assert_eq!(
        c.err("VDI.create", big),
        ("SR_FULL".to_owned(), vec!["8192".into(), "3584".into()])
    );
    // A raw import that would create a VDI fails the same way.
    let task = c.task();
    let resp = c.import(&format!("sr_id={sr}&task_id={task}"), &[0u8; 8192]);
    assert_eq!(resp.status(), 500);
    assert_eq!(c.wait(&task).1[0], "SR_FULL");
}

#[test]
fn rate_limit_caps_transfers() {
    let sim = Sim::start();
    let c = sim.client();
    let (vdi, _) = c.vdi(&c.default_sr(), MIB as u64);
    sim.handle.set_faults(Faults {
        rate_limit: Some(RateLimit::new(2 * MIB as u64).times(2)),
        ..Faults::default()
    });
    // A lower bound only: a capped transfer cannot be faster than the cap.
    let started = Instant::now();
    let task = c.task();
    c.import(&format!("vdi={vdi}&task_id={task}"), &vec![3u8; MIB]);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(c.wait(&task).0, "success");
    let started = Instant::now();
    let resp = common::get(
        c.addr,
        &format!("/export_raw_vdi?session_id={}&vdi={vdi}", c.session),
    );
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(resp.body, vec![3u8; MIB]);
    assert_eq!(sim.handle.faults().rate_limit, None);
}

#[test]
fn cancel_from_the_server_and_from_a_client() {
    let sim = Sim::start();
    let c = sim.client();
    let (vdi, _) = c.vdi(&c.default_sr(), 16 * MIB as u64);
    let (status, _) = control(
        &sim,
        "POST",
        "/xapi-sim/faults",
        r#"{"cancel_import_after":{"bytes":1048576,"times":1}}"#,
    );
    assert_eq!(status, 200);
    let task = c.task();
    import_until_stopped(
        &c,
        &format!("vdi={vdi}&task_id={task}"),
        &vec![1u8; 4 * MIB],
    );
    assert_eq!(
        c.wait(&task),
        (
            "cancelled".to_owned(),
            vec!["TASK_CANCELLED".into(), task.clone()]
        )
    );

    // A client cancels while a slow import runs.
    sim.handle.set_faults(Faults {
        rate_limit: Some(RateLimit::new(MIB as u64)),
        ..Faults::default()
    });
    let task = c.task();
    let uploader = {
        let c = Client {
            addr: c.addr,
            session: c.session.clone(),
        };
        let query = format!("vdi={vdi}&task_id={task}");
        std::thread::spawn(move || import_until_stopped(&c, &query, &vec![2u8; 16 * MIB]))
    };
    while c.ok("task.get_progress", json!([task])).as_f64().unwrap() == 0.0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    // The VDI is in use while the import runs.
    assert_eq!(
        c.err("VDI.destroy", json!([vdi])),
        ("VDI_IN_USE".to_owned(), vec![vdi.clone(), "destroy".into()])
    );
    c.ok("task.cancel", json!([task]));
    assert_eq!(
        c.wait(&task),
        (
            "cancelled".to_owned(),
            vec!["TASK_CANCELLED".into(), task.clone()]
        )
    );
    uploader.join().unwrap();
}

#[test]
fn pool_member_answers() {
    let sim = Sim::start();
    let c = sim.client();
    let (vdi, _) = c.vdi(&c.default_sr(), MIB as u64);
    sim.handle.set_faults(Faults {
        pool_member: Some(PoolMember {
            master_fingerprint_sha256: Some("AA:BB".into()),
            ..PoolMember::new("192.0.2.10")
        }),
        ..Faults::default()
    });
    assert_eq!(
        rpc(
            sim.addr(),
            "session.login_with_password",
            json!(["root", "xenlift", "2.21", "t"])
        ),
        Err(("HOST_IS_SLAVE".to_owned(), vec!["192.0.2.10".into()]))
    );
    let body = r#"{"jsonrpc":"2.0","method":"session.login_with_password","params":["root","xenlift","2.21","t"],"id":1}"#;
    let head = format!(
        "POST /jsonrpc HTTP/1.1\nx-xenapi-request-host-certificate-thumbprint: sha-256:master\nContent-Length: {}\nConnection: close",
        body.len()
    );
    let resp = request(sim.addr(), &head, body.as_bytes());
    assert_eq!(
        resp.header("x-xenapi-response-host-certificate-thumbprint"),
        Some("AA:BB")
    );

    let query = format!("session_id={}&vdi={vdi}&format=raw", c.session);
    let resp = common::put(sim.addr(), &format!("/import_raw_vdi?{query}"), &[], b"");
    assert_eq!(resp.status_line, "HTTP/1.1 302 Found");
    assert_eq!(
        resp.header("Location"),
        Some(format!("http://192.0.2.10/import_raw_vdi?{query}").as_str())
    );
    let resp = common::get(sim.addr(), &format!("/export_raw_vdi?{query}"));
    assert_eq!(resp.status(), 302);
    sim.handle.set_faults(Faults::default());
    assert_eq!(
        common::put(sim.addr(), &format!("/import_raw_vdi?{query}"), &[], b"").status(),
        200
    );
}

#[test]
fn rbac_denies_calls_and_transfers() {
    let sim = Sim::start();
    let c = sim.client();
    let (vdi, _) = c.vdi(&c.default_sr(), MIB as u64);
    sim.handle.set_faults(Faults {
        rbac_deny: Some(RbacDeny::methods(&[
            "VDI.destroy",
            "http/put_import_raw_vdi",
        ])),
        ..Faults::default()
    });
    assert_eq!(
        c.err("VDI.destroy", json!([vdi])),
        (
            "RBAC_PERMISSION_DENIED".to_owned(),
            vec!["VDI.destroy".into(), "No permission in user session".into()]
        )
    );
    assert!(c.ok("VDI.get_uuid", json!([vdi])).is_string());
    let task = c.task();
    let resp = c.import(&format!("vdi={vdi}&task_id={task}"), b"");
    assert_eq!(resp.status_line, "HTTP/1.1 403 Forbidden");
    assert_eq!(
        c.wait(&task),
        (
            "failure".to_owned(),
            vec![
                "RBAC_PERMISSION_DENIED".into(),
                "http/put_import_raw_vdi".into(),
                "No permission in user session".into()
            ]
        )
    );
    // An empty list denies everything but logging in and out.
    sim.handle.set_faults(Faults {
        rbac_deny: Some(RbacDeny::default().times(1)),
        ..Faults::default()
    });
    let other = Client::login(sim.addr());
    assert_eq!(
        other.err("pool.get_all", json!([])).0,
        "RBAC_PERMISSION_DENIED"
    );
    other.ok("pool.get_all", json!([]));
}

#[test]
fn control_endpoint_reads_replaces_and_rejects() {
    let sim = Sim::start_with(|mut c| {
        c.faults = Faults {
            sr_full: Some(Times::default()),
            ..Faults::default()
        };
        c
    });
    let (status, body) = control(&sim, "GET", "/xapi-sim/faults", "");
    assert_eq!((status, body), (200, json!({"sr_full": {}})));
    let (status, body) = control(
        &sim,
        "POST",
        "/xapi-sim/faults",
        r#"{"rate_limit":{"bytes_per_second":5,"times":3}}"#,
    );
    assert_eq!(
        (status, body),
        (
            200,
            json!({"rate_limit": {"bytes_per_second": 5, "times": 3}})
        )
    );
    let (status, body) = control(&sim, "POST", "/xapi-sim/faults", r#"{"no_such_fault":{}}"#);
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("no_such_fault"));
    let (status, _) = control(&sim, "POST", "/xapi-sim/faults", "{}");
    assert_eq!(status, 200);
    assert_eq!(sim.handle.faults(), Faults::default());
    assert_eq!(
        control(
            &sim,
            "POST",
            "/xapi-sim/sr-size",
            r#"{"sr":"nope","physical_size":1}"#
        )
        .0,
        404
    );
}

#[test]
fn empty_probe_imports_leave_import_faults_for_the_upload() {
    let sim = Sim::start();
    let c = sim.client();
    let (vdi, _) = c.vdi(&c.default_sr(), 4 * MIB as u64);
    let faults = Faults {
        drop_import_after: Some(AfterBytes::new(MIB as u64).times(1)),
        fail_task: Some(FailTask::new("VDI_IO_ERROR", &["x"]).times(1)),
        ..Faults::default()
    };
    sim.handle.set_faults(faults.clone());
    // The client's probe: an empty raw body, no task of its own.
    let resp = c.import(&format!("vdi={vdi}&format=raw"), &[]);
    assert_eq!(resp.status(), 200);
    assert_eq!(sim.handle.faults(), faults, "the probe used up no fault");
    let task = c.task();
    let head = import_until_stopped(&c, &format!("vdi={vdi}&task_id={task}"), &[7u8; 4 * MIB]);
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(c.wait(&task), io_error());
}
