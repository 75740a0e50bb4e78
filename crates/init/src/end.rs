//! The end of the appliance: PID 1 never simply exits (that is a kernel
//! panic). It stops the other processes, syncs, then powers off, reboots
//! or hands the console to a shell, as configured. The panic hook ends here
//! too, after saying what happened on every console.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use nix::sys::reboot::{reboot, RebootMode};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{sync, Pid};

use crate::cmdline::Post;
use crate::console::say;

/// The configured end, for the panic hook (0 poweroff, 1 reboot, 2 shell).
static POST: AtomicU8 = AtomicU8::new(2);

pub fn set_post(post: Post) {
    POST.store(post as u8, Ordering::SeqCst);
}

fn configured_post() -> Post {
    match POST.load(Ordering::SeqCst) {
        0 => Post::PowerOff,
        1 => Post::Reboot,
        _ => Post::Shell,
    }
}

pub const SHELL: &str = "/bin/sh";

/// Installs the panic hook: message first, then the configured end.
pub fn install_panic_hook(pid1: bool) {
    std::panic::set_hook(Box::new(move |info| {
        say(&format!("internal error (a bug in xenlift-init): {info}"));
        if pid1 {
            finish(configured_post());
        }
    }));
}

/// Ends the appliance. Never returns when running as PID 1.
pub fn finish(post: Post) -> ! {
    if post == Post::Shell {
        shell();
        say("the shell ended");
    }
    stop_everything();
    say("syncing disks");
    sync();
    let mode = match post {
        Post::Reboot => {
            say("rebooting");
            RebootMode::RB_AUTOBOOT
        }
        _ => {
            say("powering off");
            RebootMode::RB_POWER_OFF
        }
    };
    let err = reboot(mode);
    // Only reached when not PID 1 or without CAP_SYS_BOOT.
    say(&format!("could not {}: {err:?}", post.name()));
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// A shell on the console, as session leader with the console as its
/// controlling terminal, so Ctrl-C works. Returns when it exits.
fn shell() {
    if !std::path::Path::new(SHELL).exists() {
        say("no shell in this image");
        return;
    }
    say("starting a shell on the console; leave it to power off");
    let mut cmd = std::process::Command::new(SHELL);
    cmd.env("PATH", "/bin:/sbin:/usr/bin:/usr/sbin")
        .env("HOME", "/root")
        .env("TERM", "linux")
        .env("PS1", "xenlift# ");
    for stream in 0..3 {
        match std::fs::File::options()
            .read(true)
            .write(true)
            .open("/dev/console")
        {
            Ok(f) => match stream {
                0 => cmd.stdin(f),
                1 => cmd.stdout(f),
                _ => cmd.stderr(f),
            },
            Err(e) => {
                say(&format!("opening /dev/console for the shell: {e}"));
                return;
            }
        };
    }
    // SAFETY: the closure only calls async-signal-safe functions (setsid,
    // ioctl) between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 1);
            Ok(())
        });
    }
    match cmd.spawn() {
        Ok(child) => {
            crate::agent::reap_until(Pid::from_raw(child.id() as i32));
        }
        Err(e) => say(&format!("starting {SHELL}: {e}")),
    }
}

/// SIGTERM to every other process, a moment to exit, then SIGKILL.
fn stop_everything() {
    if std::process::id() != 1 {
        return;
    }
    let all = Pid::from_raw(-1);
    if kill(all, Signal::SIGTERM).is_ok() {
        std::thread::sleep(Duration::from_millis(500));
        let _ = kill(all, Signal::SIGKILL);
    }
    while nix::sys::wait::waitpid(None::<Pid>, Some(nix::sys::wait::WaitPidFlag::WNOHANG))
        .is_ok_and(|s| s != nix::sys::wait::WaitStatus::StillAlive)
    {}
}
