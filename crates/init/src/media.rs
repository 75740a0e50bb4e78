//! Finds the medium this appliance booted from (CD or USB stick holding our
//! ISO9660 volume with this build's `/.disk/id/<build-id>` marker) and mounts
//! it read-only, so the agent can read the answer file embedded in it.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount, MsFlags};

pub const MOUNT_POINT: &str = "/run/xenlift/media";

/// The ISO9660 volume identifier our images carry.
pub const VOLUME_ID: &str = "XENLIFT";

/// Whether the bytes at 32 KiB of a device are our ISO9660 primary volume
/// descriptor.
pub fn is_our_volume(descriptor: &[u8]) -> bool {
    descriptor.get(..6) == Some(b"\x01CD001")
        && descriptor
            .get(40..72)
            .and_then(|v| std::str::from_utf8(v).ok())
            .is_some_and(|v| v.trim_end() == VOLUME_ID)
}

fn read_descriptor(dev: &Path) -> Option<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(dev).ok()?;
    f.seek(SeekFrom::Start(32768)).ok()?;
    let mut buf = vec![0u8; 2048];
    f.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// Tries each candidate device; returns the one mounted at MOUNT_POINT.
pub fn find_and_mount(candidates: &[String], build_id: &str) -> Option<PathBuf> {
    let _ = std::fs::create_dir_all(MOUNT_POINT);
    for name in candidates {
        let dev = PathBuf::from(format!("/dev/{name}"));
        if !read_descriptor(&dev).is_some_and(|d| is_our_volume(&d)) {
            continue;
        }
        let mounted = mount(
            Some(&dev),
            MOUNT_POINT,
            Some("iso9660"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            None::<&str>,
        );
        if mounted.is_err() {
            continue;
        }
        if build_id.is_empty()
            || Path::new(MOUNT_POINT)
                .join(".disk/id")
                .join(build_id)
                .exists()
        {
            return Some(dev);
        }
        // Another xenlift build's stick: not ours.
        let _ = umount(MOUNT_POINT);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_descriptor_is_recognized() {
        let mut d = vec![0u8; 2048];
        d[..6].copy_from_slice(b"\x01CD001");
        d[40..72].copy_from_slice(format!("{:<32}", "XENLIFT").as_bytes());
        assert!(is_our_volume(&d));
        d[40..72].copy_from_slice(format!("{:<32}", "Debian 12").as_bytes());
        assert!(!is_our_volume(&d));
        assert!(!is_our_volume(&d[..10]));
    }
}
