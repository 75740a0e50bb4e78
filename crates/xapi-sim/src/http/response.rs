//! Response heads in the exact forms XAPI's HTTP server writes.

/// A status line and headers, ending with the blank line.
pub fn head(version: &str, status: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!("HTTP/{version} {status}\r\n");
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// XAPI's bare responses (`http_404_missing`, `http_400_badrequest`...):
/// status, `Connection: close`, no-cache, no body.
pub fn bare(version: &str, status: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut headers = vec![
        ("Connection", "close"),
        ("Cache-Control", "no-cache, no-store"),
    ];
    headers.extend_from_slice(extra);
    head(version, status, &headers)
}

/// XAPI's HTML error pages (401, 403, 500) with their body.
pub fn error_page(version: &str, status: &str, extra: &[(&str, &str)], body: &str) -> Vec<u8> {
    let length = body.len().to_string();
    let mut headers = vec![
        ("content-type", "text/html"),
        ("Connection", "close"),
        ("Cache-Control", "no-cache, no-store"),
    ];
    headers.extend_from_slice(extra);
    headers.push(("content-length", &length));
    let mut out = head(version, status, &headers);
    out.extend_from_slice(body.as_bytes());
    out
}

pub fn unauthorised(version: &str, realm: &str) -> Vec<u8> {
    let challenge = format!("Basic realm=\"{realm}\"");
    error_page(
        version,
        "401 Unauthorised",
        &[("WWW-Authenticate", &challenge)],
        "<html><body><h1>HTTP 401 unauthorised</h1>Please check your credentials and retry.</body></html>",
    )
}

pub fn forbidden(version: &str) -> Vec<u8> {
    error_page(
        version,
        "403 Forbidden",
        &[],
        "<html><body><h1>HTTP 403 forbidden</h1>Access to the requested resource is forbidden.</body></html>",
    )
}

pub fn internal_error(version: &str, detail: &str) -> Vec<u8> {
    let body = format!(
        "<html><body><h1>HTTP 500 internal server error</h1>An unexpected error occurred; please wait a while and try again. If the problem persists, please contact your support representative.<h1> Additional information </h1>{}</body></html>",
        quick_xml::escape::escape(detail)
    );
    error_page(version, "500 Internal Error", &[], &body)
}

/// A complete response with a body and its length (RPC answers, control).
pub fn with_body(
    version: &str,
    status: &str,
    keep_alive: bool,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let length = body.len().to_string();
    let mut headers = vec![
        (
            "Connection",
            if keep_alive { "keep-alive" } else { "close" },
        ),
        ("Cache-Control", "no-cache, no-store"),
        ("content-length", length.as_str()),
    ];
    headers.extend_from_slice(extra);
    let mut out = head(version, status, &headers);
    out.extend_from_slice(body);
    out
}
