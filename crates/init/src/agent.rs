//! Runs the agent, `xenlift appliance run`, the one seam between the
//! appliance's boot and what it does: init passes what it learned (boot
//! medium, MAC address of the configured link) in the environment; the agent
//! reads the kernel command line and answer files itself, runs the
//! configured command, and writes how the appliance should end.
//!
//! Its output is copied to every console (and /run/xenlift/agent.log), and
//! init reaps every child while it waits, orphans included.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::console::{say, write_all};

pub const AGENT: &str = "/bin/xenlift";
pub const POST_FILE: &str = "/run/xenlift/post";
pub const LOG_FILE: &str = "/run/xenlift/agent.log";

/// What init tells the agent.
#[derive(Debug, Default)]
pub struct Facts {
    pub mac: Option<String>,
    pub media: Option<String>,
    pub boot_device: Option<String>,
}

/// Runs the agent to its end; returns its exit code (or a message).
pub fn run(facts: &Facts) -> Result<i32, String> {
    let _ = std::fs::create_dir_all("/run/xenlift");
    let (reader, writer) = nix::unistd::pipe().map_err(|e| format!("creating a pipe: {e}"))?;
    let writer2 = writer
        .try_clone()
        .map_err(|e| format!("duplicating a pipe: {e}"))?;
    let mut cmd = Command::new(AGENT);
    cmd.args(["appliance", "run"])
        .env_clear()
        .env("PATH", "/bin:/sbin:/usr/bin:/usr/sbin")
        .env("HOME", "/root")
        .env("TERM", "linux")
        .env("XENLIFT_APPLIANCE_POST_FILE", POST_FILE)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(writer2));
    if let Some(mac) = &facts.mac {
        cmd.env("XENLIFT_APPLIANCE_MAC", mac);
    }
    if let Some(media) = &facts.media {
        cmd.env("XENLIFT_APPLIANCE_MEDIA", media);
    }
    if let Some(dev) = &facts.boot_device {
        cmd.env("XENLIFT_APPLIANCE_BOOT_DEVICE", dev);
    }
    let child = cmd.spawn().map_err(|e| format!("starting {AGENT}: {e}"))?;
    drop(cmd); // close our copies of the pipe's write end
    let done = tee(reader);
    let pid = Pid::from_raw(child.id() as i32);
    let code = reap_until(pid);
    // Let the copier drain what the agent wrote last.
    let _ = done.recv_timeout(Duration::from_secs(2));
    Ok(code)
}

/// Copies the pipe to the consoles and the log file; signals at EOF.
fn tee(reader: OwnedFd) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut pipe = std::fs::File::from(reader);
        let mut log = std::fs::File::create(LOG_FILE).ok();
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let chunk = &buf[..n];
                    write_all(chunk);
                    if let Some(l) = log.as_mut() {
                        let _ = std::io::Write::write_all(l, chunk);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(());
    });
    rx
}

/// Reaps children until `pid` ends; returns its exit code (128+signal when
/// killed).
pub fn reap_until(pid: Pid) -> i32 {
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => return code,
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => {
                say(&format!("the agent was killed by {sig:?}"));
                return 128 + sig as i32;
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                say(&format!("waiting for the agent: {e}"));
                return 1;
            }
        }
    }
}

/// The end the agent asked for in POST_FILE, if any.
pub fn requested_post() -> Option<crate::cmdline::Post> {
    let text = std::fs::read_to_string(POST_FILE).ok()?;
    crate::cmdline::Post::parse(&text)
}
