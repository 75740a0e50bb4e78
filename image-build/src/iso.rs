//! The hybrid ISO with xorriso: ISO9660 tree with isolinux for BIOS (CD, and
//! USB through the isohybrid MBR), the ESP appended as a GPT partition for
//! UEFI (shim -> GRUB -> kernel, all signed by Debian), fixed dates.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

/// The GPT type of an EFI system partition.
const ESP_TYPE: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";

pub struct IsoInputs<'a> {
    pub tree: &'a Path,
    pub isohdpfx: &'a Path,
    pub esp: &'a Path,
    pub out: &'a Path,
    pub epoch: u32,
}

/// `YYYYMMDDhhmmss00` of a Unix time (UTC), as xorriso wants dates.
pub fn iso_date(epoch: u32) -> String {
    let t = media::date::Utc::from_unix(u64::from(epoch));
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}00",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

pub fn xorriso(i: &IsoInputs<'_>) -> anyhow::Result<()> {
    let date = iso_date(i.epoch);
    let out = Command::new("xorriso")
        .env("SOURCE_DATE_EPOCH", i.epoch.to_string())
        .args(["-as", "mkisofs", "-quiet", "-o"])
        .arg(i.out)
        .args(["-V", crate::layout::VOLUME_ID, "-r", "-J", "-joliet-long"])
        .arg(format!("--modification-date={date}"))
        .arg("-isohybrid-mbr")
        .arg(i.isohdpfx)
        .args(["--mbr-force-bootable", "-partition_offset", "16"])
        .args([
            "-b",
            "isolinux/isolinux.bin",
            "-c",
            "isolinux/boot.cat",
            "-no-emul-boot",
            "-boot-load-size",
            "4",
            "-boot-info-table",
        ])
        .args(["-append_partition", "2", ESP_TYPE])
        .arg(i.esp)
        .arg("-appended_part_as_gpt")
        .args([
            "-eltorito-alt-boot",
            "-e",
            "--interval:appended_partition_2:all::",
            "-no-emul-boot",
        ])
        .arg(i.tree)
        .output()
        .context("running xorriso (run ci/setup)")?;
    if !out.status.success() {
        bail!("xorriso failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        let rows = [
            (0, "1970010100000000"),
            (1_700_000_000, "2023111422132000"),
            (951_782_400, "2000022900000000"),
        ];
        for (i, (epoch, want)) in rows.iter().enumerate() {
            assert_eq!(super::iso_date(*epoch), *want, "row {i}");
        }
    }
}
