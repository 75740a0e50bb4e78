//! Steps import and export share: credentials, the `vdi` parameter, the
//! pool-member redirect, the task, the format.

use super::auth::{self, Authorised, Denied};
use crate::db::Db;
use crate::error::ApiError;
use crate::http::conn::Conn;
use crate::http::request::{Head, Params};
use crate::http::response;
use crate::sim::Sim;
use crate::tasks;

/// Checks credentials, answering 401/403/500 itself when they fail.
pub fn authorise<'a>(
    sim: &'a Sim,
    conn: &mut Conn,
    head: &Head,
    params: &Params,
    action: &str,
) -> Option<Authorised<'a>> {
    let version = head.version();
    match auth::check(sim, head, params, action) {
        Ok(a) => Some(a),
        Err(Denied::Unauthorised) => {
            let _ = conn.write_all(&response::unauthorised(version, action));
            None
        }
        Err(Denied::Forbidden) => {
            let _ = conn.write_all(&response::forbidden(version));
            None
        }
        Err(Denied::UnknownScheme(s)) => {
            let _ = conn.write_all(&response::internal_error(
                version,
                &format!("Unknown authorization header: {s}"),
            ));
            None
        }
    }
}

/// A VDI named by ref or by UUID, as XAPI's `vdi_of_req` takes either.
pub fn vdi_named(db: &Db, name: &str) -> Result<String, ApiError> {
    if db.exists("VDI", name) {
        return Ok(name.to_owned());
    }
    db.find_uuid("VDI", name)
        .ok_or_else(|| ApiError::uuid_invalid("VDI", name))
}

/// Fails the task the request names, if it is still running.
pub fn fail_named_task(sim: &Sim, params: &Params, error: &ApiError) {
    if let Some(task) = params.get_cookie_first("task_id") {
        let mut db = sim.db();
        if db.exists(tasks::CLASS, task) && tasks::is_pending(&db, task) {
            tasks::fail(&mut db, task, error);
            sim.save(&mut db);
        }
    }
}

/// Answers as a pool member whose master holds the SR, if that fault is on.
pub fn redirect_if_member(sim: &Sim, conn: &mut Conn, head: &Head) -> bool {
    let Some(member) = sim.faults.take(|f| &mut f.pool_member, |_| true) else {
        return false;
    };
    let mut location = format!("{}://{}{}", sim.scheme(), member.master, head.path);
    if !head.query_string.is_empty() {
        location.push('?');
        location.push_str(&head.query_string);
    }
    let _ = conn.write_all(&response::bare(
        "1.1",
        "302 Found",
        &[("Location", &location)],
    ));
    true
}

/// The task the request names (`task_id`), or a new one like XAPI's own.
pub fn task_for(
    sim: &Sim,
    params: &Params,
    session: &str,
    label: &str,
) -> Result<String, ApiError> {
    let mut db = sim.db();
    let task = match params.get_cookie_first("task_id") {
        Some(t) if db.exists(tasks::CLASS, t) => t.to_owned(),
        Some(t) => return Err(ApiError::handle_invalid("task", t)),
        None => tasks::create(&mut db, label, "", session),
    };
    sim.save(&mut db);
    Ok(task)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Raw,
    Vhd,
    Tar,
    Qcow2,
}

impl Format {
    /// The `format` parameter (case-insensitive, raw by default); an unknown
    /// one is returned as it was given.
    pub fn of(params: &Params) -> Result<Self, String> {
        let Some(given) = params.get("format") else {
            return Ok(Format::Raw);
        };
        match given.to_ascii_lowercase().as_str() {
            "raw" => Ok(Format::Raw),
            "vhd" => Ok(Format::Vhd),
            "tar" => Ok(Format::Tar),
            "qcow2" => Ok(Format::Qcow2),
            _ => Err(given.to_owned()),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Vhd => "vhd",
            Format::Tar => "tar",
            Format::Qcow2 => "qcow2",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Raw => "application/octet-stream",
            Format::Vhd => "application/vhd",
            Format::Tar => "application/x-tar",
            Format::Qcow2 => "application/x-qemu-disk",
        }
    }
}

/// Fails `task` and answers with XAPI's bare error response.
pub fn fail_with(sim: &Sim, conn: &mut Conn, task: &str, error: &ApiError, status_head: Vec<u8>) {
    let mut db = sim.db();
    tasks::fail(&mut db, task, error);
    sim.save(&mut db);
    drop(db);
    let _ = conn.write_all(&status_head);
}
