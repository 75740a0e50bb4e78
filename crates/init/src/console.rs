//! The console logger, set up before anything else: every line goes to each
//! active kernel console (the screen and the serial port used by IPMI
//! serial-over-LAN), because /dev/console reaches only the last `console=`.
//! Outside the appliance (tests, a normal run) lines go to stderr.

use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

static CONSOLES: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// Opens the active consoles listed in /sys/class/tty/console/active
/// (after /sys is mounted), falling back to /dev/console.
pub fn open_all() {
    let mut files = Vec::new();
    let active = std::fs::read_to_string("/sys/class/tty/console/active").unwrap_or_default();
    for name in active.split_whitespace() {
        if let Ok(f) = File::options().write(true).open(format!("/dev/{name}")) {
            files.push(f);
        }
    }
    if files.is_empty() {
        if let Ok(f) = File::options().write(true).open("/dev/console") {
            files.push(f);
        }
    }
    let mut consoles = CONSOLES.lock().unwrap_or_else(|p| p.into_inner());
    *consoles = files;
}

/// Writes raw bytes to every console (stderr when none is open).
pub fn write_all(bytes: &[u8]) {
    let mut consoles = CONSOLES.lock().unwrap_or_else(|p| p.into_inner());
    if consoles.is_empty() {
        let _ = std::io::stderr().write_all(bytes);
        return;
    }
    for c in consoles.iter_mut() {
        // A serial line wants CR LF.
        let mut out = Vec::with_capacity(bytes.len() + 16);
        for &b in bytes {
            if b == b'\n' {
                out.push(b'\r');
            }
            out.push(b);
        }
        let _ = c.write_all(&out);
    }
}

/// One line from init.
pub fn say(line: &str) {
    write_all(format!("xenlift-init: {line}\n").as_bytes());
}
