//! `PUT /import_raw_vdi`, step by step as XAPI's handler: credentials, the
//! VDI or SR, the pool-member redirect, the task, format and encoding checks
//! (errors before the 200), the 200 with the task id, then the body, whose
//! errors reach only the task.

use super::body::{Body, BodyFaults};
use super::common::{
    authorise, fail_named_task, fail_with, redirect_if_member, task_for, vdi_named, Format,
};
use super::vdi_file::VdiFile;
use super::{chunked_in, raw_in, vhd_in, ImportError};
use crate::api::{create_vdi, is_thick, refresh_usage, NewVdi};
use crate::error::ApiError;
use crate::faults::{AfterBytes, Faults};
use crate::http::conn::Conn;
use crate::http::request::{Head, Params};
use crate::http::response;
use crate::sim::Sim;
use crate::tasks;
use crate::value::Value;

const ACTION: &str = "put_import_raw_vdi";

pub fn serve(sim: &Sim, conn: &mut Conn, head: &Head) {
    let params = Params::of(head);
    let version = head.version();
    let Some(auth) = authorise(sim, conn, head, &params, ACTION) else {
        return;
    };
    let named_vdi = match params
        .get("vdi")
        .map(|v| vdi_named(&sim.db(), v))
        .transpose()
    {
        Ok(v) => v,
        Err(e) => {
            fail_named_task(sim, &params, &e);
            let _ = conn.write_all(&response::internal_error(version, &e.to_string()));
            return;
        }
    };
    let sr = match &named_vdi {
        Some(vdi) => Some(sim.db().str_of("VDI", vdi, "SR").to_owned()),
        None => match sr_named(sim, &params) {
            Ok(sr) => sr,
            Err(e) => {
                fail_named_task(sim, &params, &e);
                let _ = conn.write_all(&response::bare("1.1", "400 Bad Request", &[]));
                return;
            }
        },
    };
    let Some(sr) = sr else {
        fail_named_task(sim, &params, &ApiError::new("VDI_MISSING", &[]));
        let _ = conn.write_all(&response::bare("1.1", "400 Bad Request", &[]));
        return;
    };
    if redirect_if_member(sim, conn, head) {
        return;
    }
    let task = match task_for(sim, &params, &auth.session, "Importing raw VDI") {
        Ok(t) => t,
        Err(e) => {
            let _ = conn.write_all(&response::internal_error(version, &e.to_string()));
            return;
        }
    };
    let not_found = || response::bare("1.0", "404 Not Found", &[]);
    let chunked = params.has("chunked");
    let format = match Format::of(&params) {
        Ok(Format::Tar | Format::Qcow2) | Err(_) => {
            let given = params.get("format").unwrap_or_default();
            let e = ApiError::internal(&format!("Unknown format {given}"));
            return fail_with(sim, conn, &task, &e, not_found());
        }
        Ok(f) if f != Format::Raw && chunked => {
            let e = ApiError::internal("Cannot handle chunked VHD");
            return fail_with(sim, conn, &task, &e, not_found());
        }
        Ok(f) => f,
    };
    if let Some(encoding) = head.header("transfer-encoding") {
        let e = ApiError::internal(&format!("Cannot handle encoding: {encoding}"));
        return fail_with(sim, conn, &task, &e, not_found());
    }
    let length = match head.content_length() {
        Ok(l) => l,
        Err(e) => {
            let e = ApiError::internal(&e.to_string());
            return fail_with(
                sim,
                conn,
                &task,
                &e,
                response::bare("1.0", "400 Bad Request", &[]),
            );
        }
    };
    let vdi = match (named_vdi, format, length) {
        (Some(vdi), _, _) => vdi,
        (None, Format::Raw, Some(length)) => {
            let mut db = sim.db();
            let size = i64::try_from(length).unwrap_or(i64::MAX);
            let created = create_vdi(sim, &mut db, NewVdi::user(&sr, "Imported VDI", "", size));
            sim.save(&mut db);
            drop(db);
            match created {
                Ok(vdi) => vdi,
                Err(e) => {
                    let page = response::internal_error(version, &e.to_string());
                    return fail_with(sim, conn, &task, &e, page);
                }
            }
        }
        (None, Format::Vhd, _) => {
            let e = ApiError::internal("Importing a VHD directly into an SR not yet supported");
            return fail_with(
                sim,
                conn,
                &task,
                &e,
                response::bare("1.0", "400 Bad Request", &[]),
            );
        }
        (None, _, _) => {
            let e = ApiError::internal("Not enough info supplied to import");
            return fail_with(
                sim,
                conn,
                &task,
                &e,
                response::bare("1.0", "400 Bad Request", &[]),
            );
        }
    };

    let ok = response::bare(
        "1.1",
        "200 OK",
        &[
            ("task-id", &task),
            ("content-type", "application/octet-stream"),
        ],
    );
    // XAPI has "Connection: close" from http_200_ok ~keep_alive:false.
    if conn.write_all(&ok).is_err() {
        let mut db = sim.db();
        tasks::fail(&mut db, &task, &ApiError::vdi_io_error());
        sim.save(&mut db);
        return;
    }
    receive_into(sim, conn, &task, &vdi, &sr, format, chunked, length);
    drop(auth);
}

