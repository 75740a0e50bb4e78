//! One client connection, plain or TLS, with a read buffer that keeps the
//! bytes that followed a request head (the start of its body).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

use nix::sys::socket::{setsockopt, sockopt};
use rustls::{ServerConnection, StreamOwned};

use super::request::{Head, HeadError};

pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => match s.read(buf) {
                // A peer that closes without close_notify has still finished.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

const HEAD_LIMIT: usize = 64 * 1024;

pub struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    start: usize,
}

impl Conn {
    pub fn new(stream: Stream) -> Self {
        Self {
            stream,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// Reads the next request head; `None` when the client closed the
    /// connection between requests.
    pub fn read_head(&mut self) -> Result<Option<Head>, HeadError> {
        self.buf.drain(..self.start);
        self.start = 0;
        loop {
            if let Some(end) = find_head_end(&self.buf) {
                let head = Head::parse(&self.buf[..end])?;
                self.start = end;
                return Ok(Some(head));
            }
            if self.buf.len() > HEAD_LIMIT {
                return Err(HeadError::TooLarge);
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk).map_err(HeadError::Io)?;
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(HeadError::Io(io::ErrorKind::UnexpectedEof.into()))
                };
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads exactly `len` body bytes.
    pub fn read_body(&mut self, len: usize) -> io::Result<Vec<u8>> {
        let mut body = vec![0u8; len];
        self.read_exact(&mut body)?;
        Ok(body)
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Ends the connection the rough way: a TCP reset, as when a server
    /// process dies mid-transfer.
    pub fn reset(&mut self) {
        let tcp = self.stream.tcp();
        let linger = libc_linger_zero();
        let _ = setsockopt(&tcp.as_fd(), sockopt::Linger, &linger);
        let _ = tcp.shutdown(Shutdown::Both);
    }

    /// Ends the connection cleanly: TLS close_notify and FIN, then reads
    /// (a bounded amount of) what the client still sends, so that closing
    /// with unread bytes does not reset the connection and lose our answer.
    pub fn finish(&mut self) {
        if let Stream::Tls(s) = &mut self.stream {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        let _ = self.stream.tcp().shutdown(Shutdown::Write);
        let _ = self
            .stream
            .tcp()
            .set_read_timeout(Some(Duration::from_secs(2)));
        let mut left: usize = 8 << 20;
        let mut scratch = [0u8; 16 * 1024];
        while left > 0 {
            match self.read(&mut scratch) {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    }
}

fn libc_linger_zero() -> nix::libc::linger {
    nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    }
}

impl Read for Conn {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start < self.buf.len() {
            let n = out.len().min(self.buf.len() - self.start);
            out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
            self.start += n;
            return Ok(n);
        }
        self.stream.read(out)
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}
