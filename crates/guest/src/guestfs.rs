//! Files inside a mounted guest: paths resolved as the guest sees them (an
//! absolute symlink in the guest must never lead to the host's files),
//! changes that keep the original beside them, and the guest-side log.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::report::{Action, Change};

/// Suffix of the copy of a file as it was before the fix-up.
pub const BACKUP_SUFFIX: &str = ".xenlift-orig";
/// The log the fix-up leaves inside the guest.
pub const GUEST_LOG: &str = "/var/log/xenlift-fixup.log";

/// The guest's filesystem tree, mounted at `root` on the host.
#[derive(Debug)]
pub(crate) struct GuestFs {
    root: PathBuf,
}

impl GuestFs {
    pub(crate) fn new(root: &Path) -> GuestFs {
        GuestFs {
            root: root.to_path_buf(),
        }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The host path of a guest path, following symlinks inside the guest.
    /// A missing last component is fine (for files about to be created).
    pub(crate) fn host_path(&self, guest_path: &str) -> Result<PathBuf> {
        let mut resolved = PathBuf::new();
        let mut pending: Vec<String> = components(guest_path);
        pending.reverse();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            if part == ".." {
                resolved.pop();
                continue;
            }
            let candidate = resolved.join(&part);
            let host = self.root.join(&candidate);
            match fs::symlink_metadata(&host) {
                Ok(m) if m.file_type().is_symlink() => {
                    hops += 1;
                    if hops > 40 {
                        return Err(Error::Io {
                            action: "resolving",
                            path: host,
                            source: std::io::Error::other("too many symlinks"),
                        });
                    }
                    let target = fs::read_link(&host).map_err(Error::io("reading link", &host))?;
                    let target = target.to_string_lossy().into_owned();
                    if target.starts_with('/') {
                        resolved = PathBuf::new();
                    }
                    let mut more = components(&target);
                    more.reverse();
                    pending.extend(more);
                }
                _ => resolved = candidate,
            }
        }
        Ok(self.root.join(resolved))
    }

    pub(crate) fn exists(&self, guest_path: &str) -> bool {
        self.host_path(guest_path)
            .map(|p| p.exists())
            .unwrap_or(false)
    }

    /// A text file, or None when it does not exist.
    pub(crate) fn read(&self, guest_path: &str) -> Result<Option<String>> {
        let path = self.host_path(guest_path)?;
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io {
                action: "reading",
                path,
                source: e,
            }),
        }
    }

    /// Names in a guest directory (empty when it does not exist), sorted.
    pub(crate) fn list(&self, guest_dir: &str) -> Result<Vec<String>> {
        let path = self.host_path(guest_dir)?;
        let entries = match fs::read_dir(&path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::Io {
                    action: "listing",
                    path,
                    source: e,
                })
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Replaces a file's content, keeping the original as `*.xenlift-orig`
    /// (the first original: a second run does not overwrite it) and the
    /// file's mode and owner.
    pub(crate) fn replace(
        &self,
        fixup: &str,
        guest_path: &str,
        text: &str,
        details: Vec<String>,
    ) -> Result<Change> {
        let path = self.host_path(guest_path)?;
        let backup = self.keep_original(guest_path, &path)?;
        let meta = fs::metadata(&path).map_err(Error::io("reading metadata of", &path))?;
        write_atomically(
            &path,
            text.as_bytes(),
            meta.permissions().mode(),
            Some((meta.uid(), meta.gid())),
        )?;
        Ok(Change {
            fixup: fixup.into(),
            path: guest_path.into(),
            action: Action::Edited,
            backup: Some(backup_name(guest_path)).filter(|_| backup),
            details,
        })
    }

    /// Creates a new file (mode `mode`); an existing one is kept as the backup.
    pub(crate) fn create(
        &self,
        fixup: &str,
        guest_path: &str,
        text: &str,
        mode: u32,
        details: Vec<String>,
    ) -> Result<Change> {
        let path = self.host_path(guest_path)?;
        let had = path.exists();
        if had {
            self.keep_original(guest_path, &path)?;
        }
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
        }
        write_atomically(&path, text.as_bytes(), mode, None)?;
        Ok(Change {
            fixup: fixup.into(),
            path: guest_path.into(),
            action: if had { Action::Edited } else { Action::Created },
            backup: had.then(|| backup_name(guest_path)),
            details,
        })
    }

    /// Moves a file aside to its backup name, so it stops taking effect.
    pub(crate) fn disable(
        &self,
        fixup: &str,
        guest_path: &str,
        details: Vec<String>,
    ) -> Result<Change> {
        let path = self.host_path(guest_path)?;
        let backup = self.host_path(&backup_name(guest_path))?;
        if let Some(dir) = backup.parent() {
            fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
        }
        if backup.exists() {
            fs::remove_file(&path).map_err(Error::io("removing", &path))?;
        } else {
            fs::rename(&path, &backup).map_err(Error::io("renaming", &path))?;
        }
        Ok(Change {
            fixup: fixup.into(),
            path: guest_path.into(),
            action: Action::Disabled,
            backup: Some(backup_name(guest_path)),
            details,
        })
    }

    /// Copies `path` to its backup name unless a backup exists. Returns
    /// whether a backup now exists.
    fn keep_original(&self, guest_path: &str, path: &Path) -> Result<bool> {
        let backup = self.host_path(&backup_name(guest_path))?;
        if backup.exists() {
            return Ok(true);
        }
        if let Some(dir) = backup.parent() {
            fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
        }
        fs::copy(path, &backup).map_err(Error::io("keeping the original of", path))?;
        let meta = fs::metadata(path).map_err(Error::io("reading metadata of", path))?;
        std::os::unix::fs::chown(&backup, Some(meta.uid()), Some(meta.gid()))
            .map_err(Error::io("setting the owner of", &backup))?;
        Ok(true)
    }

    /// Appends lines to the log inside the guest.
    pub(crate) fn append_log(&self, lines: &[String]) -> Result<()> {
        let path = self.host_path(GUEST_LOG)?;
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
        }
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(Error::io("opening", &path))?;
        for line in lines {
            writeln!(f, "{line}").map_err(Error::io("writing", &path))?;
        }
        f.sync_all().map_err(Error::io("syncing", &path))
    }
}

fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// Directories whose every file takes effect (initramfs-tools sources all
/// of conf.d; network-scripts reads every `ifcfg-*`): a backup there would
/// be read too, so it goes to a sibling directory instead.
const READS_EVERY_FILE: &[&str] = &[
    "/etc/initramfs-tools/conf.d",
    "/etc/sysconfig/network-scripts",
];

/// Where the original of `guest_path` is kept: beside it as
/// `*.xenlift-orig`, or in `<dir>.xenlift-orig/` for the directories above.
pub(crate) fn backup_name(guest_path: &str) -> String {
    if let Some((dir, file)) = guest_path.rsplit_once('/') {
        if READS_EVERY_FILE.contains(&dir) {
            return format!("{dir}{BACKUP_SUFFIX}/{file}");
        }
    }
    format!("{guest_path}{BACKUP_SUFFIX}")
}

fn write_atomically(path: &Path, bytes: &[u8], mode: u32, owner: Option<(u32, u32)>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut tmp = tempfile::Builder::new()
        .prefix(".xenlift-")
        .tempfile_in(dir)
        .map_err(Error::io("creating a temporary file in", dir))?;
    tmp.write_all(bytes).map_err(Error::io("writing", path))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode & 0o7777))
        .map_err(Error::io("setting the mode of", path))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(tmp.as_file(), Some(uid), Some(gid))
            .map_err(Error::io("setting the owner of", path))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(Error::io("syncing", path))?;
    tmp.persist(path).map_err(|e| Error::Io {
        action: "replacing",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_symlinks_stay_inside_the_guest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join("run/x")).unwrap();
        std::os::unix::fs::symlink("/run/x/fstab", root.join("etc/fstab")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("run/x/up")).unwrap();
        let g = GuestFs::new(root);
        assert_eq!(g.host_path("/etc/fstab").unwrap(), root.join("run/x/fstab"));
        assert_eq!(
            g.host_path("/run/x/up/fstab").unwrap(),
            root.join("run/x/fstab")
        );
        assert_eq!(g.host_path("/../../etc").unwrap(), root.join("etc"));
    }

    #[test]
    fn replace_keeps_the_first_original_and_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/crypttab"), "old\n").unwrap();
        fs::set_permissions(root.join("etc/crypttab"), fs::Permissions::from_mode(0o600)).unwrap();
        let g = GuestFs::new(root);
        let c = g.replace("t", "/etc/crypttab", "new\n", vec![]).unwrap();
        assert_eq!(c.backup.as_deref(), Some("/etc/crypttab.xenlift-orig"));
        g.replace("t", "/etc/crypttab", "newer\n", vec![]).unwrap();
        assert_eq!(
            fs::read_to_string(root.join("etc/crypttab")).unwrap(),
            "newer\n"
        );
        assert_eq!(
            fs::read_to_string(root.join("etc/crypttab.xenlift-orig")).unwrap(),
            "old\n"
        );
        let mode = fs::metadata(root.join("etc/crypttab"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn backups_stay_out_of_directories_that_read_every_file() {
        assert_eq!(backup_name("/etc/fstab"), "/etc/fstab.xenlift-orig");
        assert_eq!(
            backup_name("/etc/initramfs-tools/conf.d/resume"),
            "/etc/initramfs-tools/conf.d.xenlift-orig/resume"
        );
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("etc/initramfs-tools/conf.d");
        fs::create_dir_all(&conf).unwrap();
        fs::write(conf.join("resume"), "RESUME=/dev/sda2\n").unwrap();
        let g = GuestFs::new(dir.path());
        let c = g
            .replace(
                "t",
                "/etc/initramfs-tools/conf.d/resume",
                "RESUME=UUID=x\n",
                vec![],
            )
            .unwrap();
        assert_eq!(
            c.backup.as_deref(),
            Some("/etc/initramfs-tools/conf.d.xenlift-orig/resume")
        );
        assert_eq!(g.list("/etc/initramfs-tools/conf.d").unwrap(), ["resume"]);
    }
}