/// `sr_id` (cookie first, taken as given) or `sr_uuid`.
fn sr_named(sim: &Sim, params: &Params) -> Result<Option<String>, ApiError> {
    if let Some(sr) = params.get_cookie_first("sr_id") {
        return Ok(Some(sr.to_owned()));
    }
    match params.get_cookie_first("sr_uuid") {
        None => Ok(None),
        Some(uuid) => sim
            .db()
            .find_uuid("SR", uuid)
            .map(Some)
            .ok_or_else(|| ApiError::uuid_invalid("SR", uuid)),
    }
}

/// Everything after the 200: the body into the VDI, the outcome into the task.
#[allow(clippy::too_many_arguments)]
fn receive_into(
    sim: &Sim,
    conn: &mut Conn,
    task: &str,
    vdi: &str,
    sr: &str,
    format: Format,
    chunked: bool,
    length: Option<u64>,
) {
    // Only imports that carry a body count against a fault's `times`: the
    // empty probe a client sends first (to learn of redirects) must not use
    // up a fault meant for the upload that follows.
    let carries_body = length != Some(0);
    let take = |slot: fn(&mut Faults) -> &mut Option<AfterBytes>| {
        carries_body
            .then(|| sim.faults.take(slot, |_| true).map(|f| f.bytes))
            .flatten()
    };
    let faults = BodyFaults {
        drop_after: take(|f| &mut f.drop_import_after),
        cancel_after: take(|f| &mut f.cancel_import_after),
        bytes_per_second: carries_body
            .then(|| sim.faults.take(|f| &mut f.rate_limit, |_| true))
            .flatten()
            .map(|f| f.bytes_per_second),
    };
    let fail_task = carries_body
        .then(|| sim.faults.take(|f| &mut f.fail_task, |_| true))
        .flatten();
    let (uuid, read_only, thick) = {
        let db = sim.db();
        (
            db.str_of("VDI", vdi, "uuid").to_owned(),
            db.bool_of("VDI", vdi, "read_only"),
            is_thick(&db, sr),
        )
    };
    let _busy = sim.use_vdi(vdi);
    let mut body = Body::new(conn, sim, task, length, faults);
    let outcome = if read_only {
        Err(Refused(
            ApiError::with("VDI_READONLY", vec![vdi.to_owned()]),
            None,
        ))
    } else if thick && format == Format::Vhd {
        Err(Refused::from(ImportError::NotPrezeroed))
    } else {
        receive(&mut body, &sim.vdi_path(&uuid), format, chunked).map_err(Refused::from)
    };

    let mut db = sim.db();
    let mut reset = false;
    match outcome {
        Ok(()) => match fail_task {
            Some(f) => tasks::fail(&mut db, task, &ApiError::with(&f.code, f.params)),
            None => tasks::complete(&mut db, task, Some(&Value::Str(vdi.to_owned()))),
        },
        Err(Refused(e, detail)) => {
            if let Some(d) = &detail {
                tracing::warn!(task, "import failed: {d}");
                tasks::note(&mut db, task, &d.to_string());
            }
            match detail {
                Some(ImportError::Cancelled) => {
                    tasks::cancelled(&mut db, task);
                    reset = true;
                }
                Some(ImportError::Dropped) => {
                    tasks::fail(&mut db, task, &e);
                    reset = true;
                }
                _ => tasks::fail(&mut db, task, &e),
            }
        }
    }
    refresh_usage(sim, &mut db, sr);
    sim.save(&mut db);
    drop(db);
    if reset {
        conn.reset();
    } else {
        body.drain();
    }
}

/// The task's error and, for body failures, what went wrong.
struct Refused(ApiError, Option<ImportError>);

impl From<ImportError> for Refused {
    fn from(e: ImportError) -> Self {
        Refused(ApiError::vdi_io_error(), Some(e))
    }
}

fn receive(
    body: &mut Body,
    path: &std::path::Path,
    format: Format,
    chunked: bool,
) -> Result<(), ImportError> {
    let file = VdiFile::open(path).map_err(ImportError::Write)?;
    match (format, chunked) {
        (Format::Vhd, _) => vhd_in::receive(body, &file)?,
        (_, true) => chunked_in::receive(body, &file)?,
        _ => raw_in::receive(body, &file)?,
    }
    file.sync()
}
