//! Errors of the `disk` crate: what failed, on which disk, and what to do.

use std::io;
use std::path::{Path, PathBuf};

/// An error opening, querying or reading a disk.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operation on a disk failed; `reason` is the plain-language cause.
    #[error("{action} {}: {reason}", path.display())]
    Disk {
        action: &'static str,
        path: PathBuf,
        reason: String,
        io: io::Error,
    },
    /// The path names something that holds no disk (a directory, a socket...).
    #[error("{}: not a block device or a disk image file", path.display())]
    NotADisk { path: PathBuf },
    /// The disk has no bytes at all.
    #[error("{}: the disk is empty (0 bytes)", path.display())]
    Empty { path: PathBuf },
    /// Reading the kernel's view of the block devices failed.
    #[error("reading {}: {io}", path.display())]
    Sysfs { path: PathBuf, io: io::Error },
}

impl Error {
    /// Wraps an I/O error from `action` ("opening", "reading") on `path`,
    /// turning the errno values people meet into advice.
    pub fn disk(action: &'static str, path: &Path, io: io::Error) -> Self {
        Error::Disk {
            action,
            path: path.to_path_buf(),
            reason: plain_reason(&io),
            io,
        }
    }

    /// The underlying I/O error, if any.
    pub fn io(&self) -> Option<&io::Error> {
        match self {
            Error::Disk { io, .. } | Error::Sysfs { io, .. } => Some(io),
            Error::NotADisk { .. } | Error::Empty { .. } => None,
        }
    }
}

/// A short message for the errno values that have an obvious next step.
pub fn plain_reason(e: &io::Error) -> String {
    let advice = match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => "permission denied: run as root",
        Some(libc::EBUSY) => "device is in use: unmount it or stop the program using it",
        Some(libc::ENOENT) => "no such file or device",
        Some(libc::ENXIO) | Some(libc::ENODEV) => "no such device (was it removed?)",
        Some(libc::ENOMEDIUM) => "no medium in the drive",
        Some(libc::EIO) => "I/O error: the disk may be failing (see dmesg)",
        Some(libc::ENOTTY) => "not a block device",
        _ => return e.to_string(),
    };
    advice.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_errno_values_get_advice() {
        let cases = [
            (libc::EACCES, "permission denied: run as root"),
            (libc::EPERM, "permission denied: run as root"),
            (libc::EBUSY, "device is in use"),
            (libc::ENOMEDIUM, "no medium"),
        ];
        for (i, (errno, want)) in cases.into_iter().enumerate() {
            let e = Error::disk(
                "opening",
                Path::new("/dev/sdz"),
                io::Error::from_raw_os_error(errno),
            );
            let text = e.to_string();
            assert!(text.starts_with("opening /dev/sdz: "), "case {i}: {text}");
            assert!(text.contains(want), "case {i}: {text}");
        }
    }

    #[test]
    fn other_errors_keep_their_text() {
        let e = io::Error::other("strange");
        assert_eq!(plain_reason(&e), "strange");
    }
}
