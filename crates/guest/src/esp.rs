//! The EFI system partition, read and written with mtools: the host (or the
//! appliance) may have no vfat driver, and nothing here needs a mount.

use std::path::{Path, PathBuf};

use crate::cmd;
use crate::error::{Error, Result};

/// A FAT filesystem on a device, addressed with `::/PATH` (FAT names are
/// case-insensitive).
#[derive(Debug, Clone)]
pub(crate) struct Esp {
    device: PathBuf,
}

impl Esp {
    pub(crate) fn new(device: &Path) -> Esp {
        Esp {
            device: device.to_path_buf(),
        }
    }

    fn image(&self) -> String {
        self.device.to_string_lossy().into_owned()
    }

    /// Entries of a directory (directories end with `/`), or None when it
    /// does not exist.
    pub(crate) fn list(&self, dir: &str) -> Result<Option<Vec<String>>> {
        let target = format!("::{dir}");
        let out = cmd::output("mdir", &["-b", "-i", &self.image(), &target])?;
        if !out.status.success() {
            return Ok(None);
        }
        let prefix = format!("{target}/");
        let names = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let rest = l.get(prefix.len()..).filter(|_| {
                    l.to_ascii_lowercase()
                        .starts_with(&prefix.to_ascii_lowercase())
                })?;
                Some(rest.to_string())
            })
            .filter(|n| !n.is_empty())
            .collect();
        Ok(Some(names))
    }

    /// Whether a file or directory exists.
    pub(crate) fn exists(&self, path: &str) -> Result<bool> {
        let out = cmd::output("mdir", &["-b", "-i", &self.image(), &format!("::{path}")])?;
        Ok(out.status.success())
    }

    /// Finds an entry of `dir` by case-insensitive name; returns its real name.
    pub(crate) fn find(&self, dir: &str, name: &str) -> Result<Option<String>> {
        Ok(self.list(dir)?.and_then(|entries| {
            entries
                .into_iter()
                .map(|e| e.trim_end_matches('/').to_string())
                .find(|e| e.eq_ignore_ascii_case(name))
        }))
    }

    pub(crate) fn mkdir(&self, dir: &str) -> Result<()> {
        cmd::run("mmd", &["-i", &self.image(), &format!("::{dir}")]).map(drop)
    }

    /// Copies a file inside the ESP through a host temporary file.
    pub(crate) fn copy(&self, from: &str, to: &str) -> Result<()> {
        let tmp = tempfile::NamedTempFile::new().map_err(Error::io(
            "creating a temporary file in",
            std::env::temp_dir(),
        ))?;
        let host = tmp.path().to_string_lossy().into_owned();
        cmd::run(
            "mcopy",
            &["-n", "-o", "-i", &self.image(), &format!("::{from}"), &host],
        )?;
        cmd::run(
            "mcopy",
            &["-n", "-o", "-i", &self.image(), &host, &format!("::{to}")],
        )
        .map(drop)
    }
}
