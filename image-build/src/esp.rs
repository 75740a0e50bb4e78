//! The EFI system partition image appended to the ISO: shim as the default
//! boot program, Debian's signed GRUB for CD/USB next to it, MokManager, and
//! a GRUB stub config. Written with the fatfs crate with a fixed volume id
//! and fixed timestamps, so it is byte-for-byte reproducible.

use std::io::{Cursor, Write};

use anyhow::Context;
use fatfs::{Date, DateTime, FileSystem, FormatVolumeOptions, FsOptions, Time, TimeProvider};

#[derive(Debug)]
struct FixedTime(Date);

impl TimeProvider for FixedTime {
    fn get_current_date(&self) -> Date {
        self.0
    }
    fn get_current_date_time(&self) -> DateTime {
        DateTime {
            date: self.0,
            time: Time {
                hour: 0,
                min: 0,
                sec: 0,
                millis: 0,
            },
        }
    }
}

/// Builds the image holding `files` (path, bytes).
pub fn build(size: usize, volume_id: u32, files: &[(&str, Vec<u8>)]) -> anyhow::Result<Vec<u8>> {
    let mut image = Cursor::new(vec![0u8; size]);
    fatfs::format_volume(
        &mut image,
        FormatVolumeOptions::new()
            .volume_id(volume_id)
            .volume_label(*b"XENLIFT-ESP"),
    )
    .context("formatting the ESP image")?;
    let time: &'static FixedTime = Box::leak(Box::new(FixedTime(Date {
        year: 2020,
        month: 1,
        day: 1,
    })));
    {
        let fs = FileSystem::new(&mut image, FsOptions::new().time_provider(time))
            .context("opening the ESP image")?;
        for (path, data) in files {
            let root = fs.root_dir();
            let mut dir = root;
            let parts: Vec<&str> = path.split('/').collect();
            let (name, dirs) = parts.split_last().context("empty ESP path")?;
            for d in dirs {
                dir = match dir.open_dir(d) {
                    Ok(x) => x,
                    Err(_) => dir
                        .create_dir(d)
                        .with_context(|| format!("ESP: mkdir {d}"))?,
                };
            }
            let mut f = dir
                .create_file(name)
                .with_context(|| format!("ESP: creating {path}"))?;
            f.truncate()?;
            f.write_all(data)
                .with_context(|| format!("ESP: writing {path} (image too small?)"))?;
        }
        fs.unmount().context("closing the ESP image")?;
    }
    Ok(image.into_inner())
}
