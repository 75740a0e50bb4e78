//! Logging in and out, including the pool-member answer (`HOST_IS_SLAVE`).

use serde_json::json;

use super::args::Args;
use super::{Ctx, Handler, Reply};
use crate::clock;
use crate::db::classes::class;
use crate::db::{Db, Record};
use crate::error::ApiError;
use crate::sim::Sim;
use crate::value::Value;

pub const THUMBPRINT_RESPONSE: &str = "x-xenapi-response-host-certificate-thumbprint";

pub fn method(op: &str) -> Option<(usize, Handler)> {
    Some(match op {
        "logout" => (0, logout),
        _ => return None,
    })
}

/// `session.login_with_password(uname, pwd[, version, originator])`.
pub fn login(sim: &Sim, params: &[Value], thumbprint_request: Option<&str>) -> Reply {
    if !(2..=4).contains(&params.len()) {
        return Err(ApiError::count_mismatch(
            "session.login_with_password",
            2,
            params.len(),
        ))
        .into();
    }
    if let Some(member) = sim.faults.take(|f| &mut f.pool_member, |_| true) {
        let fingerprint = match thumbprint_request {
            Some("sha-256:master") => Some(
                member
                    .master_fingerprint_sha256
                    .unwrap_or_else(|| sim.identity.fingerprint_sha256.clone()),
            ),
            Some("sha-1:master") => Some(
                member
                    .master_fingerprint_sha1
                    .unwrap_or_else(|| sim.identity.fingerprint_sha1.clone()),
            ),
            _ => None,
        };
        return Reply {
            result: Err(ApiError::with("HOST_IS_SLAVE", vec![member.master])),
            headers: fingerprint
                .map(|f| vec![(THUMBPRINT_RESPONSE.to_owned(), f)])
                .unwrap_or_default(),
        };
    }
    let user = params.first().and_then(Value::as_str).unwrap_or("");
    let password = params.get(1).and_then(Value::as_str).unwrap_or("");
    if !sim.credentials_ok(user, password) {
        return Err(ApiError::new(
            "SESSION_AUTHENTICATION_FAILED",
            &[user, "Authentication failure"],
        ))
        .into();
    }
    let originator = params.get(3).and_then(Value::as_str).unwrap_or("");
    let mut db = sim.db();
    create_session(&mut db, user, originator)
        .map(Value::Str)
        .into()
}

/// A new session object for `user`.
pub fn create_session(db: &mut Db, user: &str, originator: &str) -> Result<String, ApiError> {
    let host = db.refs("host").into_iter().next().unwrap_or_default();
    let mut fields = Record::new();
    fields.insert("this_host".into(), json!(host));
    fields.insert("last_active".into(), json!(clock::now()));
    fields.insert("validation_time".into(), json!(clock::now()));
    fields.insert("auth_user_name".into(), json!(user));
    fields.insert("originator".into(), json!(originator));
    let session_class = class("session").ok_or_else(|| ApiError::internal("no session class"))?;
    Ok(db.create(session_class, fields))
}

fn logout(ctx: &mut Ctx, _: &Args) -> Result<Value, ApiError> {
    let session = ctx.session.clone();
    ctx.db.destroy("session", &session);
    Ok(Value::Nil)
}
