//! The XAPI calls: finding the handler for a method name, checking the
//! parameter count, the session and RBAC as XAPI does, running it, and
//! saving the database when the call changed it.

mod args;
mod devices;
mod generic;
mod session;
mod sr;
mod task;
mod vdi;
mod vm;

pub use session::create_session;
pub use sr::{is_thick, refresh_usage, refresh_usage_of_dir};
pub use vdi::{create_vdi, NewVdi};

use args::Args;
use generic::Generic;

use crate::db::classes::{class, CLASSES};
use crate::db::schema::Class;
use crate::db::Db;
use crate::error::ApiError;
use crate::sim::Sim;
use crate::tasks;
use crate::value::Value;

/// What a call runs in: the simulator, the locked database, the session.
pub struct Ctx<'a> {
    pub sim: &'a Sim,
    pub db: &'a mut Db,
    pub session: String,
}

type Handler = fn(&mut Ctx, &Args) -> Result<Value, ApiError>;

/// A call as it arrived: method name, parameters (session first) and the
/// certificate-thumbprint request header, if any.
pub struct Incoming<'a> {
    pub method: &'a str,
    pub params: Vec<Value>,
    pub thumbprint_request: Option<&'a str>,
}

/// A call's outcome and extra response headers.
pub struct Reply {
    pub result: Result<Value, ApiError>,
    pub headers: Vec<(String, String)>,
}

impl From<Result<Value, ApiError>> for Reply {
    fn from(result: Result<Value, ApiError>) -> Self {
        Reply {
            result,
            headers: Vec::new(),
        }
    }
}

enum Run {
    Custom(Handler),
    Generic(&'static Class, Generic),
}

/// Finds the class and operation of `VM.get_record` (or XAPI's alternative
/// spelling `VM_get_record`).
fn split(method: &str) -> Option<(&'static Class, &str)> {
    if let Some((c, op)) = method.split_once('.') {
        return class(c).map(|c| (c, op));
    }
    CLASSES
        .iter()
        .filter_map(|c| {
            method
                .strip_prefix(c.name)?
                .strip_prefix('_')
                .map(|op| (c, op))
        })
        .next()
}

fn custom(class: &str, op: &str) -> Option<(usize, Handler)> {
    match class {
        "session" => session::method(op),
        "VM" => vm::method(op),
        "VDI" => vdi::method(op),
        "VBD" | "VIF" => devices::method(class, op),
        "SR" => sr::method(op),
        "task" => task::method(op),
        _ => None,
    }
}

fn resolve(method: &str) -> Option<(usize, Run)> {
    let (class, op) = split(method)?;
    if let Some((arity, handler)) = custom(class.name, op) {
        return Some((arity, Run::Custom(handler)));
    }
    let generic = Generic::lookup(class, op)?;
    Some((generic.arity(), Run::Generic(class, generic)))
}

/// Runs one call.
pub fn call(sim: &Sim, incoming: Incoming) -> Reply {
    let (is_async, method) = match incoming.method.strip_prefix("Async.") {
        Some(m) => (true, m),
        None => (false, incoming.method),
    };
    if method == "session.login_with_password" {
        return session::login(sim, &incoming.params, incoming.thumbprint_request);
    }
    let Some((arity, run)) = resolve(method) else {
        return Err(ApiError::method_unknown(incoming.method)).into();
    };
    let received = incoming.params.len() as i64 - 1;
    if received != arity as i64 {
        return Err(ApiError::with(
            "MESSAGE_PARAMETER_COUNT_MISMATCH",
            vec![method.to_owned(), arity.to_string(), received.to_string()],
        ))
        .into();
    }
    let session = incoming
        .params
        .first()
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let args = Args {
        values: incoming.params.get(1..).unwrap_or(&[]),
    };
    let mut db = sim.db();
    if !db.exists("session", &session) {
        return Err(ApiError::session_invalid(&session)).into();
    }
    if sim
        .faults
        .take(|f| &mut f.rbac_deny, |r| r.denies(method))
        .is_some()
    {
        return Err(ApiError::new(
            "RBAC_PERMISSION_DENIED",
            &[method, "No permission in user session"],
        ))
        .into();
    }
    let mut ctx = Ctx {
        sim,
        db: &mut db,
        session: session.clone(),
    };
    let task = is_async.then(|| tasks::create(ctx.db, &format!("Async.{method}"), "", &session));
    let result = match run {
        Run::Custom(handler) => handler(&mut ctx, &args),
        Run::Generic(class, generic) => generic.run(&mut ctx, class, &args),
    };
    let result = match task {
        None => result,
        Some(task) => {
            match &result {
                Ok(Value::Nil) => tasks::complete(ctx.db, &task, None),
                Ok(v) => tasks::complete(ctx.db, &task, Some(v)),
                Err(e) => tasks::fail(ctx.db, &task, e),
            }
            Ok(Value::Str(task))
        }
    };
    sim.save(&mut db);
    // XAPI sends `void` as an empty string, in both protocols.
    result
        .map(|v| if v == Value::Nil { Value::str("") } else { v })
        .into()
}
