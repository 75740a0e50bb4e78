//! Per-disk progress: a refreshing console line on a terminal, plain lines
//! now and then otherwise (serial consoles, logs), and the XAPI task's
//! progress so XenCenter and Xen Orchestra show it.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::units::human;
use xapi::{Session, TaskRef};

/// One disk's counters, shared by its upload and the display.
#[derive(Debug)]
pub struct DiskProgress {
    pub label: String,
    /// Stream bytes of the whole disk (the first attempt's length).
    total: AtomicU64,
    /// Bytes the current attempt does not need to send again.
    base: AtomicU64,
    attempt: Mutex<xapi::Progress>,
    done: AtomicBool,
    pub task: Mutex<Option<TaskRef>>,
}

impl DiskProgress {
    pub fn new(label: String) -> Arc<DiskProgress> {
        Arc::new(DiskProgress {
            label,
            total: AtomicU64::new(0),
            base: AtomicU64::new(0),
            attempt: Mutex::new(xapi::Progress::new()),
            done: AtomicBool::new(false),
            task: Mutex::new(None),
        })
    }

    /// A new attempt sending `len` bytes; the first sets the total.
    pub fn attempt(&self, len: u64) -> xapi::Progress {
        let total = match self.total.load(Ordering::Relaxed) {
            0 => {
                self.total.store(len, Ordering::Relaxed);
                len
            }
            t => t,
        };
        self.base
            .store(total.saturating_sub(len), Ordering::Relaxed);
        let p = xapi::Progress::new();
        *self.attempt.lock().unwrap_or_else(|e| e.into_inner()) = p.clone();
        p
    }

    pub fn finish(&self) {
        self.done.store(true, Ordering::Relaxed);
    }

    fn sent(&self) -> (u64, u64) {
        let total = self.total.load(Ordering::Relaxed);
        let now = self.base.load(Ordering::Relaxed)
            + self
                .attempt
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .bytes();
        (now.min(total), total)
    }
}

/// The display thread; stops when dropped.
pub struct Display {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Display {
    pub fn start(session: Arc<Session>, disks: Vec<Arc<DiskProgress>>) -> Display {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::Builder::new()
            .name("progress".into())
            .spawn(move || run(&session, &disks, &flag))
            .ok();
        Display { stop, thread }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(session: &Session, disks: &[Arc<DiskProgress>], stop: &AtomicBool) {
    let tty = std::io::stdout().is_terminal();
    let tick = Duration::from_millis(250);
    let line_every = if tty {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(10)
    };
    let task_every = Duration::from_secs(2);
    let started = Instant::now();
    let mut last_line = Instant::now();
    let mut last_task = Instant::now();
    let mut last_bytes: Vec<(Instant, u64)> = vec![(started, 0); disks.len()];
    let mut rates = vec![0.0f64; disks.len()];
    while !stop.load(Ordering::Relaxed) {
        thread::sleep(tick);
        let now = Instant::now();
        if now.duration_since(last_line) >= line_every {
            last_line = now;
            let mut parts = Vec::new();
            for (i, d) in disks.iter().enumerate() {
                let (sent, total) = d.sent();
                let (t0, b0) = last_bytes[i];
                let dt = now.duration_since(t0).as_secs_f64().max(1e-3);
                let rate = sent.saturating_sub(b0) as f64 / dt;
                // Smoothed, so one slow interval does not swing the ETA.
                rates[i] = if rates[i] == 0.0 {
                    rate
                } else {
                    0.7 * rates[i] + 0.3 * rate
                };
                last_bytes[i] = (now, sent);
                if d.done.load(Ordering::Relaxed) || total == 0 {
                    continue;
                }
                parts.push(format_line(&d.label, sent, total, rates[i]));
            }
            if !parts.is_empty() {
                if tty {
                    let mut out = std::io::stdout().lock();
                    let _ = write!(out, "\r\x1b[K{}", parts.join(" | "));
                    let _ = out.flush();
                } else {
                    for p in parts {
                        println!("{p}");
                    }
                }
            }
        }
        if now.duration_since(last_task) >= task_every {
            last_task = now;
            for d in disks {
                let (sent, total) = d.sent();
                let task = d.task.lock().unwrap_or_else(|e| e.into_inner()).clone();
                if let (Some(task), true) = (task, total > 0) {
                    if let Err(e) = session.task_set_progress(&task, sent as f64 / total as f64) {
                        tracing::debug!(error = %e, "could not set the task's progress");
                    }
                }
            }
        }
    }
    if tty {
        let _ = write!(std::io::stdout().lock(), "\r\x1b[K");
    }
}

fn format_line(label: &str, sent: u64, total: u64, rate: f64) -> String {
    let pct = sent as f64 * 100.0 / total.max(1) as f64;
    let eta = if rate > 1.0 {
        let secs = (total.saturating_sub(sent)) as f64 / rate;
        let s = secs as u64;
        format!("{}:{:02}", s / 60, s % 60)
    } else {
        "?".into()
    };
    format!(
        "{label}: {} of {} ({pct:.0}%), {}/s, ETA {eta}",
        human(sent),
        human(total),
        human(rate as u64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_show_bytes_rate_and_eta() {
        let l = format_line("disk 0", 50 << 20, 100 << 20, (10 << 20) as f64);
        assert_eq!(
            l,
            "disk 0: 50.0 MiB of 100.0 MiB (50%), 10.0 MiB/s, ETA 0:05"
        );
    }

    #[test]
    fn attempts_count_from_what_is_left() {
        let d = DiskProgress::new("d".into());
        let p = d.attempt(100);
        assert_eq!(d.sent(), (0, 100));
        drop(p);
        let _p = d.attempt(40);
        assert_eq!(d.sent(), (60, 100));
    }
}
