//! A logged-in XAPI session: connecting, calls, transparent re-login, pool master redirect.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use reqwest::Url;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::error::{codes, Error, Result};
use crate::http::{host_of, Http, Options};
use crate::rpc;
use crate::secret::Secret;
use crate::tls::{Fingerprint, Trust};

/// XAPI API version announced at login.
const API_VERSION: &str = "2.21";
/// Asks a pool member to name its master's certificate when it answers HOST_IS_SLAVE.
const THUMBPRINT_REQUEST: (&str, &str) = (
    "x-xenapi-request-host-certificate-thumbprint",
    "sha-256:master",
);
const THUMBPRINT_REPLY: &str = "x-xenapi-response-host-certificate-thumbprint";
/// A member names the master, which may itself have been demoted meanwhile: follow a few.
const MAX_MASTER_HOPS: usize = 3;

/// How to reach and trust a host. Build it, then [`Connect::login`].
///
/// ```no_run
/// # fn main() -> Result<(), xenlift_xapi::Error> {
/// let pin = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89".parse()?;
/// let session = xenlift_xapi::Connect::new("https://xen1.example")
///     .pin(pin)
///     .login("root", "secret".into())?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Connect {
    url: String,
    trust: Option<Trust>,
    allow_plaintext: bool,
    options: Options,
}

impl Connect {
    /// `https://HOST[:PORT]`, or `http://HOST[:PORT]` together with [`Connect::allow_plaintext`].
    pub fn new(url: &str) -> Self {
        Connect {
            url: url.to_string(),
            trust: None,
            allow_plaintext: false,
            options: Options::default(),
        }
    }

    /// Trust only the certificate with this SHA-256 fingerprint.
    pub fn pin(mut self, fingerprint: Fingerprint) -> Self {
        self.trust = Some(Trust::Pinned(fingerprint));
        self
    }

    /// Trust certificates issued by the CAs in this PEM file.
    pub fn ca_bundle(mut self, path: impl Into<PathBuf>) -> Self {
        self.trust = Some(Trust::CaBundle(path.into()));
        self
    }

    pub fn trust(mut self, trust: Trust) -> Self {
        self.trust = Some(trust);
        self
    }

    /// Permit `http://`: the password and session id then travel in clear.
    pub fn allow_plaintext(mut self, allow: bool) -> Self {
        self.allow_plaintext = allow;
        self
    }

    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Checks the address and trust, then logs in (following a pool member to its master).
    pub fn login(self, user: &str, password: Secret) -> Result<Session> {
        let url = parse_base(&self.url)?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_plaintext => {
                tracing::warn!(
                    host = %host_of(&url),
                    "plain http: the password and the session id travel in clear on this network"
                );
            }
            "http" => {
                return Err(Error::PlaintextRefused {
                    host: host_of(&url),
                })
            }
            other => {
                return Err(Error::BadUrl {
                    url: self.url,
                    detail: format!("unknown scheme {other}: use https://"),
                })
            }
        }
        let http = Http::new(&url, self.trust.as_ref(), &self.options)?;
        let session = Session {
            base: RwLock::new(url),
            http,
            user: user.to_string(),
            password,
            options: self.options,
            id: RwLock::new((Secret::new(""), 0)),
            relogin_lock: Mutex::new(()),
            next_id: AtomicU64::new(1),
            set_progress_missing: AtomicBool::new(false),
            logged_out: AtomicBool::new(false),
            plaintext_allowed: self.allow_plaintext,
        };
        session.login_now()?;
        Ok(session)
    }
}

fn parse_base(text: &str) -> Result<Url> {
    let bad = |detail: &str| Error::BadUrl {
        url: text.to_string(),
        detail: detail.to_string(),
    };
    let url = Url::parse(text).map_err(|e| bad(&format!("{e}; expected https://HOST[:PORT]")))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials do not belong in the address"));
    }
    let mut base = url.clone();
    base.set_path("/");
    base.set_query(None);
    base.set_fragment(None);
    Ok(base)
}

/// The URL of the master named by HOST_IS_SLAVE: an address, optionally with a port.
pub(crate) fn master_url(current: &Url, master: &str) -> Option<Url> {
    let mut url = current.clone();
    let master = master.trim();
    if master.is_empty() {
        return None;
    }
    if let Ok(ip) = master.parse::<IpAddr>() {
        url.set_ip_host(ip).ok()?;
        return Some(url);
    }
    if let Ok(addr) = master.parse::<std::net::SocketAddr>() {
        url.set_ip_host(addr.ip()).ok()?;
        url.set_port(Some(addr.port())).ok()?;
        return Some(url);
    }
    match master.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) && !host.contains(':') => {
            url.set_host(Some(host)).ok()?;
            url.set_port(Some(port.parse().ok()?)).ok()?;
        }
        _ => url.set_host(Some(master)).ok()?,
    }
    Some(url)
}

