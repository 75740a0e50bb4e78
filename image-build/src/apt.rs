//! Debian packages through apt with a private configuration (its own sources
//! list, lists and archive cache under the build cache): `apt-get download`
//! and `dpkg-deb -x`, never installed on the host. Each .deb is identified
//! by the SHA-256 apt knows for it, which keys every cache above.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};

/// A package version as apt would download it.
#[derive(Debug, Clone)]
pub struct Deb {
    pub package: String,
    pub file: PathBuf,
    pub sha256: String,
}

pub struct Apt {
    root: PathBuf,
}

impl Apt {
    /// Sets up the private apt tree under `cache/apt` with `sources`,
    /// refreshing the package lists when older than a day or when
    /// `refresh` is set.
    pub fn new(cache: &Path, sources: &str, refresh: bool) -> anyhow::Result<Apt> {
        let root = cache.join("apt");
        for d in ["lists/partial", "archives/partial", "debs", "etc", "query"] {
            std::fs::create_dir_all(root.join(d))
                .with_context(|| format!("creating {}", root.join(d).display()))?;
        }
        let status = root.join("status");
        if !status.exists() {
            std::fs::write(&status, "")?;
        }
        let list = root.join("etc/sources.list");
        let changed = std::fs::read_to_string(&list).ok().as_deref() != Some(sources);
        if changed {
            std::fs::write(&list, sources)?;
        }
        let apt = Apt { root };
        let stamp = apt.root.join("lists/.updated");
        let stale = std::fs::metadata(&stamp)
            .and_then(|m| m.modified())
            .map(|t| {
                SystemTime::now().duration_since(t).unwrap_or_default() > Duration::from_secs(86400)
            })
            .unwrap_or(true);
        if refresh || changed || stale {
            eprintln!("image-build: apt-get update (private lists)");
            apt.run("apt-get", &["update", "-qq"])?;
            std::fs::write(&stamp, "")?;
        }
        Ok(apt)
    }

    fn options(&self) -> Vec<String> {
        let r = self.root.display();
        [
            format!("Dir::Etc::SourceList={r}/etc/sources.list"),
            "Dir::Etc::SourceParts=/nonexistent".into(),
            format!("Dir::State::Lists={r}/lists"),
            format!("Dir::State::status={r}/status"),
            format!("Dir::Cache={r}"),
            format!("Dir::Cache::archives={r}/archives"),
            "Dir::Cache::pkgcache=".into(),
            "Dir::Cache::srcpkgcache=".into(),
            "APT::Architecture=amd64".into(),
            "APT::Architectures=amd64".into(),
            "APT::Sandbox::User=root".into(),
        ]
        .into_iter()
        .flat_map(|o| ["-o".to_string(), o])
        .collect()
    }

    fn run(&self, tool: &str, args: &[&str]) -> anyhow::Result<String> {
        self.run_in(&self.root.join("debs"), tool, args)
    }

    fn run_in(&self, cwd: &Path, tool: &str, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(tool)
            .args(self.options())
            .args(args)
            .current_dir(cwd)
            .output()
            .with_context(|| format!("running {tool} (run ci/setup)"))?;
        if !out.status.success() {
            bail!(
                "{tool} {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The candidate version's file name and SHA-256, without downloading.
    fn candidate(&self, package: &str) -> anyhow::Result<(String, String)> {
        // Run elsewhere: apt prints nothing for a file already in its folder.
        let text = self
            .run_in(
                &self.root.join("query"),
                "apt-get",
                &["download", "--print-uris", "-qq", package],
            )
            .with_context(|| format!("resolving Debian package {package}"))?;
        // 'URL' FILE SIZE SHA256:HEX
        let line = text
            .lines()
            .find(|l| l.starts_with('\''))
            .with_context(|| format!("apt printed no download for {package}"))?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let (Some(file), Some(sum)) = (words.get(1), words.get(3)) else {
            bail!("unexpected apt output for {package}: {line}");
        };
        let sha = sum
            .strip_prefix("SHA256:")
            .with_context(|| format!("apt gave no SHA-256 for {package}: {line}"))?;
        Ok((file.to_string(), sha.to_ascii_lowercase()))
    }

    /// Downloads the candidate of `package` unless the cache has it.
    pub fn fetch(&self, package: &str) -> anyhow::Result<Deb> {
        let (name, sha256) = self.candidate(package)?;
        let file = self.root.join("debs").join(&name);
        if !file.exists() || crate::hash::file_sha256(&file)? != sha256 {
            eprintln!("image-build: downloading {name}");
            self.run("apt-get", &["download", "-qq", package])?;
            let got = crate::hash::file_sha256(&file)
                .with_context(|| format!("apt did not write {}", file.display()))?;
            if got != sha256 {
                bail!("{name}: SHA-256 {got} but apt expected {sha256}");
            }
        }
        Ok(Deb {
            package: package.into(),
            file,
            sha256,
        })
    }

    /// The package a metapackage depends on first (linux-image-amd64 ->
    /// linux-image-6.1.0-NN-amd64).
    pub fn first_dependency(&self, deb: &Deb) -> anyhow::Result<String> {
        let out = Command::new("dpkg-deb")
            .args(["-f"])
            .arg(&deb.file)
            .arg("Depends")
            .output()
            .context("running dpkg-deb")?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.split([',', '|'])
            .next()
            .and_then(|d| d.split_whitespace().next())
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .with_context(|| format!("{} has no Depends", deb.package))
    }
}

/// Unpacks a .deb into `cache/extract/<sha256>` once; returns that folder.
pub fn extract(cache: &Path, deb: &Deb) -> anyhow::Result<PathBuf> {
    let dir = cache.join("extract").join(&deb.sha256);
    let done = dir.join(".done");
    if done.exists() {
        return Ok(dir);
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb.file)
        .arg(&dir)
        .status()
        .context("running dpkg-deb (run ci/setup)")?;
    if !status.success() {
        bail!("dpkg-deb -x {} failed", deb.file.display());
    }
    std::fs::write(&done, "")?;
    Ok(dir)
}
