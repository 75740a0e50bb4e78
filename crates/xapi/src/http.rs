//! The HTTP clients under the session: one for calls (with a timeout), one for bulk
//! transfers (none), both with the same TLS trust, no proxies, no automatic redirects.

use std::sync::Arc;
use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::redirect::Policy;
use reqwest::Url;

use crate::error::{chain_text, Error, Result};
use crate::secret::scrub;
use crate::tls::{ca_config, pinned_config, PinSet, Trust};
use crate::upload::{PutError, Uploader};

/// Timeouts and polling of a session.
#[derive(Debug, Clone)]
pub struct Options {
    /// Longest time one XAPI call may take (VM.clone and VM.provision can be slow).
    pub call_timeout: Duration,
    /// Longest time to open a TCP connection.
    pub connect_timeout: Duration,
    /// How often a running task is polled.
    pub poll_interval: Duration,
    /// After a broken upload, how long to wait for the host to finish the task.
    pub task_settle_timeout: Duration,
    /// Sent to XAPI as the client name at login (shown in its session list).
    pub client_name: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            call_timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(500),
            task_settle_timeout: Duration::from_secs(120),
            client_name: format!("xenlift/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// `host:port` of a URL, for messages.
pub(crate) fn host_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

pub(crate) struct Http {
    pub(crate) calls: Client,
    pub(crate) bulk: Client,
    /// Uploads (large chunks; see `upload`).
    pub(crate) upload: Uploader,
    /// Present when the server is trusted by pinning.
    pub(crate) pins: Option<Arc<PinSet>>,
}

impl Http {
    pub(crate) fn new(url: &Url, trust: Option<&Trust>, options: &Options) -> Result<Http> {
        let host = host_of(url);
        let pins = match trust {
            Some(Trust::Pinned(fp)) => Some(Arc::new(PinSet::new(*fp))),
            _ => None,
        };
        let tls = || -> Result<Option<rustls::ClientConfig>> {
            if url.scheme() != "https" {
                return Ok(None);
            }
            let config = match (trust, &pins) {
                (Some(Trust::Pinned(_)), Some(pins)) => pinned_config(pins.clone(), &host)?,
                (Some(Trust::CaBundle(path)), _) => ca_config(path, &host)?,
                _ => {
                    return Err(Error::Tls {
                        host: host.clone(),
                        detail: "no way to trust the server: pin its certificate's SHA-256 \
                                 fingerprint or give a CA bundle"
                            .into(),
                    })
                }
            };
            Ok(Some(config))
        };
        let setup_error = |detail: String| Error::Tls {
            host: host.clone(),
            detail,
        };
        let build = |timeout: Option<Duration>| -> Result<Client> {
            let mut builder = Client::builder()
                .redirect(Policy::none())
                .no_proxy()
                .http1_only()
                .user_agent(options.client_name.clone())
                .connect_timeout(options.connect_timeout)
                .timeout(timeout);
            if let Some(config) = tls()? {
                builder = builder.use_preconfigured_tls(config);
            }
            builder.build().map_err(|e| setup_error(chain_text(&e)))
        };
        let mut upload = reqwest::Client::builder()
            .redirect(Policy::none())
            .no_proxy()
            .http1_only()
            .user_agent(options.client_name.clone())
            .connect_timeout(options.connect_timeout);
        if let Some(config) = tls()? {
            upload = upload.use_preconfigured_tls(config);
        }
        let upload = Uploader::new(upload).map_err(|e| match e {
            PutError::Http(e) => setup_error(chain_text(&e)),
            PutError::Io(e) => setup_error(format!("starting the upload runtime: {e}")),
        })?;
        Ok(Http {
            calls: build(Some(options.call_timeout))?,
            bulk: build(None)?,
            upload,
            pins,
        })
    }

    /// Turns a reqwest failure into our error: a pin mismatch if the verifier refused the
    /// certificate, otherwise a transport error. URLs and `secret` never reach the text.
    pub(crate) fn error(&self, url: &Url, what: &str, err: reqwest::Error, secret: &str) -> Error {
        let host = host_of(url);
        if let Some(seen) = self.pins.as_ref().and_then(|p| p.take_refused()) {
            let expected = self.pins.as_ref().map(|p| p.describe()).unwrap_or_default();
            return Error::FingerprintMismatch {
                host,
                seen,
                expected,
            };
        }
        let detail = scrub(&chain_text(&err.without_url()), secret);
        Error::Transport {
            host,
            what: what.to_string(),
            detail,
        }
    }
}
