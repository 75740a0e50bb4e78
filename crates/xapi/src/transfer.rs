//! Disk transfers: `PUT /import_raw_vdi` and `GET /export_raw_vdi`.

use std::fmt;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use reqwest::blocking::Response;
use reqwest::header::{CONTENT_LENGTH, LOCATION};
use reqwest::Url;

use crate::error::{Error, Result, XapiError};
use crate::http::host_of;
use crate::session::Session;
use crate::types::{ref_from_task_result, ExportFormat, ImportFormat, TaskRef, TaskStatus, VdiRef};
use crate::upload::PutError;

/// Redirects followed per transfer (XAPI sends at most one: to the host that sees the SR).
const MAX_REDIRECTS: usize = 3;

/// Bytes transferred so far, readable from another thread (for a console progress line).
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<AtomicU64>);

impl Progress {
    pub fn new() -> Self {
        Progress::default()
    }

    pub fn bytes(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
}

/// One upload: a body of exactly `length` bytes in `format` onto an existing VDI.
pub struct ImportRequest {
    vdi: VdiRef,
    format: ImportFormat,
    length: u64,
    body: Box<dyn Read + Send + 'static>,
    task: Option<TaskRef>,
    progress: Progress,
}

impl ImportRequest {
    /// `length` is the exact number of bytes `body` yields; it becomes the Content-Length.
    pub fn new(
        vdi: VdiRef,
        format: ImportFormat,
        body: impl Read + Send + 'static,
        length: u64,
    ) -> Self {
        ImportRequest {
            vdi,
            format,
            length,
            body: Box::new(body),
            task: None,
            progress: Progress::new(),
        }
    }

    /// Report on this task (XAPI sets its progress while it writes). Without one, the
    /// client creates a task and destroys it at the end.
    pub fn task(mut self, task: TaskRef) -> Self {
        self.task = Some(task);
        self
    }

    /// Count the bytes sent into this counter.
    pub fn progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }
}

impl fmt::Debug for ImportRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportRequest")
            .field("vdi", &self.vdi)
            .field("format", &self.format)
            .field("length", &self.length)
            .field("task", &self.task)
            .finish_non_exhaustive()
    }
}

/// A finished upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub bytes_sent: u64,
    /// The VDI named by the task result, when the host gives one.
    pub vdi: Option<VdiRef>,
}

/// Counts what the HTTP stack takes from the body, and refuses to deliver more or less
/// than the announced length.
struct CountingReader {
    inner: Box<dyn Read + Send>,
    length: u64,
    sent: u64,
    counter: Arc<AtomicU64>,
    progress: Progress,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.length.saturating_sub(self.sent);
        if remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = loop {
            match self.inner.read(&mut buf[..want]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the data source ended after {} of the announced {} bytes",
                    self.sent, self.length
                ),
            ));
        }
        self.sent += n as u64;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        self.progress.add(n as u64);
        Ok(n)
    }
}

fn transfer_url(base: &Url, path: &str, query: &[(&str, &str)]) -> Url {
    let mut url = base.clone();
    url.set_path(path);
    url.set_query(None);
    url.query_pairs_mut().extend_pairs(query);
    url
}

fn detail_of(error: Error) -> String {
    match error {
        Error::Transport { detail, .. } => detail,
        other => other.to_string(),
    }
}

impl Session {
    /// Uploads a disk image onto `request.vdi`: probes for a redirect with an empty body,
    /// streams with an exact Content-Length, then watches the task, because errors after
    /// the HTTP 200 show only there.
    pub fn import_raw_vdi(&self, request: ImportRequest) -> Result<Imported> {
        let what = format!("import into VDI {}", request.vdi);
        let (task, owned) = match request.task.clone() {
            Some(task) => (task, false),
            None => (self.task_create("xenlift: import disk", &what)?, true),
        };
        let result = self.import_with_task(request, &task, &what);
        if owned {
            if let Err(e) = self.task_destroy(&task) {
                tracing::debug!(error = %e, "could not destroy the import task");
            }
        }
        result
    }

