//! The real ends of the interactive dialog: the console device, the pool
//! through the XAPI client, and this machine's network cards and disks.

use std::io::BufReader;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use disk::layout::DiskLayout;
use xapi::{Connect, Fingerprint, NetworkRecord, Secret, Session, SrRecord};

use super::consoles::AnyConsole;
use super::dialog::{self, Console, Facts, LocalDisk, LoginError, Net, Nic, Outcome, Sr};

/// How long to wait for the target when fetching its certificate.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// The pool through a logged-in XAPI session.
#[derive(Default)]
pub struct XapiPool {
    session: Option<Session>,
}

impl XapiPool {
    fn session(&self) -> Result<&Session, String> {
        self.session
            .as_ref()
            .ok_or_else(|| "not logged in".to_string())
    }
}

impl dialog::Pool for XapiPool {
    fn fingerprint(&mut self, host: &str, port: u16) -> Result<String, String> {
        xapi::fetch_fingerprint(host, port, CONNECT_TIMEOUT)
            .map(|f| f.to_string())
            .map_err(|e| e.to_string())
    }

    fn login(
        &mut self,
        url: &str,
        fingerprint: &str,
        user: &str,
        password: &Secret,
    ) -> Result<(), LoginError> {
        let pin: Fingerprint = fingerprint
            .parse()
            .map_err(|e: xapi::Error| LoginError::Other(e.to_string()))?;
        match Connect::new(url).pin(pin).login(user, password.clone()) {
            Ok(s) => {
                self.session = Some(s);
                Ok(())
            }
            Err(e) if e.is_code(xapi::codes::SESSION_AUTHENTICATION_FAILED) => {
                Err(LoginError::Rejected)
            }
            Err(e) => Err(LoginError::Other(e.to_string())),
        }
    }

    fn storage(&mut self) -> Result<Vec<Sr>, String> {
        let s = self.session()?;
        let default = s.pool_default_sr().map_err(|e| e.to_string())?;
        let records = s.all_records::<SrRecord>("SR").map_err(|e| e.to_string())?;
        Ok(records
            .into_iter()
            // ISO libraries and removable media cannot hold VM disks.
            .filter(|(_, r)| r.content_type != "iso" && !matches!(r.kind.as_str(), "iso" | "udev"))
            .map(|(reference, r)| Sr {
                is_default: default.as_ref().is_some_and(|d| d.as_str() == reference),
                free: u64::try_from(r.physical_size - r.physical_utilisation).unwrap_or(0),
                uuid: r.uuid,
                name: r.name_label,
                kind: r.kind,
            })
            .collect())
    }

    fn networks(&mut self) -> Result<Vec<Net>, String> {
        let s = self.session()?;
        let records = s
            .all_records::<NetworkRecord>("network")
            .map_err(|e| e.to_string())?;
        Ok(records
            .into_iter()
            // The host's internal management network is not for VMs.
            .filter(|(_, r)| {
                r.other_config
                    .get("is_host_internal_management_network")
                    .is_none_or(|v| v.as_str() != "true")
            })
            .map(|(_, r)| Net {
                uuid: r.uuid,
                name: r.name_label,
                bridge: r.bridge,
            })
            .collect())
    }
}

