//! Imports and exports against xapi-sim over pinned TLS: formats made by independent
//! tools, byte comparison after export, and every failure XAPI shows around a transfer.
// Test helpers may panic: a failed fixture is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::io::{Cursor, Read};
use std::path::Path;

use common::{new_vdi, pattern, Sim};
use xapi_sim::{AfterBytes, FailTask, Faults, PoolMember, RbacDeny};
use xenlift_xapi::{codes, Error, ExportFormat, ImportFormat, ImportRequest, Progress, TaskStatus};

const MIB: u64 = 1 << 20;

fn need(tool: &str) {
    assert!(testkit::have(tool), "{tool} is missing: run ci/setup");
}

fn export_all(
    session: &xenlift_xapi::Session,
    vdi: &xenlift_xapi::VdiRef,
    format: ExportFormat,
) -> Vec<u8> {
    let mut export = session.export_raw_vdi(vdi, format).unwrap();
    let mut out = Vec::new();
    export.read_to_end(&mut out).unwrap();
    assert_eq!(export.finish().unwrap(), out.len() as u64);
    out
}

/// A raw image with data in a few places and holes elsewhere.
fn sparse_raw(path: &Path, size: u64) -> Vec<u8> {
    let mut image = vec![0u8; size as usize];
    for (i, (offset, len)) in [
        (0u64, 70_000usize),
        (3 * MIB + 512, 1_500_000),
        (size - 4096, 4096),
    ]
    .iter()
    .enumerate()
    {
        let data = pattern(i as u64 + 1, *len);
        image[*offset as usize..*offset as usize + len].copy_from_slice(&data);
    }
    fs::write(path, &image).unwrap();
    image
}

fn qemu_virtual_size(path: &Path) -> u64 {
    let info = testkit::run_stdout(
        "qemu-img",
        &["info", "--output=json", path.to_str().unwrap()],
    );
    let json: serde_json::Value = serde_json::from_str(&info).unwrap();
    json["virtual-size"].as_u64().unwrap()
}

#[test]
fn vhd_from_qemu_img_round_trips() {
    need("qemu-img");
    let sim = Sim::start();
    let session = sim.login();
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("disk.raw");
    let vhd = dir.path().join("disk.vhd");
    let source = sparse_raw(&raw, 16 * MIB);
    testkit::run(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "vpc",
            "-o",
            "subformat=dynamic",
            raw.to_str().unwrap(),
            vhd.to_str().unwrap(),
        ],
    );
    // qemu-img may round the VHD's size up to a CHS geometry.
    let virtual_size = qemu_virtual_size(&vhd);
    assert!(virtual_size >= source.len() as u64);
    let vdi = new_vdi(&session, virtual_size);
    let length = fs::metadata(&vhd).unwrap().len();
    let progress = Progress::new();
    let request = ImportRequest::new(
        vdi.clone(),
        ImportFormat::Vhd,
        fs::File::open(&vhd).unwrap(),
        length,
    )
    .progress(progress.clone());
    let imported = session.import_raw_vdi(request).unwrap();
    assert_eq!((imported.bytes_sent, progress.bytes()), (length, length));
    assert_eq!(
        imported.vdi.as_ref(),
        Some(&vdi),
        "the task result names the VDI"
    );

    let back = export_all(&session, &vdi, ExportFormat::Raw);
    assert_eq!(back.len() as u64, virtual_size);
    assert!(
        back[..source.len()] == source[..],
        "exported bytes differ from the source"
    );
    assert!(back[source.len()..].iter().all(|b| *b == 0));
    // No task is left behind: the client made and destroyed its own.
    assert!(sim
        .handle
        .objects("task")
        .iter()
        .all(|t| t.str("status") != "pending"));
}

