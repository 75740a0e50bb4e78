//! BIOS or UEFI, from the source disks: an EFI system partition on a GPT disk
//! that holds an EFI loader means the source booted UEFI.

use std::io::{self, Read, Seek, SeekFrom, Write};

use disk::{ContentKind, DiskLayout, TableKind};
use extents::ReadAt;
use xapi::Firmware;

const ESP_TYPE: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";

/// The firmware and why, in words for the plan.
pub fn detect(disks: &[(&dyn ReadAt, &DiskLayout)]) -> (Firmware, String) {
    for (i, (reader, layout)) in disks.iter().enumerate() {
        if layout.table.kind != TableKind::Gpt {
            continue;
        }
        for part in &layout.partitions {
            let is_esp = part
                .partition
                .type_id
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(ESP_TYPE));
            if !is_esp {
                continue;
            }
            let fat = part.content().is_some_and(|c| c.kind == ContentKind::Vfat);
            let p = &part.partition;
            match fat.then(|| efi_loader(*reader, p.start, p.size)) {
                Some(Ok(Some(loader))) => {
                    return (
                        Firmware::Uefi,
                        format!(
                            "disk {i} partition {} is an EFI system partition holding {loader}",
                            p.number
                        ),
                    )
                }
                Some(Err(e)) => tracing::warn!(
                    disk = i,
                    partition = p.number,
                    error = %e,
                    "cannot read the EFI system partition"
                ),
                _ => {}
            }
        }
    }
    (
        Firmware::Bios,
        "no EFI system partition with an EFI loader on a GPT disk".into(),
    )
}

/// The path of the first `*.efi` file under `/EFI/*/`, if any.
fn efi_loader(disk: &dyn ReadAt, start: u64, len: u64) -> io::Result<Option<String>> {
    let view = View {
        disk,
        start,
        len,
        pos: 0,
    };
    let fs = fatfs::FileSystem::new(view, fatfs::FsOptions::new().update_accessed_date(false))?;
    let root = fs.root_dir();
    let Ok(efi) = root.open_dir("EFI") else {
        return Ok(None);
    };
    for vendor in efi.iter() {
        let vendor = vendor?;
        let name = vendor.file_name();
        if !vendor.is_dir() || name == "." || name == ".." {
            continue;
        }
        for file in vendor.to_dir().iter() {
            let file = file?;
            let fname = file.file_name();
            if file.is_file() && fname.to_ascii_lowercase().ends_with(".efi") {
                return Ok(Some(format!("EFI/{name}/{fname}")));
            }
        }
    }
    Ok(None)
}

/// A read-only window of the disk as a file for the FAT reader; writes fail.
struct View<'a> {
    disk: &'a dyn ReadAt,
    start: u64,
    len: u64,
    pos: u64,
}

impl Read for View<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.disk.read_at(&mut buf[..want], self.start + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for View<'_> {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the source disk is never written",
        ))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for View<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let next = match to {
            SeekFrom::Start(o) => Some(o),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = next.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}
