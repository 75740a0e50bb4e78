//! Who may transfer: XAPI's order of credentials for HTTP handlers (session
//! ref in a cookie or the query, pool secret, Basic auth with a temporary
//! session), then the RBAC check of the HTTP action.

use base64::Engine as _;

use crate::api::create_session;
use crate::error::ApiError;
use crate::http::request::{Head, Params};
use crate::sim::Sim;
use crate::tasks;

pub enum Denied {
    /// 401 with `WWW-Authenticate: Basic realm="<action>"`.
    Unauthorised,
    /// 403: RBAC refused the action.
    Forbidden,
    /// An `Authorization` scheme XAPI does not know: a 500.
    UnknownScheme(String),
}

/// A session allowed to run the action; a temporary one (Basic auth) is
/// logged out when this is dropped.
pub struct Authorised<'a> {
    sim: &'a Sim,
    pub session: String,
    temporary: bool,
}

impl Drop for Authorised<'_> {
    fn drop(&mut self) {
        if self.temporary {
            let mut db = self.sim.db();
            db.destroy("session", &self.session);
        }
    }
}

pub fn check<'a>(
    sim: &'a Sim,
    head: &Head,
    params: &Params,
    action: &str,
) -> Result<Authorised<'a>, Denied> {
    let authorised = if let Some(session) = params.get_cookie_first("session_id") {
        if !sim.db().exists("session", session) {
            return Err(Denied::Unauthorised);
        }
        Authorised {
            sim,
            session: session.to_owned(),
            temporary: false,
        }
    } else if params.get_cookie_first("pool_secret").is_some() {
        // There is no pool secret to match.
        return Err(Denied::Unauthorised);
    } else if let Some(header) = head.header("authorization") {
        let Some(encoded) = header.strip_prefix("Basic ") else {
            return Err(Denied::UnknownScheme(
                header.split(' ').next().unwrap_or("").to_owned(),
            ));
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| Denied::Unauthorised)?;
        let text = String::from_utf8_lossy(&decoded);
        let (user, password) = text.split_once(':').ok_or(Denied::Unauthorised)?;
        if !sim.credentials_ok(user, password) {
            return Err(Denied::Unauthorised);
        }
        let session = create_session(&mut sim.db(), user, "using Basic auth")
            .map_err(|_| Denied::Unauthorised)?;
        Authorised {
            sim,
            session,
            temporary: true,
        }
    } else {
        return Err(Denied::Unauthorised);
    };
    let permission = format!("http/{action}");
    if sim
        .faults
        .take(|f| &mut f.rbac_deny, |r| r.denies(&permission))
        .is_some()
    {
        let error = ApiError::with(
            "RBAC_PERMISSION_DENIED",
            vec![permission, "No permission in user session".into()],
        );
        if let Some(task) = params.get_cookie_first("task_id") {
            let mut db = sim.db();
            if db.exists(tasks::CLASS, task) {
                tasks::fail(&mut db, task, &error);
                sim.save(&mut db);
            }
        }
        return Err(Denied::Forbidden);
    }
    Ok(authorised)
}