/// XAPI's chunked raw framing, built here independently of the wire crate.
fn chunked(frames: &[(u64, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (offset, data) in frames {
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    out.extend_from_slice(&[0u8; 12]);
    out
}

#[test]
fn chunked_raw_round_trips_and_keeps_untouched_ranges() {
    let sim = Sim::start();
    let session = sim.login();
    let size = 8 * MIB;
    let vdi = new_vdi(&session, size);
    // First fill everything, then overwrite two ranges: the rest must keep the first data.
    let base = pattern(7, size as usize);
    let first = chunked(&[(0, &base)]);
    session
        .import_raw_vdi(ImportRequest::new(
            vdi.clone(),
            ImportFormat::ChunkedRaw,
            Cursor::new(first.clone()),
            first.len() as u64,
        ))
        .unwrap();
    let a = pattern(8, 64 * 1024);
    let b = pattern(9, 512 * 3);
    let second = chunked(&[(MIB, &a), (size - 1536, &b)]);
    let task = session.task_create("xenlift: delta", "").unwrap();
    let imported = session
        .import_raw_vdi(
            ImportRequest::new(
                vdi.clone(),
                ImportFormat::ChunkedRaw,
                Cursor::new(second.clone()),
                second.len() as u64,
            )
            .task(task.clone()),
        )
        .unwrap();
    assert_eq!(imported.bytes_sent, second.len() as u64);
    // A caller-supplied task is left for the caller, finished.
    assert_eq!(session.task_status(&task).unwrap(), TaskStatus::Success);
    assert_eq!(session.task_progress(&task).unwrap(), 1.0);

    let mut expected = base;
    expected[MIB as usize..MIB as usize + a.len()].copy_from_slice(&a);
    expected[(size - 1536) as usize..].copy_from_slice(&b);
    let back = export_all(&session, &vdi, ExportFormat::Raw);
    assert!(back == expected, "exported bytes differ");
    session.task_destroy(&task).unwrap();
}

#[test]
fn export_as_vhd_reads_back_with_qemu_img() {
    need("qemu-img");
    let sim = Sim::start();
    let session = sim.login();
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("disk.raw");
    let source = sparse_raw(&raw, 8 * MIB);
    let vdi = new_vdi(&session, source.len() as u64);
    session
        .import_raw_vdi(ImportRequest::new(
            vdi.clone(),
            ImportFormat::Raw,
            Cursor::new(source.clone()),
            source.len() as u64,
        ))
        .unwrap();
    let vhd = dir.path().join("export.vhd");
    fs::write(&vhd, export_all(&session, &vdi, ExportFormat::Vhd)).unwrap();
    let out = testkit::run(
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
    assert!(
        out.status.success(),
        "qemu-img compare: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn import_follows_the_redirect_to_the_host_that_sees_the_sr() {
    let sim = Sim::start();
    let session = sim.login();
    let vdi = new_vdi(&session, MIB);
    // One 302 (to this same simulator, standing for the host with the SR).
    sim.handle.set_faults(Faults {
        pool_member: Some(PoolMember::new(&sim.handle.addr().to_string()).times(1)),
        ..Faults::default()
    });
    let data = pattern(3, MIB as usize);
    session
        .import_raw_vdi(ImportRequest::new(
            vdi.clone(),
            ImportFormat::Raw,
            Cursor::new(data.clone()),
            MIB,
        ))
        .unwrap();
    assert_eq!(sim.handle.faults().pool_member, None, "the 302 was served");
    assert!(export_all(&session, &vdi, ExportFormat::Raw) == data);
}

#[test]
fn export_follows_a_redirect_too() {
    let sim = Sim::start();
    let session = sim.login();
    let vdi = new_vdi(&session, MIB);
    sim.handle.set_faults(Faults {
        pool_member: Some(PoolMember::new(&sim.handle.addr().to_string()).times(1)),
        ..Faults::default()
    });
    assert_eq!(
        export_all(&session, &vdi, ExportFormat::Raw),
        vec![0u8; MIB as usize]
    );
    assert_eq!(sim.handle.faults().pool_member, None);
}

#[test]
fn import_forbidden_by_rbac_sends_no_data() {
    let sim = Sim::start();
    let session = sim.login();
    let vdi = new_vdi(&session, MIB);
    sim.handle.set_faults(Faults {
        rbac_deny: Some(RbacDeny::methods(&["http/put_import_raw_vdi"])),
        ..Faults::default()
    });
    let progress = Progress::new();
    let request = ImportRequest::new(
        vdi,
        ImportFormat::Raw,
        Cursor::new(vec![1u8; MIB as usize]),
        MIB,
    )
    .progress(progress.clone());
    let err = session.import_raw_vdi(request).unwrap_err();
    let Error::Http { status, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(*status, 403);
    assert!(err.to_string().contains("pool-admin or vm-admin"), "{err}");
    assert_eq!(progress.bytes(), 0, "the probe caught it before streaming");
}

#[test]
fn import_after_the_session_expired_logs_in_again() {
    let sim = Sim::start();
    let session = sim.login();
    let vdi = new_vdi(&session, MIB);
    session.call_void("session.logout", &[]).unwrap();
    // The task.create call re-logs in over RPC; a second logout makes the probe meet a 401.
    let task = session.task_create("t", "").unwrap();
    session.call_void("session.logout", &[]).unwrap();
    let data = pattern(5, MIB as usize);
    session
        .import_raw_vdi(
            ImportRequest::new(
                vdi.clone(),
                ImportFormat::Raw,
                Cursor::new(data.clone()),
                MIB,
            )
            .task(task),
        )
        .unwrap();
    assert!(export_all(&session, &vdi, ExportFormat::Raw) == data);
}

#[test]
fn vdi_io_error_after_the_200_comes_from_the_task() {
    let sim = Sim::start();
    let session = sim.login();
    let vdi = new_vdi(&session, MIB);
    sim.handle.set_faults(Faults {
        fail_task: Some(FailTask::new(codes::VDI_IO_ERROR, &["Device I/O errors"])),
        ..Faults::default()
    });
    let err = session
        .import_raw_vdi(ImportRequest::new(
            vdi,
            ImportFormat::Raw,
            Cursor::new(vec![7u8; MIB as usize]),
            MIB,
        ))
        .unwrap_err();
    let Error::ImportFailed {
        bytes_sent,
        total,
        error,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(
        (*bytes_sent, *total),
        (MIB, MIB),
        "the whole body went out under the 200"
    );
    assert_eq!(
        (error.code.as_str(), error.param(0)),
        (codes::VDI_IO_ERROR, Some("Device I/O errors"))
    );
    assert!(
        err.to_string().contains("chunked raw"),
        "next step shown: {err}"
    );
}

#[test]
fn task_cancelled_on_the_server_mid_import() {
    let sim = Sim::start();
    let session = sim.login();
    let total = 64 * MIB;
    let vdi = new_vdi(&session, total);
    sim.handle.set_faults(Faults {
        cancel_import_after: Some(AfterBytes::new(2 * MIB)),
        ..Faults::default()
    });
    let err = session
        .import_raw_vdi(ImportRequest::new(
            vdi,
            ImportFormat::Raw,
            std::io::repeat(9).take(total),
            total,
        ))
        .unwrap_err();
    let Error::ImportCancelled { bytes_sent, .. } = &err else {
        panic!("{err}")
    };
    assert!((2 * MIB..total).contains(bytes_sent), "{bytes_sent}");
    assert!(err.to_string().contains("cancelled on the server"), "{err}");
}

#[test]
fn connection_dropped_mid_body_says_how_much_was_sent() {
    let sim = Sim::start();
    let session = sim.login();
    let total = 64 * MIB;
    let vdi = new_vdi(&session, total);
    sim.handle.set_faults(Faults {
        drop_import_after: Some(AfterBytes::new(3 * MIB)),
        ..Faults::default()
    });
    let err = session
        .import_raw_vdi(ImportRequest::new(
            vdi,
            ImportFormat::Raw,
            std::io::repeat(9).take(total),
            total,
        ))
        .unwrap_err();
    let Error::TransferInterrupted {
        bytes_sent,
        total: announced,
        task_error,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(*announced, total);
    assert!((3 * MIB..total).contains(bytes_sent), "{bytes_sent}");
    assert_eq!(
        task_error.as_ref().map(|e| e.code.as_str()),
        Some(codes::VDI_IO_ERROR)
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("after {bytes_sent} of {total} bytes")),
        "{text}"
    );
    let id = &sim.handle.objects("session")[0].reference;
    assert!(
        !text.contains(id.as_str()) && !format!("{err:?}").contains(id.as_str()),
        "no session id: {text}"
    );
}

#[test]
fn a_source_shorter_than_announced_is_reported() {
    let sim = Sim::start();
    let session = sim.login();
    let vdi = new_vdi(&session, 4 * MIB);
    let err = session
        .import_raw_vdi(ImportRequest::new(
            vdi,
            ImportFormat::Raw,
            Cursor::new(vec![1u8; MIB as usize]),
            4 * MIB,
        ))
        .unwrap_err();
    let Error::TransferInterrupted { bytes_sent, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(*bytes_sent, MIB);
    assert!(
        err.to_string().contains("the data source ended after"),
        "{err}"
    );
}

#[test]
fn one_session_uploads_several_disks_in_parallel() {
    let sim = Sim::start();
    let session = std::sync::Arc::new(sim.login());
    let disks: Vec<_> = (0..3u64)
        .map(|i| {
            (
                new_vdi(&session, 2 * MIB),
                pattern(20 + i, 2 * MIB as usize),
            )
        })
        .collect();
    let threads: Vec<_> = disks
        .iter()
        .cloned()
        .map(|(vdi, data)| {
            let session = session.clone();
            std::thread::spawn(move || {
                session.import_raw_vdi(ImportRequest::new(
                    vdi,
                    ImportFormat::Raw,
                    Cursor::new(data),
                    2 * MIB,
                ))
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    for (vdi, data) in &disks {
        assert!(export_all(&session, vdi, ExportFormat::Raw) == *data);
    }
}