    fn import_with_task(
        &self,
        request: ImportRequest,
        task: &TaskRef,
        what: &str,
    ) -> Result<Imported> {
        let ImportRequest {
            vdi,
            format,
            length,
            body,
            progress,
            ..
        } = request;
        let target = self.probe_import(&vdi, what)?;
        let host = host_of(&target);
        let (id, _) = self.current_id();
        let mut query = vec![
            ("session_id", id.expose()),
            ("task_id", task.as_str()),
            ("vdi", vdi.as_str()),
            ("format", format.format_param()),
        ];
        if format == ImportFormat::ChunkedRaw {
            query.push(("chunked", "true"));
        }
        let url = transfer_url(&target, "/import_raw_vdi", &query);
        let counter = Arc::new(AtomicU64::new(0));
        let reader = CountingReader {
            inner: body,
            length,
            sent: 0,
            counter: counter.clone(),
            progress,
        };
        tracing::info!(%host, %vdi, ?format, length, "uploading disk");
        let outcome = self.http.upload.put(url.clone(), Box::new(reader), length);
        let transport_failure = match outcome {
            Ok(response) => {
                if response.status != 200 {
                    self.cancel_quietly(task);
                    return Err(self.status_error(&target, what, response.status));
                }
                response.drain_error
            }
            Err(PutError::Io(e)) => Some(format!("reading the upload body: {e}")),
            Err(PutError::Http(e)) => match self.http.error(&url, what, e, id.expose()) {
                e @ (Error::FingerprintMismatch { .. } | Error::Tls { .. }) => {
                    self.cancel_quietly(task);
                    return Err(e);
                }
                other => Some(detail_of(other)),
            },
        };
        let bytes_sent = counter.load(Ordering::Relaxed);
        // After a broken upload the host still ends the task, but do not wait forever.
        let deadline = transport_failure
            .as_ref()
            .map(|_| Instant::now() + self.options.task_settle_timeout);
        let record = self.task_wait_until(task, deadline)?;
        let interrupted =
            |detail: String, task_error: Option<Box<XapiError>>| Error::TransferInterrupted {
                host: host.clone(),
                what: what.to_string(),
                bytes_sent,
                total: length,
                detail,
                task_error,
            };
        match (record, transport_failure) {
            (Some(r), _) if r.status == TaskStatus::Success && bytes_sent == length => {
                Ok(Imported {
                    bytes_sent,
                    vdi: ref_from_task_result(&r.result).map(VdiRef),
                })
            }
            (Some(r), _) if r.status == TaskStatus::Cancelled => Err(Error::ImportCancelled {
                host,
                what: what.to_string(),
                bytes_sent,
                total: length,
            }),
            (Some(r), None) if r.status == TaskStatus::Failure => Err(Error::ImportFailed {
                host,
                what: what.to_string(),
                bytes_sent,
                total: length,
                error: XapiError::from_list(&r.error_info),
            }),
            (Some(r), Some(detail)) if r.status == TaskStatus::Failure => Err(interrupted(
                detail,
                Some(Box::new(XapiError::from_list(&r.error_info))),
            )),
            (Some(_), detail) => Err(interrupted(
                detail.unwrap_or_else(|| "the host reported success for a short upload".into()),
                None,
            )),
            (None, detail) => {
                self.cancel_quietly(task);
                Err(interrupted(
                    format!(
                        "{}; the host's task did not finish in time",
                        detail.unwrap_or_default()
                    ),
                    None,
                ))
            }
        }
    }

