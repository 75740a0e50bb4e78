//! A writer for the `newc` cpio format, the one the Linux kernel unpacks as
//! an initramfs. Every entry gets the same owner (root), the same mtime and
//! inode numbers in the order written, so the same entries in the same order
//! give the same bytes: that is what makes the image build reproducible.

use std::io::{self, Write};

/// Mode bits of the entry types the kernel's unpacker knows.
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// Errors while writing an archive.
#[derive(Debug, thiserror::Error)]
pub enum CpioError {
    /// An entry name the format cannot hold (empty, absolute, NUL or `..`).
    #[error("cpio entry name {0:?} is not a relative path without NUL or '..'")]
    BadName(String),
    /// A field does not fit the format's 32-bit fields.
    #[error("cpio entry {name:?}: {what} {value} does not fit in 32 bits")]
    TooLarge {
        name: String,
        what: &'static str,
        value: u64,
    },
    /// The writer under the archive failed.
    #[error("writing the cpio archive: {0}")]
    Io(#[from] io::Error),
}

/// Writes a `newc` archive entry by entry; call [`CpioWriter::finish`] last.
#[derive(Debug)]
pub struct CpioWriter<W: Write> {
    out: W,
    mtime: u32,
    next_ino: u32,
    written: u64,
}

struct Header<'a> {
    name: &'a str,
    mode: u32,
    nlink: u32,
    size: u64,
    rdev: (u32, u32),
}

impl<W: Write> CpioWriter<W> {
    /// A writer whose entries all carry `mtime` (seconds since the epoch,
    /// normally `SOURCE_DATE_EPOCH`).
    pub fn new(out: W, mtime: u32) -> Self {
        CpioWriter {
            out,
            mtime,
            next_ino: 1,
            written: 0,
        }
    }

    /// A directory (`mode` holds the permission bits, e.g. 0o755).
    pub fn dir(&mut self, name: &str, mode: u32) -> Result<(), CpioError> {
        self.entry(
            &Header {
                name,
                mode: S_IFDIR | (mode & 0o7777),
                nlink: 2,
                size: 0,
                rdev: (0, 0),
            },
            &[],
        )
    }

    /// A regular file with its whole content.
    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> Result<(), CpioError> {
        self.entry(
            &Header {
                name,
                mode: S_IFREG | (mode & 0o7777),
                nlink: 1,
                size: data.len() as u64,
                rdev: (0, 0),
            },
            data,
        )
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, name: &str, target: &str) -> Result<(), CpioError> {
        self.entry(
            &Header {
                name,
                mode: S_IFLNK | 0o777,
                nlink: 1,
                size: target.len() as u64,
                rdev: (0, 0),
            },
            target.as_bytes(),
        )
    }

    /// A character device node (e.g. `dev/console`, 5:1).
    pub fn char_device(
        &mut self,
        name: &str,
        mode: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), CpioError> {
        self.entry(
            &Header {
                name,
                mode: S_IFCHR | (mode & 0o7777),
                nlink: 1,
                size: 0,
                rdev: (major, minor),
            },
            &[],
        )
    }

