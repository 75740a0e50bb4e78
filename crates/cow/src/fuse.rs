//! An overlay served as one regular file through FUSE, for loop devices.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use extents::{ExtentMap, ReadAt};
use fuser::{
    FileAttr, FileType, Filesystem, MountOption, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyWrite, Request, TimeOrNow,
};

use crate::error::{Error, Result};
use crate::overlay::{Overlay, Store};

const ROOT: u64 = 1;
const FILE: u64 = 2;
const NAME: &str = "disk";
/// Attributes never change behind the kernel's back.
const TTL: Duration = Duration::from_secs(3600);

struct OverlayFs {
    overlay: Arc<Overlay>,
}

impl OverlayFs {
    fn attr(&self, ino: u64) -> FileAttr {
        let (kind, perm, size, nlink) = if ino == ROOT {
            (FileType::Directory, 0o700, 0, 2)
        } else {
            (FileType::RegularFile, 0o600, self.overlay.size(), 1)
        };
        FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: UNIX_EPOCH,
            mtime: UNIX_EPOCH,
            ctime: UNIX_EPOCH,
            crtime: UNIX_EPOCH,
            kind,
            perm,
            nlink,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }
}

impl Filesystem for OverlayFs {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        if parent == ROOT && name == NAME {
            reply.entry(&TTL, &self.attr(FILE), 0);
        } else {
            reply.error(libc::ENOENT);
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        match ino {
            ROOT | FILE => reply.attr(&TTL, &self.attr(ino)),
            _ => reply.error(libc::ENOENT),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn setattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        _fh: Option<u64>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        // A disk does not change size; times and modes are not kept.
        if size.is_some_and(|s| s != self.overlay.size()) {
            reply.error(libc::EPERM);
        } else {
            reply.attr(&TTL, &self.attr(ino));
        }
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, _flags: i32, reply: ReplyOpen) {
        if ino == FILE {
            reply.opened(0, 0);
        } else {
            reply.error(libc::EISDIR);
        }
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let Ok(offset) = u64::try_from(offset) else {
            return reply.error(libc::EINVAL);
        };
        let mut buf = vec![0u8; size as usize];
        match self.overlay.read_at(&mut buf, offset) {
            Ok(n) => reply.data(&buf[..n]),
            Err(e) => {
                tracing::error!(offset, "copy-on-write view: reading the source: {e}");
                reply.error(libc::EIO)
            }
        }
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        _fh: u64,
        offset: i64,
        data: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        let Ok(offset) = u64::try_from(offset) else {
            return reply.error(libc::EINVAL);
        };
        match self.overlay.write_at(data, offset) {
            Ok(()) => reply.written(data.len() as u32),
            Err(Error::PastEnd { .. }) => reply.error(libc::ENOSPC),
            Err(e) => {
                tracing::error!(offset, "copy-on-write view: {e}");
                reply.error(libc::EIO)
            }
        }
    }

    /// A loop device on the view turns discards and write-zeroes requests of
    /// the file system on it into hole punching and zeroing here; without
    /// this the kernel logs each as an I/O error and the file system falls
    /// back to writing zeros itself.
    fn fallocate(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        _fh: u64,
        offset: i64,
        length: i64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        const ZEROING: i32 = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_ZERO_RANGE;
        let (Ok(offset), Ok(len)) = (u64::try_from(offset), u64::try_from(length)) else {
            return reply.error(libc::EINVAL);
        };
        if mode & !(ZEROING | libc::FALLOC_FL_KEEP_SIZE) != 0 {
            return reply.error(libc::EOPNOTSUPP);
        }
        let result = if mode & ZEROING != 0 {
            self.overlay.write_zeroes(offset, len)
        } else if offset
            .checked_add(len)
            .is_some_and(|end| end <= self.overlay.size())
        {
            // Plain allocation inside the fixed size: the space is there.
            Ok(())
        } else {
            Err(Error::PastEnd {
                offset,
                len,
                size: self.overlay.size(),
            })
        };
        match result {
            Ok(()) => reply.ok(),
            Err(Error::PastEnd { .. }) => reply.error(libc::ENOSPC),
            Err(e) => {
                tracing::error!(offset, "copy-on-write view: {e}");
                reply.error(libc::EIO)
            }
        }
    }

    fn flush(&mut self, _req: &Request<'_>, _ino: u64, _fh: u64, _lo: u64, reply: ReplyEmpty) {
        reply.ok();
    }

    fn fsync(&mut self, _req: &Request<'_>, _ino: u64, _fh: u64, _ds: bool, reply: ReplyEmpty) {
        reply.ok();
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        if ino != ROOT {
            return reply.error(libc::ENOTDIR);
        }
        let entries = [
            (ROOT, FileType::Directory, "."),
            (ROOT, FileType::Directory, ".."),
            (FILE, FileType::RegularFile, NAME),
        ];
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset.max(0) as usize) {
            if reply.add(*ino, (i + 1) as i64, *kind, name) {
                break;
            }
        }
        reply.ok();
    }
}

/// A copy-on-write view of a source disk, served as the regular file
/// [`CowView::path`] until dropped. Put loop devices on that file; detach
/// them before dropping the view.
pub struct CowView {
    overlay: Arc<Overlay>,
    file: PathBuf,
    // Dropped first: unmounts before the mount point goes.
    session: Option<fuser::BackgroundSession>,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for CowView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CowView")
            .field("file", &self.file)
            .field("size", &self.overlay.size())
            .finish_non_exhaustive()
    }
}

impl CowView {
    /// Serves a new overlay of `source` (opened read-only by the caller).
    pub fn new(source: Arc<dyn ReadAt>, store: Store) -> Result<CowView> {
        let overlay = Arc::new(Overlay::new(source, store)?);
        CowView::serve(overlay)
    }

    /// Serves `overlay` under a new private mount point.
    pub fn serve(overlay: Arc<Overlay>) -> Result<CowView> {
        let dir = tempfile::Builder::new()
            .prefix("xenlift-cow-")
            .tempdir()
            .map_err(Error::Scratch)?;
        let fs = OverlayFs {
            overlay: overlay.clone(),
        };
        let options = [
            MountOption::FSName("xenlift-cow".into()),
            MountOption::RW,
            MountOption::NoExec,
            MountOption::NoSuid,
            MountOption::NoDev,
        ];
        let session =
            fuser::spawn_mount2(fs, dir.path(), &options).map_err(|source| Error::Mount {
                path: dir.path().to_path_buf(),
                source,
            })?;
        Ok(CowView {
            file: dir.path().join(NAME),
            overlay,
            session: Some(session),
            _dir: dir,
        })
    }

    /// The file to put loop devices on.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The overlay: read the view, or ask what changed (also after drop).
    pub fn overlay(&self) -> &Arc<Overlay> {
        &self.overlay
    }

    /// The bytes that differ from the source. Writes through the file are
    /// synchronous (no writeback cache), so everything written is counted.
    pub fn changed(&self) -> Result<ExtentMap> {
        self.overlay.changed()
    }
}

impl Drop for CowView {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            // Unmounts and waits for the serving thread.
            s.join();
        }
    }
}
