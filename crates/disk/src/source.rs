//! A source disk: a block device or a disk image file, opened read-only.
//! Block devices are also marked read-only in the kernel (BLKROSET) while
//! they are open, so that nothing else on the system writes to them either.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use extents::{ExtentBuilder, ExtentMap, FileAt, ReadAt, Window};
use nix::unistd::{lseek, Whence};
use serde::Serialize;

use crate::content::ContentKind;
use crate::error::Error;
use crate::ioctl;
use crate::probe;
use crate::sysfs;
use crate::table::{self, TableKind};

/// What kind of file holds the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskKind {
    BlockDevice,
    ImageFile,
}

/// Identity and geometry of a source disk.
#[derive(Clone, Debug, Serialize)]
pub struct DiskInfo {
    pub path: String,
    pub kind: DiskKind,
    pub size: u64,
    pub logical_sector_size: u32,
    pub physical_sector_size: u32,
    pub model: Option<String>,
    pub serial: Option<String>,
}

/// What happens to the kernel read-only flag of a block device when the
/// [`SourceDisk`] is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReadOnlyPolicy {
    /// Put back the flag as it was (a normal program on someone's host).
    #[default]
    RestoreOnDrop,
    /// Leave the device read-only (the appliance: nothing may write the
    /// source until power-off).
    LeaveSet,
}

/// An open, read-only source disk.
#[derive(Debug)]
pub struct SourceDisk {
    path: PathBuf,
    reader: FileAt,
    info: DiskInfo,
    /// Set when we turned the kernel flag on and must turn it off on drop.
    restore_writable: bool,
}

impl SourceDisk {
    /// Opens a disk image file or block device read-only; a block device's
    /// kernel read-only flag is restored on drop.
    pub fn open(path: &Path) -> Result<SourceDisk, Error> {
        SourceDisk::open_with(path, ReadOnlyPolicy::RestoreOnDrop)
    }