/// A logged-in session. `Send + Sync`: share it between threads (in an `Arc`).
/// Logs out when dropped; [`Session::logout`] does it with an error you can see.
pub struct Session {
    /// The pool master's base URL (changes only while logging in).
    base: RwLock<Url>,
    pub(crate) http: Http,
    user: String,
    password: Secret,
    pub(crate) options: Options,
    /// Session id and a generation counter, bumped on each login.
    id: RwLock<(Secret, u64)>,
    relogin_lock: Mutex<()>,
    next_id: AtomicU64,
    set_progress_missing: AtomicBool,
    logged_out: AtomicBool,
    plaintext_allowed: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("host", &self.host())
            .field("user", &self.user)
            .field("session_id", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Session {
    /// `host:port` of the pool master this session talks to.
    pub fn host(&self) -> String {
        host_of(&self.base())
    }

    /// The master's base URL (carries no secret).
    pub fn base_url(&self) -> Url {
        self.base()
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    pub(crate) fn base(&self) -> Url {
        self.base.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn current_id(&self) -> (Secret, u64) {
        self.id.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn next_request_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// True when plain http was explicitly allowed (redirects may then go to http too).
    pub(crate) fn plaintext_allowed(&self) -> bool {
        self.plaintext_allowed
    }

    /// Logs in at the current base, following HOST_IS_SLAVE to the master.
    fn login_now(&self) -> Result<()> {
        let mut base = self.base();
        let pinned = self.http.pins.is_some();
        for hop in 0..=MAX_MASTER_HOPS {
            let params = [
                json!(self.user),
                json!(self.password.expose()),
                json!(API_VERSION),
                json!(self.options.client_name),
            ];
            let headers: &[(&str, &str)] = if pinned { &[THUMBPRINT_REQUEST] } else { &[] };
            let reply = rpc::call(
                &self.http,
                &base,
                self.next_request_id(),
                "session.login_with_password",
                &params,
                headers,
                self.password.expose(),
            )?;
            match reply.outcome {
                Ok(Value::String(id)) => {
                    *self.base.write().unwrap_or_else(|p| p.into_inner()) = base;
                    let mut slot = self.id.write().unwrap_or_else(|p| p.into_inner());
                    *slot = (Secret::new(id), slot.1 + 1);
                    return Ok(());
                }
                Ok(other) => {
                    return Err(Error::Protocol {
                        host: host_of(&base),
                        what: "session.login_with_password".into(),
                        detail: format!("expected a session reference, got {}", kind_of(&other)),
                    })
                }
                Err(error) if error.is(codes::HOST_IS_SLAVE) && hop < MAX_MASTER_HOPS => {
                    let master = error.param(0).unwrap_or_default();
                    let Some(next) = master_url(&base, master) else {
                        return Err(Error::Api {
                            host: host_of(&base),
                            call: "session.login_with_password".into(),
                            error,
                        });
                    };
                    if let (Some(pins), Some(value)) =
                        (&self.http.pins, reply.headers.get(THUMBPRINT_REPLY))
                    {
                        // Told over a connection pinned to the member: as trustworthy as the member.
                        match value
                            .to_str()
                            .ok()
                            .and_then(|v| v.parse::<Fingerprint>().ok())
                        {
                            Some(fp) => pins.add(fp),
                            None => tracing::warn!(
                                "unreadable master certificate thumbprint in HOST_IS_SLAVE reply"
                            ),
                        }
                    }
                    tracing::info!(member = %host_of(&base), master = %host_of(&next), "host is a pool member; logging in to the pool master");
                    base = next;
                }
                Err(error) => {
                    return Err(Error::Api {
                        host: host_of(&base),
                        call: "session.login_with_password".into(),
                        error,
                    })
                }
            }
        }
        Err(Error::Protocol {
            host: host_of(&base),
            what: "session.login_with_password".into(),
            detail: "pool members keep naming other masters".into(),
        })
    }

    /// Logs in again unless another thread already did since `generation`.
    pub(crate) fn relogin(&self, generation: u64) -> Result<()> {
        let _guard = self.relogin_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.current_id().1 != generation {
            return Ok(());
        }
        tracing::info!(host = %self.host(), "XAPI session no longer valid; logging in again");
        self.login_now()
    }

    /// Calls `method` with the session id first and `args` after. A SESSION_INVALID answer
    /// triggers one new login and one retry.
    pub fn call(&self, method: &str, args: &[Value]) -> Result<Value> {
        let mut relogged = false;
        loop {
            let (id, generation) = self.current_id();
            let mut params = Vec::with_capacity(args.len() + 1);
            params.push(json!(id.expose()));
            params.extend_from_slice(args);
            let base = self.base();
            let reply = rpc::call(
                &self.http,
                &base,
                self.next_request_id(),
                method,
                &params,
                &[],
                id.expose(),
            )?;
            match reply.outcome {
                Ok(value) => return Ok(value),
                Err(error) if error.is(codes::SESSION_INVALID) && !relogged => {
                    relogged = true;
                    self.relogin(generation)?;
                }
                Err(error) => {
                    return Err(Error::Api {
                        host: host_of(&base),
                        call: method.to_string(),
                        error,
                    })
                }
            }
        }
    }

    /// [`Session::call`] with the result decoded into `T`.
    pub fn call_as<T: DeserializeOwned>(&self, method: &str, args: &[Value]) -> Result<T> {
        let value = self.call(method, args)?;
        let shown = kind_of(&value);
        serde_json::from_value(value).map_err(|e| Error::Protocol {
            host: self.host(),
            what: method.to_string(),
            detail: format!("unexpected result ({shown}): {e}"),
        })
    }

    /// [`Session::call`] for calls whose result is void.
    pub fn call_void(&self, method: &str, args: &[Value]) -> Result<()> {
        self.call(method, args).map(drop)
    }

    /// Ends the session on the host.
    pub fn logout(self) -> Result<()> {
        self.logged_out.store(true, Ordering::Relaxed);
        self.logout_now()
    }

    fn logout_now(&self) -> Result<()> {
        let (id, _) = self.current_id();
        let base = self.base();
        let reply = rpc::call(
            &self.http,
            &base,
            self.next_request_id(),
            "session.logout",
            &[json!(id.expose())],
            &[],
            id.expose(),
        )?;
        match reply.outcome {
            Ok(_) => Ok(()),
            // Already gone: the goal is reached.
            Err(error) if error.is(codes::SESSION_INVALID) => Ok(()),
            Err(error) => Err(Error::Api {
                host: host_of(&base),
                call: "session.logout".into(),
                error,
            }),
        }
    }

    /// Remembers that the host has no `task.set_progress`.
    pub(crate) fn set_progress_missing(&self) -> &AtomicBool {
        &self.set_progress_missing
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.logged_out.swap(true, Ordering::Relaxed) {
            if let Err(e) = self.logout_now() {
                tracing::debug!(error = %e, "logout on drop failed");
            }
        }
    }
}

/// A short description of a JSON value's shape, never its content (it may be secret).
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a record",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked() {
        assert_eq!(
            parse_base("https://h:4443/x?y").unwrap().as_str(),
            "https://h:4443/"
        );
        assert!(matches!(parse_base("h:4443"), Err(Error::BadUrl { .. })));
        assert!(matches!(
            parse_base("https://root:pw@h/"),
            Err(Error::BadUrl { .. })
        ));
    }

    #[test]
    fn plaintext_needs_the_option() {
        let err = Connect::new("http://127.0.0.1:1")
            .login("root", "pw".into())
            .unwrap_err();
        assert!(matches!(err, Error::PlaintextRefused { .. }), "{err}");
        assert!(err.to_string().contains("in clear"), "{err}");
    }

    #[test]
    fn https_needs_a_trust_anchor() {
        let err = Connect::new("https://127.0.0.1:1")
            .login("root", "pw".into())
            .unwrap_err();
        assert!(matches!(err, Error::Tls { .. }), "{err}");
        assert!(err.to_string().contains("fingerprint"), "{err}");
    }

    #[test]
    fn master_addresses_with_and_without_port() {
        let base = Url::parse("https://10.0.0.2:4443/").unwrap();
        let rows = [
            ("10.0.0.1", "https://10.0.0.1:4443/"),
            ("10.0.0.1:443", "https://10.0.0.1/"),
            ("127.0.0.1:8443", "https://127.0.0.1:8443/"),
            ("master.example", "https://master.example:4443/"),
            ("master.example:9", "https://master.example:9/"),
            ("fd00::1", "https://[fd00::1]:4443/"),
            ("[fd00::1]:5", "https://[fd00::1]:5/"),
        ];
        for (i, (master, want)) in rows.iter().enumerate() {
            let got = master_url(&base, master).map(|u| u.to_string());
            assert_eq!(got.as_deref(), Some(*want), "row {i}: {master}");
        }
        assert!(master_url(&base, "").is_none());
    }
}
