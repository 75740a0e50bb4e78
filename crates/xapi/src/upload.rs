//! The body path of uploads. reqwest's blocking client pulls a `Read` body
//! in 8 KiB pieces, each a channel message to its runtime thread and a TLS
//! record of its own: over gigabytes that costs more CPU than reading the
//! disk. Uploads therefore go through reqwest's async client, fed 1 MiB
//! chunks by a thread that reads the body.

use std::io::{self, Read};

use bytes::{Bytes, BytesMut};
use reqwest::header::CONTENT_LENGTH;
use reqwest::{Client, ClientBuilder, Url};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

/// Bytes per chunk handed to the HTTP stack.
const CHUNK: usize = 1 << 20;
/// Chunks read ahead of the network.
const AHEAD: usize = 2;

/// An async client and the runtime that drives it.
pub(crate) struct Uploader {
    client: Client,
    runtime: Runtime,
}

/// Why an upload did not get a response.
pub(crate) enum PutError {
    Http(reqwest::Error),
    Io(io::Error),
}

/// The response to a finished upload: status, and an error met while
/// reading the rest of the response, if any.
pub(crate) struct Response {
    pub status: u16,
    pub drain_error: Option<String>,
}

impl Uploader {
    pub(crate) fn new(builder: ClientBuilder) -> Result<Uploader, PutError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("xapi-upload")
            .enable_all()
            .build()
            .map_err(PutError::Io)?;
        let client = builder.build().map_err(PutError::Http)?;
        Ok(Uploader { client, runtime })
    }

    /// PUTs exactly `length` bytes of `body` to `url`.
    pub(crate) fn put(
        &self,
        url: Url,
        body: Box<dyn Read + Send>,
        length: u64,
    ) -> Result<Response, PutError> {
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(AHEAD);
        let reader = std::thread::Builder::new()
            .name("xapi-upload-body".into())
            .spawn(move || pump(body, &tx))
            .map_err(PutError::Io)?;
        let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        });
        let request = self
            .client
            .put(url)
            .header(CONTENT_LENGTH, length)
            .body(reqwest::Body::wrap_stream(chunks));
        let result = self.runtime.block_on(async move {
            let response = request.send().await?;
            let status = response.status().as_u16();
            // XAPI closes the connection once it has written everything: read to the end.
            let drain_error = response.bytes().await.err().map(|e| e.to_string());
            Ok(Response {
                status,
                drain_error,
            })
        });
        // The reader stops at the end of the body or when the request is gone.
        let _ = reader.join();
        result.map_err(PutError::Http)
    }
}

/// Reads `body` in whole chunks into the channel until it ends, fails, or
/// the receiving request is gone.
fn pump(mut body: Box<dyn Read + Send>, tx: &mpsc::Sender<io::Result<Bytes>>) {
    loop {
        let mut buf = BytesMut::zeroed(CHUNK);
        let mut filled = 0;
        while filled < CHUNK {
            match body.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
        if filled == 0 {
            return;
        }
        buf.truncate(filled);
        if tx.blocking_send(Ok(buf.freeze())).is_err() || filled < CHUNK {
            return;
        }
    }
}
