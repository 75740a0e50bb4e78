//! Request heads (parsed by httparse) and XAPI's ways of passing parameters:
//! the query string and cookies.

use std::io;

use percent_encoding::percent_decode_str;

#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// The connection failed while the head was being read.
    #[error("reading the request: {0}")]
    Io(#[source] io::Error),
    /// The head is not HTTP.
    #[error("malformed request head: {0}")]
    Malformed(String),
    /// The head is larger than any client of XAPI sends.
    #[error("request head too large")]
    TooLarge,
}

#[derive(Debug, Clone)]
pub struct Head {
    pub method: String,
    pub path: String,
    /// The raw query string, without the `?`.
    pub query_string: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn parse(bytes: &[u8]) -> Result<Self, HeadError> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(bytes) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(HeadError::Malformed("incomplete".into())),
            Err(e) => return Err(HeadError::Malformed(e.to_string())),
        }
        let target = req.path.unwrap_or("/");
        let (path, query_string) = target.split_once('?').unwrap_or((target, ""));
        Ok(Head {
            method: req.method.unwrap_or("").to_owned(),
            path: path.to_owned(),
            query_string: query_string.to_owned(),
            minor_version: req.version.unwrap_or(1),
            headers: req
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
    }

    /// `Content-Length`, if given; a bad one is an error.
    pub fn content_length(&self) -> Result<Option<u64>, HeadError> {
        self.header("content-length")
            .map(|v| {
                v.parse()
                    .map_err(|_| HeadError::Malformed(format!("bad content-length {v:?}")))
            })
            .transpose()
    }

    /// "1.1" or "1.0", the version XAPI answers with.
    pub fn version(&self) -> &'static str {
        if self.minor_version == 0 {
            "1.0"
        } else {
            "1.1"
        }
    }

    /// Whether the client wants the connection kept for another request.
    pub fn keep_alive(&self) -> bool {
        let connection = self.header("connection").map(str::to_ascii_lowercase);
        match self.minor_version {
            0 => connection.as_deref() == Some("keep-alive"),
            _ => connection.as_deref() != Some("close"),
        }
    }

    pub fn query(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query_string.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// Cookies as XAPI parses them: `a=b; c=d`, or the old `a=b&c=d`.
    pub fn cookies(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for header in self.headers.iter().filter(|(n, _)| n == "cookie") {
            let sep = if header.1.contains(';') { ';' } else { '&' };
            for pair in header.1.split(sep) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let decode = |s: &str| {
                    percent_decode_str(s.trim())
                        .decode_utf8_lossy()
                        .into_owned()
                };
                if !k.trim().is_empty() {
                    out.push((decode(k), decode(v)));
                }
            }
        }
        out
    }
}

/// The parameters of a transfer request: query and cookies.
#[derive(Debug, Clone)]
pub struct Params {
    query: Vec<(String, String)>,
    cookies: Vec<(String, String)>,
}

impl Params {
    pub fn of(head: &Head) -> Self {
        Self {
            query: head.query(),
            cookies: head.cookies(),
        }
    }

    fn find<'a>(list: &'a [(String, String)], key: &str) -> Option<&'a str> {
        list.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Query first, then cookies (`vdi`, `format`, `chunked`).
    pub fn get(&self, key: &str) -> Option<&str> {
        Self::find(&self.query, key).or_else(|| Self::find(&self.cookies, key))
    }

    /// Cookies first, then query (`session_id`, `task_id`, `sr_id`), as
    /// XAPI looks those up.
    pub fn get_cookie_first(&self, key: &str) -> Option<&str> {
        Self::find(&self.cookies, key).or_else(|| Self::find(&self.query, key))
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_cookies() {
        let head = Head::parse(
            b"PUT /import_raw_vdi?vdi=OpaqueRef%3Aab&chunked&format=VHD HTTP/1.1\r\nCookie: session_id=OpaqueRef:s; task_id=t%31\r\nContent-Length: 12\r\n\r\n",
        )
        .unwrap();
        assert_eq!(head.path, "/import_raw_vdi");
        assert_eq!(head.content_length().unwrap(), Some(12));
        let p = Params::of(&head);
        assert_eq!(p.get("vdi"), Some("OpaqueRef:ab"));
        assert!(p.has("chunked"));
        assert_eq!(p.get("format"), Some("VHD"));
        assert_eq!(p.get_cookie_first("session_id"), Some("OpaqueRef:s"));
        assert_eq!(p.get_cookie_first("task_id"), Some("t1"));
        assert!(head.keep_alive());
    }

    #[test]
    fn old_style_cookies() {
        let head = Head::parse(b"GET / HTTP/1.0\r\nCookie: a=1&b=2\r\n\r\n").unwrap();
        assert_eq!(
            head.cookies(),
            vec![("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        assert!(!head.keep_alive());
    }
}