/// Network cards with a MAC address under `sys_net` (/sys/class/net),
/// loopback and virtual devices left out, in name order.
pub fn local_nics(sys_net: &Path) -> Vec<Nic> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(sys_net) else {
        return out;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        // Physical cards have a `device` link; lo, bridges and tunnels do not.
        if !dir.join("device").exists() {
            continue;
        }
        let mac = std::fs::read_to_string(dir.join("address")).unwrap_or_default();
        let mac = mac.trim();
        if mac.is_empty() || mac == "00:00:00:00:00:00" {
            continue;
        }
        out.push(Nic {
            name,
            mac: mac.to_string(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Each disk with its size and what `inspect` finds on it.
pub fn describe_disks(paths: &[String]) -> Vec<LocalDisk> {
    let policy = crate::inspect::read_only_policy();
    paths
        .iter()
        .map(|p| {
            let opened = disk::SourceDisk::open_with(Path::new(p), policy);
            let (size, summary) = match opened {
                Ok(d) => {
                    let size = d.info().size;
                    let summary = match disk::inspect(std::slice::from_ref(&d)) {
                        Ok(layouts) => layouts.first().map(summary).unwrap_or_default(),
                        Err(e) => format!("not readable: {e}"),
                    };
                    (size, summary)
                }
                Err(e) => (0, format!("cannot open: {e}")),
            };
            LocalDisk {
                path: p.clone(),
                size,
                summary,
            }
        })
        .collect()
}

/// "MBR: ext4 "root", swap; 1.2 GiB to copy".
fn summary(l: &DiskLayout) -> String {
    use disk::TableKind;
    let table = match l.table.kind {
        TableKind::Gpt => "GPT",
        TableKind::Mbr => "MBR",
        TableKind::None => "no partition table",
    };
    let contents: Vec<String> = l
        .partitions
        .iter()
        .filter_map(|p| p.content())
        .map(|c| match &c.label {
            Some(label) if !label.is_empty() => format!("{} {label:?}", c.kind.name()),
            _ => c.kind.name().to_string(),
        })
        .collect();
    let contents = if contents.is_empty() {
        "no partitions".to_string()
    } else {
        contents.join(", ")
    };
    format!(
        "{table}: {contents}; {} to copy",
        crate::units::human(l.copy_bytes())
    )
}

/// Runs the dialog: answers from whichever of `consoles` they are typed on,
/// questions to stdout (copied by init to every console); the convert
/// arguments come back to the caller.
pub fn ask(consoles: &[PathBuf], disks: &[String], sys_net: &Path) -> anyhow::Result<Outcome> {
    let mut readers = Vec::new();
    let mut terminals = Vec::new();
    let mut unusable = Vec::new();
    for path in consoles {
        // A console that cannot be read (a screen without a VT) leaves the others.
        let device = match std::fs::File::open(path) {
            Ok(d) => d,
            Err(e) => {
                unusable.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let echo_fd = device.try_clone().context("duplicating the console")?;
        if let Ok(saved) = nix::sys::termios::tcgetattr(echo_fd.as_fd()) {
            terminals.push((echo_fd, saved));
        }
        readers.push(device);
    }
    if readers.is_empty() {
        anyhow::bail!(
            "no console to read the dialog's answers from ({})",
            unusable.join("; ")
        );
    }
    let facts = Facts {
        nics: local_nics(sys_net),
        disks: describe_disks(disks),
    };
    let stdout = std::io::stdout();
    let mut console = Console::new(BufReader::new(AnyConsole::new(readers)), stdout.lock());
    if !terminals.is_empty() {
        // Terminals: hide the password as it is typed, on each of them.
        console = console.with_echo_control(Box::new(move |on| {
            use nix::sys::termios::{tcsetattr, LocalFlags, SetArg};
            for (fd, saved) in &terminals {
                let mut t = saved.clone();
                if !on {
                    t.local_flags.remove(LocalFlags::ECHO);
                }
                let _ = tcsetattr(fd.as_fd(), SetArg::TCSANOW, &t);
            }
        }));
    }
    let mut pool = XapiPool::default();
    Ok(dialog::run(&mut console, &mut pool, &facts)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_readable_console_is_a_clear_error() {
        let missing = PathBuf::from("/nonexistent/xenlift-console");
        let err = ask(&[missing], &[], Path::new("/nonexistent"))
            .expect_err("a dialog without a console");
        let text = format!("{err:#}");
        assert!(
            text.contains("no console to read the dialog's answers from")
                && text.contains("/nonexistent/xenlift-console"),
            "{text}"
        );
    }
}
