//! The XAPI password: from a file, from `--password`, or asked on a terminal.
//! It lives only in a [`Secret`], whose Debug and Display are redacted.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::Context;
use xapi::Secret;

use super::ConnectArgs;

pub fn password(args: &ConnectArgs, host: &str) -> anyhow::Result<Secret> {
    if let Some(file) = &args.password_file {
        return from_file(file);
    }
    if let Some(pw) = &args.password {
        if typed_on_command_line() {
            tracing::warn!(
                "--password on the command line is visible to other users of this machine \
                 (ps, /proc); prefer --password-file"
            );
            eprintln!(
                "xenlift: warning: --password on the command line is visible to other users; \
                 prefer --password-file"
            );
        }
        return Ok(pw.clone());
    }
    if io::stdin().is_terminal() {
        return prompt(&format!("Password for {}@{host}: ", args.username));
    }
    anyhow::bail!(
        "no password for {}@{host}: give --password-file FILE (its first line), \
         or run on a terminal to be asked",
        args.username
    )
}

fn from_file(path: &Path) -> anyhow::Result<Secret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the password file {}", path.display()))?;
    let line = text.lines().next().unwrap_or_default();
    anyhow::ensure!(
        !line.is_empty(),
        "the password file {} is empty: its first line must be the password",
        path.display()
    );
    Ok(Secret::new(line))
}

/// True when this process's real arguments carry `--password` (the appliance
/// passes answer-file secrets in-process, where no one else sees them).
fn typed_on_command_line() -> bool {
    std::env::args_os().any(|a| {
        let a = a.to_string_lossy();
        a == "--password" || a.starts_with("--password=")
    })
}

fn prompt(text: &str) -> anyhow::Result<Secret> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = io::stdin();
    eprint!("{text}");
    io::stderr().flush().ok();
    let saved = tcgetattr(&stdin).context("reading the terminal settings")?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("turning off the echo")?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    eprintln!();
    read.context("reading the password")?;
    let pw = line.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!pw.is_empty(), "no password given");
    Ok(Secret::new(pw))
}
