//! Block device ioctls behind safe wrappers with typed results. Every unsafe
//! call of the crate that talks to the kernel lives here.

use std::fs::File;
use std::io;
use std::num::NonZeroU64;
use std::os::fd::AsRawFd;

use libc::{c_int, c_uint};

// Request numbers from <linux/fs.h>.
nix::ioctl_read!(blkgetsize64, 0x12, 114, u64);
nix::ioctl_read_bad!(blksszget, nix::request_code_none!(0x12, 104), c_int);
nix::ioctl_read_bad!(blkpbszget, nix::request_code_none!(0x12, 123), c_uint);
nix::ioctl_write_ptr_bad!(blkroset, nix::request_code_none!(0x12, 93), c_int);
nix::ioctl_read_bad!(blkroget, nix::request_code_none!(0x12, 94), c_int);

/// A sector size the kernel reported: a power of two from 512 to 64 KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectorSize(u32);

impl SectorSize {
    pub fn new(bytes: u64) -> Option<SectorSize> {
        let ok = bytes.is_power_of_two() && (512..=65536).contains(&bytes);
        ok.then_some(SectorSize(bytes as u32))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

fn errno(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn bad_value(what: &str, value: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the kernel reported a {what} of {value}"),
    )
}

/// Size of a block device in bytes (BLKGETSIZE64).
pub fn device_size(dev: &File) -> io::Result<NonZeroU64> {
    let mut size: u64 = 0;
    // SAFETY: the descriptor is open for the lifetime of `dev`, and the
    // kernel writes one u64 into `size`, which lives across the call.
    unsafe { blkgetsize64(dev.as_raw_fd(), &mut size) }.map_err(errno)?;
    NonZeroU64::new(size).ok_or_else(|| bad_value("device size", 0))
}

/// Logical sector size (BLKSSZGET): the unit of partition table addresses.
pub fn logical_sector_size(dev: &File) -> io::Result<SectorSize> {
    let mut size: c_int = 0;
    // SAFETY: the descriptor is valid for the call; the kernel writes one
    // int into `size`.
    unsafe { blksszget(dev.as_raw_fd(), &mut size) }.map_err(errno)?;
    let size = u64::try_from(size).unwrap_or(0);
    SectorSize::new(size).ok_or_else(|| bad_value("logical sector size", size))
}

/// Physical sector size (BLKPBSZGET).
pub fn physical_sector_size(dev: &File) -> io::Result<SectorSize> {
    let mut size: c_uint = 0;
    // SAFETY: the descriptor is valid for the call; the kernel writes one
    // unsigned int into `size`.
    unsafe { blkpbszget(dev.as_raw_fd(), &mut size) }.map_err(errno)?;
    SectorSize::new(u64::from(size)).ok_or_else(|| bad_value("physical sector size", size.into()))
}

/// Whether the kernel refuses writes to the device (BLKROGET).
pub fn is_read_only(dev: &File) -> io::Result<bool> {
    let mut ro: c_int = 0;
    // SAFETY: the descriptor is valid for the call; the kernel writes one
    // int into `ro`.
    unsafe { blkroget(dev.as_raw_fd(), &mut ro) }.map_err(errno)?;
    Ok(ro != 0)
}

/// Makes the kernel refuse (or accept again) writes to the device (BLKROSET).
/// Needs CAP_SYS_ADMIN.
pub fn set_read_only(dev: &File, read_only: bool) -> io::Result<()> {
    let flag: c_int = read_only.into();
    // SAFETY: the descriptor is valid for the call; the kernel only reads
    // the int behind the pointer, which lives across the call.
    unsafe { blkroset(dev.as_raw_fd(), &flag) }.map_err(errno)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sector_sizes_are_checked() {
        assert_eq!(SectorSize::new(512).map(SectorSize::get), Some(512));
        assert_eq!(SectorSize::new(4096).map(SectorSize::get), Some(4096));
        for bad in [0, 256, 513, 1 << 17] {
            assert!(SectorSize::new(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn regular_files_are_refused_with_enotty() {
        let f = tempfile::tempfile().unwrap();
        let err = device_size(&f).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTTY));
    }
}