    /// Sends an empty-bodied PUT to learn, before streaming, whether the host redirects
    /// (302 to the host that sees the SR), refuses the session (401) or the account (403).
    /// It carries no task_id and format=raw: XAPI completes a throwaway task of its own,
    /// and an empty raw body writes nothing, whatever format the real upload uses.
    /// Returns the base URL to upload to.
    fn probe_import(&self, vdi: &VdiRef, what: &str) -> Result<Url> {
        let mut base = self.base();
        let mut relogged = false;
        for _ in 0..=MAX_REDIRECTS {
            let (id, generation) = self.current_id();
            let query = [
                ("session_id", id.expose()),
                ("vdi", vdi.as_str()),
                ("format", "raw"),
            ];
            let url = transfer_url(&base, "/import_raw_vdi", &query);
            let mut response = self
                .http
                .calls
                .put(url.clone())
                .header(CONTENT_LENGTH, "0")
                .body(Vec::<u8>::new())
                .send()
                .map_err(|e| self.http.error(&url, what, e, id.expose()))?;
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            // The body is empty or an error page; reading it lets the connection finish.
            let _ = io::copy(&mut response, &mut io::sink());
            match status {
                200 => return Ok(base),
                301 | 302 | 303 | 307 | 308 => {
                    base = self.redirect_target(&base, location.as_deref(), what)?
                }
                401 if !relogged => {
                    relogged = true;
                    self.relogin(generation)?;
                }
                _ => return Err(self.status_error(&base, what, status)),
            }
        }
        Err(Error::Protocol {
            host: host_of(&base),
            what: what.to_string(),
            detail: "too many redirects".into(),
        })
    }

    /// The base URL a redirect points to, after checking it may be followed: no downgrade
    /// to plain http, and when pinning, the new host's certificate as the pool lists it.
    fn redirect_target(&self, from: &Url, location: Option<&str>, what: &str) -> Result<Url> {
        let protocol = |detail: String| Error::Protocol {
            host: host_of(from),
            what: what.to_string(),
            detail,
        };
        let location = location.ok_or_else(|| protocol("redirect without a Location".into()))?;
        let target = from
            .join(location)
            .map_err(|e| protocol(format!("unusable redirect Location: {e}")))?;
        if target.scheme() != "https" && !(target.scheme() == "http" && self.plaintext_allowed()) {
            return Err(Error::PlaintextRefused {
                host: host_of(&target),
            });
        }
        let mut base = target.clone();
        base.set_path("/");
        base.set_query(None);
        base.set_fragment(None);
        if let (Some(pins), Some(address)) = (&self.http.pins, target.host_str()) {
            if host_of(&base) != host_of(from) {
                // Asked over the pinned session: the pool's record of that host's certificate.
                match self.host_fingerprints(address.trim_matches(['[', ']'])) {
                    Ok(found) => found.into_iter().for_each(|fp| pins.add(fp)),
                    Err(e) => tracing::warn!(error = %e, "could not read the pool's certificates"),
                }
            }
        }
        tracing::info!(from = %host_of(from), to = %host_of(&base), "{what}: following the host's redirect");
        Ok(base)
    }

    fn status_error(&self, base: &Url, what: &str, status: u16) -> Error {
        let detail = match status {
            400 => "the host rejected the request (missing or invalid VDI)",
            401 => "the host refused the session even after a new login; check the account",
            403 => "the account is not allowed to do this (RBAC); use an account with the pool-admin or vm-admin role",
            404 => "the host refused this disk or format (or the request's encoding)",
            500..=599 => "the host failed; its /var/log/xensource.log says why",
            _ => "unexpected status",
        };
        Error::Http {
            host: host_of(base),
            what: what.to_string(),
            status,
            detail: detail.to_string(),
        }
    }

    fn cancel_quietly(&self, task: &TaskRef) {
        if let Err(e) = self.task_cancel(task) {
            tracing::debug!(error = %e, "could not cancel the task");
        }
    }

