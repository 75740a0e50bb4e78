//! The import body as a reader: counts bytes against Content-Length, applies
//! the rate, drop and cancel faults, updates the task's progress and notices
//! a cancelled task.

use std::io::{self, Read};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::ImportError;
use crate::http::conn::Conn;
use crate::sim::Sim;
use crate::tasks;

/// How often (in bytes) progress is written and cancellation checked.
const CHECK_EVERY: u64 = 1 << 20;

/// Faults that act on the body bytes.
#[derive(Debug, Default, Clone, Copy)]
pub struct BodyFaults {
    pub drop_after: Option<u64>,
    pub cancel_after: Option<u64>,
    pub bytes_per_second: Option<u64>,
}

/// Marker inside an `io::Error`: why a read stopped.
#[derive(Debug)]
enum Stop {
    Dropped,
    Cancelled,
    Truncated,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for Stop {}

pub struct Body<'a> {
    conn: &'a mut Conn,
    sim: &'a Sim,
    task: &'a str,
    expected: Option<u64>,
    consumed: u64,
    next_check: u64,
    faults: BodyFaults,
    started: Instant,
}

impl<'a> Body<'a> {
    pub fn new(
        conn: &'a mut Conn,
        sim: &'a Sim,
        task: &'a str,
        expected: Option<u64>,
        faults: BodyFaults,
    ) -> Self {
        Self {
            conn,
            sim,
            task,
            expected,
            consumed: 0,
            next_check: 0,
            faults,
            started: Instant::now(),
        }
    }

    /// Content-Length, when the client sent one.
    pub fn expected(&self) -> Option<u64> {
        self.expected
    }

    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The typed reason behind a failed read.
    pub fn error(&self, e: io::Error) -> ImportError {
        match e.get_ref().and_then(|i| i.downcast_ref::<Stop>()) {
            Some(Stop::Dropped) => ImportError::Dropped,
            Some(Stop::Cancelled) => ImportError::Cancelled,
            Some(Stop::Truncated) => ImportError::Truncated(self.consumed),
            None if e.kind() == io::ErrorKind::UnexpectedEof => {
                ImportError::Truncated(self.consumed)
            }
            None => ImportError::Read(e),
        }
    }

    /// Reads and drops the rest of the body, so the client can finish
    /// sending and read our close cleanly.
    pub fn drain(&mut self) {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let want = match self.expected {
                Some(e) => usize::try_from(e.saturating_sub(self.consumed))
                    .unwrap_or(buf.len())
                    .min(buf.len()),
                None => buf.len(),
            };
            if want == 0 {
                break;
            }
            match self.conn.read(&mut buf[..want]) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.consumed += n as u64,
            }
        }
    }

    fn check(&mut self) -> io::Result<()> {
        let mut db = self.sim.db();
        if tasks::is_cancelling(&db, self.task) {
            return Err(io::Error::other(Stop::Cancelled));
        }
        if let Some(total) = self.expected.filter(|t| *t > 0) {
            tasks::set_progress(&mut db, self.task, self.consumed as f64 / total as f64);
        }
        Ok(())
    }

    fn throttle(&self) {
        if let Some(rate) = self.faults.bytes_per_second.filter(|r| *r > 0) {
            let due = Duration::from_secs_f64(self.consumed as f64 / rate as f64);
            let elapsed = self.started.elapsed();
            if due > elapsed {
                sleep(due - elapsed);
            }
        }
    }
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.consumed >= self.next_check {
            self.check()?;
            self.next_check = self.consumed + CHECK_EVERY;
        }
        let mut limit = buf.len() as u64;
        if let Some(left) = self.expected.map(|e| e.saturating_sub(self.consumed)) {
            if left == 0 {
                return Ok(0);
            }
            limit = limit.min(left);
        }
        for (fault, stop) in [
            (self.faults.drop_after, Stop::Dropped),
            (self.faults.cancel_after, Stop::Cancelled),
        ] {
            if let Some(at) = fault {
                if self.consumed >= at {
                    return Err(io::Error::other(stop));
                }
                limit = limit.min(at - self.consumed);
            }
        }
        if self.faults.bytes_per_second.is_some() {
            // Small reads keep a capped rate smooth.
            limit = limit.min(16 * 1024);
        }
        let limit = usize::try_from(limit).unwrap_or(buf.len()).min(buf.len());
        let n = self.conn.read(&mut buf[..limit])?;
        if n == 0 && self.expected.is_some() {
            return Err(io::Error::other(Stop::Truncated));
        }
        self.consumed += n as u64;
        self.throttle();
        Ok(n)
    }
}

/// Fills `buf` as far as the body goes; returns how much was read.
pub fn read_full(body: &mut Body, buf: &mut [u8]) -> Result<usize, ImportError> {
    let mut filled = 0;
    while filled < buf.len() {
        match body.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(body.error(e)),
        }
    }
    Ok(filled)
}

/// Reads exactly `buf.len()` bytes; the body ending first is `Truncated`.
pub fn read_exact(body: &mut Body, buf: &mut [u8]) -> Result<(), ImportError> {
    let n = read_full(body, buf)?;
    if n < buf.len() {
        return Err(ImportError::Truncated(body.consumed()));
    }
    Ok(())
}
