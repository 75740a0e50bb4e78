//! Runs helper programs (losetup, mount, blkid, mtools, chroot) with errors
//! that carry the command line and its stderr.

use std::ffi::OsStr;
use std::process::{Command, Output};

use crate::error::{Error, Result};

/// Runs `program args...`; fails unless it exits 0. Returns stdout as text.
pub(crate) fn run<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<String> {
    let out = output(program, args)?;
    if !out.status.success() {
        return Err(failure(program, args, &out));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command and returns its output whatever the exit status.
pub(crate) fn output<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<Output> {
    tracing::debug!(program, args = ?args.iter().map(|a| a.as_ref().to_string_lossy()).collect::<Vec<_>>(), "run");
    Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        // mtools refuses some valid FAT geometries without this.
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .map_err(|source| Error::Spawn {
            program: program.to_string(),
            source,
        })
}

/// The error for a command that exited non-zero.
pub(crate) fn failure<S: AsRef<OsStr>>(program: &str, args: &[S], out: &Output) -> Error {
    let mut command = program.to_string();
    for a in args {
        command.push(' ');
        command.push_str(&a.as_ref().to_string_lossy());
    }
    let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if stderr.is_empty() {
        stderr = String::from_utf8_lossy(&out.stdout).trim().to_string();
    }
    // Long tool output: the end says what failed.
    if stderr.len() > 2000 {
        let cut = stderr.len() - 2000;
        let cut = (cut..stderr.len())
            .find(|i| stderr.is_char_boundary(*i))
            .unwrap_or(stderr.len());
        stderr = format!("...{}", &stderr[cut..]);
    }
    Error::Command {
        command,
        status: out.status.to_string(),
        stderr,
    }
}
