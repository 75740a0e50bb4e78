//! `GET /export_raw_vdi`: the VDI as raw bytes or as a dynamic VHD, sent
//! after a 200 without Content-Length and ended by closing the connection.

use std::fs::File;
use std::io::{self, Read, Write};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::common::{authorise, fail_with, redirect_if_member, task_for, vdi_named, Format};
use super::vhd_out;
use crate::error::ApiError;
use crate::http::conn::Conn;
use crate::http::request::{Head, Params};
use crate::http::response;
use crate::sim::Sim;
use crate::tasks;

const ACTION: &str = "get_export_raw_vdi";

pub fn serve(sim: &Sim, conn: &mut Conn, head: &Head) {
    let params = Params::of(head);
    let version = head.version();
    let Some(auth) = authorise(sim, conn, head, &params, ACTION) else {
        return;
    };
    let named = |key: &str| params.get(key).map(|v| vdi_named(&sim.db(), v)).transpose();
    let (vdi, base) = match (named("vdi"), named("base")) {
        (Ok(Some(vdi)), Ok(base)) => (vdi, base),
        (Ok(None), _) => {
            let _ = conn.write_all(&response::internal_error(
                version,
                "Missing vdi query parameter",
            ));
            return;
        }
        (Err(e), _) | (_, Err(e)) => {
            let _ = conn.write_all(&response::internal_error(version, &e.to_string()));
            return;
        }
    };
    if redirect_if_member(sim, conn, head) {
        return;
    }
    let task = match task_for(sim, &params, &auth.session, "Exporting raw VDI") {
        Ok(t) => t,
        Err(e) => {
            let _ = conn.write_all(&response::internal_error(version, &e.to_string()));
            return;
        }
    };
    let format = match Format::of(&params) {
        Ok(f @ (Format::Raw | Format::Vhd)) => f,
        Ok(_) | Err(_) => {
            let given = params.get("format").unwrap_or_default();
            let e = ApiError::internal(&format!("Unknown format {given}"));
            return fail_with(
                sim,
                conn,
                &task,
                &e,
                response::bare("1.0", "404 Not Found", &[]),
            );
        }
    };
    let (uuid, size, base_uuid) = {
        let db = sim.db();
        let uuid = db.str_of("VDI", &vdi, "uuid").to_owned();
        let size = u64::try_from(db.int_of("VDI", &vdi, "virtual_size")).unwrap_or(0);
        let base_uuid = base
            .as_ref()
            .map(|b| db.str_of("VDI", b, "uuid").to_owned());
        (uuid, size, base_uuid)
    };
    let disposition = format!("attachment; filename=\"{uuid}.{}\"", format.name());
    let ok = response::bare(
        "1.1",
        "200 OK",
        &[
            ("task-id", &task),
            ("content-type", format.content_type()),
            ("content-disposition", &disposition),
        ],
    );
    if conn.write_all(&ok).is_err() {
        return finish(sim, &task, Err(ApiError::vdi_io_error()));
    }
    let rate = sim
        .faults
        .take(|f| &mut f.rate_limit, |_| true)
        .map(|f| f.bytes_per_second);
    let fail_task = sim.faults.take(|f| &mut f.fail_task, |_| true);
    let _busy = sim.use_vdi(&vdi);
    let mut out = io::BufWriter::with_capacity(1 << 20, Throttled::new(conn, rate));
    let outcome = if format == Format::Vhd && size > vhd_out::MAX_SIZE {
        Err(ApiError::with(
            "VDI_TOO_LARGE",
            vec![vdi.clone(), vhd_out::MAX_SIZE.to_string()],
        ))
    } else {
        send(sim, &uuid, base_uuid.as_deref(), size, format, &mut out).map_err(|e| {
            tracing::warn!(task, "export failed: {e}");
            ApiError::vdi_io_error()
        })
    };
    let outcome = match (outcome, fail_task) {
        (Ok(()), Some(f)) => Err(ApiError::with(&f.code, f.params)),
        (o, _) => o,
    };
    finish(sim, &task, outcome);
}

fn finish(sim: &Sim, task: &str, outcome: Result<(), ApiError>) {
    let mut db = sim.db();
    match outcome {
        Ok(()) => tasks::complete(&mut db, task, None),
        Err(e) => tasks::fail(&mut db, task, &e),
    }
    sim.save(&mut db);
}

fn send(
    sim: &Sim,
    uuid: &str,
    base: Option<&str>,
    size: u64,
    format: Format,
    out: &mut impl Write,
) -> io::Result<()> {
    let file = File::open(sim.vdi_path(uuid))?;
    match format {
        Format::Vhd => {
            let base_file = base.map(|b| File::open(sim.vdi_path(b))).transpose()?;
            let plan = vhd_out::plan(&file, size, base_file.as_ref())?;
            vhd_out::write(&plan, &file, out)
        }
        _ => {
            let mut limited = file.take(size);
            io::copy(&mut limited, out)?;
            out.flush()
        }
    }
}

/// A writer capped at a number of bytes per second (the rate_limit fault).
struct Throttled<'a> {
    conn: &'a mut Conn,
    rate: Option<u64>,
    sent: u64,
    started: Instant,
}

impl<'a> Throttled<'a> {
    fn new(conn: &'a mut Conn, rate: Option<u64>) -> Self {
        Self {
            conn,
            rate: rate.filter(|r| *r > 0),
            sent: 0,
            started: Instant::now(),
        }
    }
}

impl Write for Throttled<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = if self.rate.is_some() {
            buf.len().min(16 * 1024)
        } else {
            buf.len()
        };
        self.conn.write_all(&buf[..n])?;
        self.sent += n as u64;
        if let Some(rate) = self.rate {
            let due = Duration::from_secs_f64(self.sent as f64 / rate as f64);
            let elapsed = self.started.elapsed();
            if due > elapsed {
                sleep(due - elapsed);
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
