//! Answers typed on any console. The appliance shows its dialog on the
//! screen and on the serial line (IPMI serial-over-LAN) at once, and the
//! operator sits at one of them; /dev/console reads only the last
//! `console=` of the kernel command line.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};

/// The consoles the kernel writes to (`/sys/class/tty/console/active`),
/// or /dev/console when that list is empty or unreadable.
pub fn active(sys_active: &Path) -> Vec<PathBuf> {
    let names = std::fs::read_to_string(sys_active).unwrap_or_default();
    let found: Vec<PathBuf> = names
        .split_whitespace()
        .map(|n| Path::new("/dev").join(n))
        .collect();
    if found.is_empty() {
        vec![PathBuf::from("/dev/console")]
    } else {
        found
    }
}

/// Lines from several consoles, in the order they were typed: one reader
/// thread per console feeds a channel. Ends when every console has ended.
pub struct AnyConsole {
    lines: Receiver<Vec<u8>>,
    pending: Vec<u8>,
    at: usize,
}

impl AnyConsole {
    /// Reads from each of `consoles` (already open).
    pub fn new(consoles: Vec<File>) -> AnyConsole {
        let (tx, lines) = mpsc::channel();
        for console in consoles {
            let tx = tx.clone();
            // Left blocked on its console once the dialog is over; the
            // process ends with the conversion.
            std::thread::spawn(move || {
                let mut reader = BufReader::new(console);
                loop {
                    let mut line = Vec::new();
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {
                            if tx.send(line).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
        AnyConsole {
            lines,
            pending: Vec::new(),
            at: 0,
        }
    }
}

impl Read for AnyConsole {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.pending.len() {
            match self.lines.recv() {
                Ok(line) => {
                    self.pending = line;
                    self.at = 0;
                }
                // Every console ended.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pipe() -> (File, File) {
        let (r, w) = nix::unistd::pipe().expect("pipe");
        (File::from(r), File::from(w))
    }

    #[test]
    fn lines_come_from_whichever_console_is_typed_on() {
        let (screen, mut screen_keys) = pipe();
        let (serial, mut serial_keys) = pipe();
        let mut any = BufReader::new(AnyConsole::new(vec![screen, serial]));
        let mut line = String::new();

        serial_keys.write_all(b"https://pool\n").unwrap();
        any.read_line(&mut line).unwrap();
        assert_eq!(line, "https://pool\n");

        line.clear();
        screen_keys.write_all(b"yes\n").unwrap();
        any.read_line(&mut line).unwrap();
        assert_eq!(line, "yes\n");

        // One console ending leaves the other.
        drop(screen_keys);
        line.clear();
        serial_keys.write_all(b"root\n").unwrap();
        any.read_line(&mut line).unwrap();
        assert_eq!(line, "root\n");

        drop(serial_keys);
        line.clear();
        assert_eq!(any.read_line(&mut line).unwrap(), 0, "{line:?}");
    }

    #[test]
    fn active_consoles_come_from_sysfs_or_fall_back() {
        let dir = tempfile::tempdir().unwrap();
        let active_file = dir.path().join("active");
        std::fs::write(&active_file, "tty0 ttyS0\n").unwrap();
        assert_eq!(
            active(&active_file),
            [PathBuf::from("/dev/tty0"), PathBuf::from("/dev/ttyS0")]
        );
        std::fs::write(&active_file, "\n").unwrap();
        assert_eq!(active(&active_file), [PathBuf::from("/dev/console")]);
        assert_eq!(
            active(&dir.path().join("missing")),
            [PathBuf::from("/dev/console")]
        );
    }
}
