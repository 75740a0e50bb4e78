//! Fetching an answer file over HTTP or HTTPS (`xenlift.config=URL`), one
//! per machine when the URL holds `${mac}`.

use std::time::Duration;

/// Fetch failures, each saying what to check.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("answer file URL {0:?} must start with http:// or https://")]
    Scheme(String),
    #[error("answer file URL {0:?} uses ${{mac}} but no network link was configured")]
    NoMac(String),
    #[error(
        "fetching the answer file from {url} failed after {tries} tries: {reason}; \
         check the URL and that the web server is reachable from this machine"
    )]
    Unreachable {
        url: String,
        tries: u32,
        reason: String,
    },
    #[error(
        "the web server answered {status} for {url}: is the answer file for this machine there?"
    )]
    Status { url: String, status: u16 },
    #[error("setting up TLS: {0}")]
    Tls(String),
}

/// `${mac}` -> `52:54:00:12:34:56`, `${mac_hyphens}` -> `52-54-00-12-34-56`.
pub fn expand_url(template: &str, mac: Option<&str>) -> Result<String, FetchError> {
    if !template.contains("${") {
        return Ok(template.to_string());
    }
    let Some(mac) = mac else {
        return Err(FetchError::NoMac(template.into()));
    };
    let mac = mac.to_ascii_lowercase();
    Ok(template
        .replace("${mac_hyphens}", &mac.replace(':', "-"))
        .replace("${mac}", &mac))
}

/// Retried as curl does for transient answers.
fn transient(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Gets the body at `url` (already expanded).
pub fn fetch(url: &str) -> Result<String, FetchError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(FetchError::Scheme(url.into()));
    }
    let client = client()?;
    let tries = 4;
    let mut reason = String::new();
    for attempt in 1..=tries {
        match client.get(url).send() {
            Ok(resp) => {
                let status = resp.status().as_u16();
                if resp.status().is_success() {
                    return resp.text().map_err(|e| FetchError::Unreachable {
                        url: url.into(),
                        tries: attempt,
                        reason: e.to_string(),
                    });
                }
                if !transient(status) {
                    return Err(FetchError::Status {
                        url: url.into(),
                        status,
                    });
                }
                reason = format!("HTTP status {status}");
            }
            Err(e) => reason = error_chain(&e),
        }
        if attempt < tries {
            std::thread::sleep(Duration::from_secs(1 << attempt).min(Duration::from_secs(8)));
        }
    }
    Err(FetchError::Unreachable {
        url: url.into(),
        tries,
        reason,
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// HTTPS trusts the Mozilla root store shipped in the binary (the appliance
/// has no system store).
fn client() -> Result<reqwest::blocking::Client, FetchError> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::blocking::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| FetchError::Tls(error_chain(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    #[test]
    fn urls_expand_per_machine() {
        let mac = Some("52:54:00:AB:cd:01");
        let rows: &[(&str, Option<&str>, Option<&str>)] = &[
            ("http://h/a.toml", None, Some("http://h/a.toml")),
            (
                "http://h/${mac}.toml",
                mac,
                Some("http://h/52:54:00:ab:cd:01.toml"),
            ),
            (
                "http://h/m/${mac_hyphens}",
                mac,
                Some("http://h/m/52-54-00-ab-cd-01"),
            ),
            ("http://h/${mac}.toml", None, None),
        ];
        for (i, (template, mac, want)) in rows.iter().enumerate() {
            let got = expand_url(template, *mac).ok();
            assert_eq!(got.as_deref(), *want, "row {i}: {template}");
        }
    }

    /// One-shot HTTP server on 127.0.0.1 answering `status` with `body`.
    fn serve_once(status: &'static str, body: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let mut reader = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        format!("http://{addr}/answer.toml")
    }

    #[test]
    fn fetches_over_http_and_reports_failures() {
        let url = serve_once("200 OK", "to = \"dir:/x\"\n");
        assert_eq!(fetch(&url).unwrap(), "to = \"dir:/x\"\n");
        let url = serve_once("404 Not Found", "");
        let err = fetch(&url).unwrap_err();
        assert!(
            matches!(err, FetchError::Status { status: 404, .. }),
            "{err}"
        );
        assert!(matches!(fetch("ftp://h/a"), Err(FetchError::Scheme(_))));
    }
}
