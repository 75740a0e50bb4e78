//! Errors of guest inspection and fix-up.

use std::path::PathBuf;

/// What went wrong, with the thing it happened to and what to do next.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A helper program could not be started at all.
    #[error("cannot run {program}: {source} (the appliance or host needs {program}; on Debian run ci/setup)")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    /// A helper program ran and failed.
    #[error("{command} failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    /// Reading or writing a file failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A disk given to the fix-up is not usable as described.
    #[error("disk {}: {reason}", path.display())]
    Disk { path: PathBuf, reason: String },
    /// No Linux root filesystem was found on the disks.
    #[error("no Linux root filesystem found (looked for /etc/fstab with /etc/os-release or /usr/lib/os-release on {looked_at} filesystems); the copy is left unchanged")]
    NoRoot { looked_at: usize },
    /// A filesystem is dirty and the options forbid replaying its journal.
    #[error("{device}: {fs_type} filesystem was not cleanly unmounted (journal needs recovery); shut the source down cleanly or allow journal replay on the copy")]
    Dirty { device: String, fs_type: String },
    /// A filesystem check on the copy failed.
    #[error("{device}: e2fsck could not repair the copy (exit {code}): {output}; run e2fsck on the source first")]
    Fsck {
        device: String,
        code: i32,
        output: String,
    },
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