    /// Writes the trailer, pads the archive to a multiple of 512 bytes (so
    /// another archive can be appended) and returns the writer.
    pub fn finish(mut self) -> Result<W, CpioError> {
        let trailer = Header {
            name: "TRAILER!!!",
            mode: 0,
            nlink: 1,
            size: 0,
            rdev: (0, 0),
        };
        self.write_header(&trailer, 0)?;
        let pad = (512 - self.written % 512) % 512;
        self.put(&vec![0u8; pad as usize])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn entry(&mut self, header: &Header<'_>, data: &[u8]) -> Result<(), CpioError> {
        check_name(header.name)?;
        let ino = self.next_ino;
        self.next_ino = self.next_ino.wrapping_add(1);
        self.write_header(header, ino)?;
        self.put(data)?;
        self.pad4()
    }

    fn write_header(&mut self, h: &Header<'_>, ino: u32) -> Result<(), CpioError> {
        let size = u32::try_from(h.size).map_err(|_| CpioError::TooLarge {
            name: h.name.into(),
            what: "size",
            value: h.size,
        })?;
        let name_size = h.name.len() as u64 + 1;
        let name_size_32 = u32::try_from(name_size).map_err(|_| CpioError::TooLarge {
            name: h.name.into(),
            what: "name length",
            value: name_size,
        })?;
        let fields = [
            ino,
            h.mode,
            0, // uid
            0, // gid
            h.nlink,
            self.mtime,
            size,
            0, // devmajor
            0, // devminor
            h.rdev.0,
            h.rdev.1,
            name_size_32,
            0, // check
        ];
        let mut header = String::with_capacity(110);
        header.push_str("070701");
        for f in fields {
            header.push_str(&format!("{f:08X}"));
        }
        self.put(header.as_bytes())?;
        self.put(h.name.as_bytes())?;
        self.put(&[0])?;
        self.pad4()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad4(&mut self) -> Result<(), CpioError> {
        let pad = (4 - self.written % 4) % 4;
        self.put(&[0u8; 3][..pad as usize])?;
        Ok(())
    }
}

fn check_name(name: &str) -> Result<(), CpioError> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.contains('\0')
        || name.split('/').any(|part| part == ".." || part.is_empty());
    if bad {
        return Err(CpioError::BadName(name.into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(mtime: u32) -> Vec<u8> {
        let mut w = CpioWriter::new(Vec::new(), mtime);
        w.dir("etc", 0o755).unwrap();
        w.dir("etc/xenlift", 0o700).unwrap();
        w.file("etc/xenlift/answer.toml", 0o600, b"to = \"x\"\n")
            .unwrap();
        w.symlink("init", "bin/xenlift-init").unwrap();
        w.char_device("console", 0o600, 5, 1).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn same_entries_give_same_bytes_and_the_archive_is_padded_to_512() {
        let a = sample(1_700_000_000);
        assert_eq!(a, sample(1_700_000_000));
        assert_ne!(a, sample(1_700_000_001), "mtime must be recorded");
        assert_eq!(a.len() % 512, 0);
        assert!(a.starts_with(b"070701"));
    }

    #[test]
    fn bad_names_are_refused() {
        let names = ["", "/etc", "a/../b", "a//b", "a\0b", ".."];
        for (i, name) in names.iter().enumerate() {
            let mut w = CpioWriter::new(Vec::new(), 0);
            assert!(
                matches!(w.file(name, 0o644, b""), Err(CpioError::BadName(_))),
                "row {i}: {name:?} was accepted"
            );
        }
    }

    /// GNU cpio, an independent reader, lists and extracts what we wrote.
    #[test]
    fn gnu_cpio_reads_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.cpio");
        std::fs::write(&archive, sample(1_700_000_000)).unwrap();
        let cpio = |args: &[&str]| {
            let out = std::process::Command::new("cpio")
                .args(args)
                .arg(&archive)
                .output()
                .expect("cpio (run ci/setup)");
            assert!(out.status.success(), "{out:?}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let names = cpio(&["-it", "--quiet", "-F"]);
        assert_eq!(
            names.lines().collect::<Vec<_>>(),
            [
                "etc",
                "etc/xenlift",
                "etc/xenlift/answer.toml",
                "init",
                "console"
            ]
        );
        let long = cpio(&["-itv", "--quiet", "-F"]);
        assert!(long.contains("init -> bin/xenlift-init"), "{long}");
        assert!(
            long.lines().last().unwrap().starts_with("crw-------"),
            "{long}"
        );
        let out = dir.path().join("x");
        std::fs::create_dir(&out).unwrap();
        let extract = std::process::Command::new("cpio")
            .args(["-id", "--quiet", "--no-absolute-filenames", "-F"])
            .arg(&archive)
            .current_dir(&out)
            .output()
            .unwrap();
        assert!(extract.status.success(), "{extract:?}");
        assert_eq!(
            std::fs::read(out.join("etc/xenlift/answer.toml")).unwrap(),
            b"to = \"x\"\n"
        );
    }
}