    /// Starts a download of the VDI's content; read it to the end, then call
    /// [`Export::finish`] to learn whether the host completed it.
    pub fn export_raw_vdi(&self, vdi: &VdiRef, format: ExportFormat) -> Result<Export<'_>> {
        let what = format!("export of VDI {vdi}");
        let task = self.task_create("xenlift: export disk", &what)?;
        match self.open_export(vdi, format, &task, &what) {
            Ok(response) => Ok(Export {
                session: self,
                response,
                task,
                what,
                received: 0,
                finished: false,
            }),
            Err(e) => {
                self.cancel_quietly(&task);
                if let Err(e) = self.task_destroy(&task) {
                    tracing::debug!(error = %e, "could not destroy the export task");
                }
                Err(e)
            }
        }
    }

    fn open_export(
        &self,
        vdi: &VdiRef,
        format: ExportFormat,
        task: &TaskRef,
        what: &str,
    ) -> Result<Response> {
        let mut base = self.base();
        let mut relogged = false;
        for _ in 0..=MAX_REDIRECTS {
            let (id, generation) = self.current_id();
            let query = [
                ("session_id", id.expose()),
                ("task_id", task.as_str()),
                ("vdi", vdi.as_str()),
                ("format", format.format_param()),
            ];
            let url = transfer_url(&base, "/export_raw_vdi", &query);
            let response = self
                .http
                .bulk
                .get(url.clone())
                .send()
                .map_err(|e| self.http.error(&url, what, e, id.expose()))?;
            let status = response.status().as_u16();
            match status {
                200 => return Ok(response),
                301 | 302 | 303 | 307 | 308 => {
                    let location = response
                        .headers()
                        .get(LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    base = self.redirect_target(&base, location.as_deref(), what)?;
                }
                401 if !relogged => {
                    relogged = true;
                    self.relogin(generation)?;
                }
                _ => return Err(self.status_error(&base, what, status)),
            }
        }
        Err(Error::Protocol {
            host: host_of(&base),
            what: what.to_string(),
            detail: "too many redirects".into(),
        })
    }
}

/// A running export: read it until the end, then [`Export::finish`].
pub struct Export<'a> {
    session: &'a Session,
    response: Response,
    task: TaskRef,
    what: String,
    received: u64,
    finished: bool,
}

impl Export<'_> {
    pub fn bytes_received(&self) -> u64 {
        self.received
    }

    /// Waits for the host to complete the export task; gives the byte count read.
    pub fn finish(mut self) -> Result<u64> {
        self.finished = true;
        let outcome = self.session.task_wait(&self.task, &self.what);
        if let Err(e) = self.session.task_destroy(&self.task) {
            tracing::debug!(error = %e, "could not destroy the export task");
        }
        outcome.map(|_| self.received)
    }
}

impl Read for Export<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.response.read(buf)?;
        self.received += n as u64;
        Ok(n)
    }
}

impl fmt::Debug for Export<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Export")
            .field("task", &self.task)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl Drop for Export<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.session.cancel_quietly(&self.task);
            if let Err(e) = self.session.task_destroy(&self.task) {
                tracing::debug!(error = %e, "could not destroy the export task");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counting(data: &'static [u8], length: u64) -> (CountingReader, Arc<AtomicU64>, Progress) {
        let counter = Arc::new(AtomicU64::new(0));
        let progress = Progress::new();
        let reader = CountingReader {
            inner: Box::new(data),
            length,
            sent: 0,
            counter: counter.clone(),
            progress: progress.clone(),
        };
        (reader, counter, progress)
    }

    #[test]
    fn counts_exactly_the_announced_length() {
        let (mut reader, counter, progress) = counting(b"0123456789", 6);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"012345");
        assert_eq!((counter.load(Ordering::Relaxed), progress.bytes()), (6, 6));
    }

    #[test]
    fn a_short_source_is_an_error_naming_the_counts() {
        let (mut reader, _, _) = counting(b"0123", 10);
        let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(
            err.to_string()
                .contains("after 4 of the announced 10 bytes"),
            "{err}"
        );
    }

    #[test]
    fn urls_carry_the_query() {
        let base = Url::parse("https://h:1/").unwrap();
        let url = transfer_url(
            &base,
            "/import_raw_vdi",
            &[("vdi", "OpaqueRef:a b"), ("chunked", "true")],
        );
        assert_eq!(
            url.as_str(),
            "https://h:1/import_raw_vdi?vdi=OpaqueRef%3Aa+b&chunked=true"
        );
    }
}