    /// Opens a disk with an explicit read-only flag policy.
    pub fn open_with(path: &Path, policy: ReadOnlyPolicy) -> Result<SourceDisk, Error> {
        let file = File::open(path).map_err(|e| Error::disk("opening", path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::disk("examining", path, e))?;
        let file_type = meta.file_type();
        if file_type.is_block_device() {
            Self::open_device(path, file, meta.rdev(), policy)
        } else if file_type.is_file() {
            Self::open_image(path, file, meta.len())
        } else {
            Err(Error::NotADisk {
                path: path.to_path_buf(),
            })
        }
    }

    fn open_device(
        path: &Path,
        file: File,
        rdev: u64,
        policy: ReadOnlyPolicy,
    ) -> Result<Self, Error> {
        let size = ioctl::device_size(&file).map_err(|e| Error::disk("sizing", path, e))?;
        let logical =
            ioctl::logical_sector_size(&file).map_err(|e| Error::disk("querying", path, e))?;
        let physical =
            ioctl::physical_sector_size(&file).map_err(|e| Error::disk("querying", path, e))?;
        let was_read_only =
            ioctl::is_read_only(&file).map_err(|e| Error::disk("querying", path, e))?;
        if !was_read_only {
            ioctl::set_read_only(&file, true)
                .map_err(|e| Error::disk("marking read-only", path, e))?;
        }
        let (model, serial) = sysfs::identity_of_device(
            Path::new("/sys"),
            libc::major(rdev).into(),
            libc::minor(rdev).into(),
        );
        let info = DiskInfo {
            path: path.display().to_string(),
            kind: DiskKind::BlockDevice,
            size: size.get(),
            logical_sector_size: logical.get(),
            physical_sector_size: physical.get(),
            model,
            serial,
        };
        tracing::debug!(disk = %path.display(), size = info.size, "opened block device read-only");
        Ok(SourceDisk {
            path: path.to_path_buf(),
            reader: FileAt::new(file, size.get()),
            info,
            restore_writable: !was_read_only && policy == ReadOnlyPolicy::RestoreOnDrop,
        })
    }

    fn open_image(path: &Path, file: File, size: u64) -> Result<Self, Error> {
        if size == 0 {
            return Err(Error::Empty {
                path: path.to_path_buf(),
            });
        }
        let reader = FileAt::new(file, size);
        let sector = image_sector_size(&reader).map_err(|e| Error::disk("reading", path, e))?;
        let info = DiskInfo {
            path: path.display().to_string(),
            kind: DiskKind::ImageFile,
            size,
            logical_sector_size: sector,
            physical_sector_size: sector,
            model: None,
            serial: None,
        };
        Ok(SourceDisk {
            path: path.to_path_buf(),
            reader,
            info,
            restore_writable: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn info(&self) -> &DiskInfo {
        &self.info
    }

    /// For image files, the extents that hold data (SEEK_DATA/SEEK_HOLE):
    /// holes read as zeros and never need reading. `None` for block devices,
    /// where every byte may hold data.
    pub fn data_extents(&self) -> Result<Option<ExtentMap>, Error> {
        if self.info.kind == DiskKind::BlockDevice {
            return Ok(None);
        }
        data_extents(self.reader.file(), self.info.size)
            .map(Some)
            .map_err(|e| Error::disk("finding data in", &self.path, e))
    }
}

impl Drop for SourceDisk {
    fn drop(&mut self) {
        if self.restore_writable {
            if let Err(e) = ioctl::set_read_only(self.reader.file(), false) {
                tracing::warn!(disk = %self.path.display(), error = %e, "cannot clear the read-only flag");
            }
        }
    }
}

impl ReadAt for SourceDisk {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.reader.read_at(buf, offset)
    }
    fn size(&self) -> u64 {
        self.reader.size()
    }
}

/// The logical sector size of a disk image. Image files carry none, so the
/// partition table decides: a GPT header at byte 4096 (LBA 1 of 4096-byte
/// sectors) and none at byte 512 means 4096; an MBR whose partitions hold
/// recognizable contents only when read with 4096-byte sectors means 4096
/// too (reading such a table with 512-byte sectors would map the wrong
/// bytes); anything else means 512.
pub fn image_sector_size(image: &dyn ReadAt) -> io::Result<u32> {
    let has_gpt_at = |offset: u64| -> io::Result<bool> {
        let mut sig = [0u8; 8];
        match image.read_exact_at(&mut sig, offset) {
            Ok(()) => Ok(&sig == b"EFI PART"),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(e),
        }
    };
    if has_gpt_at(512)? {
        return Ok(512);
    }
    if has_gpt_at(4096)? {
        return Ok(4096);
    }
    if recognized_partitions(image, 4096)? > recognized_partitions(image, 512)? {
        return Ok(4096);
    }
    Ok(512)
}

/// How many partitions of the table read with `sector`-byte sectors hold a
/// content the probes recognize.
fn recognized_partitions(image: &dyn ReadAt, sector: u32) -> io::Result<usize> {
    let table = table::read(image, sector)?;
    if table.kind != TableKind::Mbr || table.doubt.is_some() {
        return Ok(0);
    }
    let mut count = 0;
    for p in table.partitions.iter().filter(|p| p.holds_data()) {
        let window = Window::new(image, p.start, p.size);
        if probe::probe(&window)?.kind != ContentKind::Unknown {
            count += 1;
        }
    }
    Ok(count)
}

/// Data extents of a regular file of `size` bytes, from SEEK_DATA/SEEK_HOLE.
/// Filesystems without hole reporting get one extent covering everything.
fn data_extents(file: &File, size: u64) -> io::Result<ExtentMap> {
    let mut map = ExtentBuilder::new();
    let mut pos: u64 = 0;
    while pos < size {
        let at = i64::try_from(pos).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
        let start = match lseek(file.as_fd(), at, Whence::SeekData) {
            Ok(s) => s as u64,
            Err(nix::Error::ENXIO) => break,
            Err(nix::Error::EINVAL) if pos == 0 => return Ok(ExtentMap::single(0, size)),
            Err(e) => return Err(io::Error::from_raw_os_error(e as i32)),
        };
        let start_at =
            i64::try_from(start).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
        let end = match lseek(file.as_fd(), start_at, Whence::SeekHole) {
            Ok(e) => (e as u64).min(size),
            Err(e) => return Err(io::Error::from_raw_os_error(e as i32)),
        };
        if end <= start {
            break;
        }
        map.push(start, end - start);
        pos = end;
    }
    Ok(map.build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn data_extents_skip_holes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse.img");
        let f = File::create(&path).unwrap();
        f.set_len(64 << 20).unwrap();
        f.write_all_at(&[1u8; 4096], 1 << 20).unwrap();
        f.write_all_at(&[2u8; 8192], 40 << 20).unwrap();
        f.sync_all().unwrap();
        let disk = SourceDisk::open(&path).unwrap();
        let map = disk.data_extents().unwrap().unwrap();
        // Filesystems may round data out to their block size, never drop it.
        assert!(
            map.bytes_in(extents::Extent::new(1 << 20, 4096)) == 4096,
            "{map:?}"
        );
        assert!(
            map.bytes_in(extents::Extent::new(40 << 20, 8192)) == 8192,
            "{map:?}"
        );
        assert!(
            map.total_bytes() < 1 << 20,
            "holes reported as data: {map:?}"
        );
        assert_eq!(disk.info().kind, DiskKind::ImageFile);
        assert_eq!(disk.info().size, 64 << 20);
    }

    #[test]
    fn image_sector_size_from_gpt_position() {
        let mut img = vec![0u8; 16384];
        assert_eq!(image_sector_size(&img).unwrap(), 512);
        img[4096..4104].copy_from_slice(b"EFI PART");
        assert_eq!(image_sector_size(&img).unwrap(), 4096);
        img[512..520].copy_from_slice(b"EFI PART");
        assert_eq!(image_sector_size(&img).unwrap(), 512);
        assert_eq!(image_sector_size(&vec![0u8; 100]).unwrap(), 512);
    }

    #[test]
    fn opening_errors_are_plain() {
        let e = SourceDisk::open(Path::new("/nonexistent/disk.img")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "opening /nonexistent/disk.img: no such file or device"
        );
        let dir = tempfile::tempdir().unwrap();
        let e = SourceDisk::open(dir.path()).unwrap_err();
        assert!(
            e.to_string()
                .contains("not a block device or a disk image file"),
            "{e}"
        );
        let empty = dir.path().join("empty.img");
        File::create(&empty).unwrap();
        let e = SourceDisk::open(&empty).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }
}
