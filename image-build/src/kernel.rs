//! The kernel package: vmlinuz, the module closure of initramfs/modules.list
//! (hard dependencies and softdep "pre:"), the module database entries for
//! exactly those modules, and the firmware files they name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

pub struct Kernel {
    /// Where the linux-image package was unpacked.
    pub root: PathBuf,
    pub version: String,
}

impl Kernel {
    /// Finds the one kernel in an unpacked linux-image package and makes
    /// sure depmod's files exist there (Debian generates them at install).
    pub fn open(root: &Path) -> anyhow::Result<Kernel> {
        let modules = root.join("lib/modules");
        let mut versions: Vec<String> = std::fs::read_dir(&modules)
            .with_context(|| format!("reading {}", modules.display()))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        versions.sort();
        let Some(version) = versions.pop() else {
            bail!("no kernel in {}", modules.display());
        };
        let k = Kernel {
            root: root.to_path_buf(),
            version,
        };
        if !k.dir().join("modules.dep").exists() {
            let status = Command::new("depmod")
                .arg("-b")
                .arg(root)
                .arg(&k.version)
                .status()
                .context("running depmod (run ci/setup: package kmod)")?;
            if !status.success() {
                bail!("depmod failed for {}", k.version);
            }
        }
        Ok(k)
    }

    pub fn dir(&self) -> PathBuf {
        self.root.join("lib/modules").join(&self.version)
    }

    pub fn vmlinuz(&self) -> PathBuf {
        self.root
            .join("boot")
            .join(format!("vmlinuz-{}", self.version))
    }
}

fn name_of(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split(".ko").next().unwrap_or(file).replace('-', "_")
}

/// The modules to ship and the database lines describing them.
pub struct Selection {
    /// Paths relative to the kernel's module directory, sorted.
    pub files: Vec<String>,
    pub dep: String,
    pub alias: String,
    pub softdep: String,
    pub builtin: String,
}

/// The closure of `wanted` over modules.dep and softdep "pre:".
pub fn select(kernel: &Kernel, wanted: &[String]) -> anyhow::Result<Selection> {
    let dir = kernel.dir();
    let read = |f: &str| -> anyhow::Result<String> {
        std::fs::read_to_string(dir.join(f)).with_context(|| format!("reading {f}"))
    };
    let dep_text = read("modules.dep")?;
    let alias_text = read("modules.alias")?;
    let softdep_text = read("modules.softdep").unwrap_or_default();
    let builtin_text = read("modules.builtin").unwrap_or_default();

    let mut by_name: BTreeMap<String, (String, Vec<String>, &str)> = BTreeMap::new();
    for line in dep_text.lines() {
        if let Some((path, deps)) = line.split_once(':') {
            let deps = deps.split_whitespace().map(name_of).collect();
            by_name.insert(name_of(path), (path.to_string(), deps, line));
        }
    }
    let mut pre: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in softdep_text.lines() {
        let mut w = line.split_whitespace();
        if w.next() != Some("softdep") {
            continue;
        }
        let Some(module) = w.next() else { continue };
        let mut in_pre = false;
        for word in w {
            match word {
                "pre:" => in_pre = true,
                "post:" => in_pre = false,
                m if in_pre => pre.entry(name_of(module)).or_default().push(name_of(m)),
                _ => {}
            }
        }
    }
    let builtin: BTreeSet<String> = builtin_text.lines().map(name_of).collect();

    let mut chosen = BTreeSet::new();
    let mut todo: Vec<String> = Vec::new();
    for w in wanted {
        let n = name_of(w);
        if builtin.contains(&n) {
            continue;
        }
        if !by_name.contains_key(&n) {
            bail!(
                "module {w} (initramfs/modules.list) is not in kernel {}",
                kernel.version
            );
        }
        todo.push(n);
    }
    while let Some(n) = todo.pop() {
        if !chosen.insert(n.clone()) {
            continue;
        }
        if let Some((_, deps, _)) = by_name.get(&n) {
            todo.extend(deps.iter().cloned());
        }
        // A soft dependency missing from this kernel is skipped, as modprobe does.
        todo.extend(
            pre.get(&n)
                .into_iter()
                .flatten()
                .filter(|m| by_name.contains_key(*m))
                .cloned(),
        );
    }
    let mut files = Vec::new();
    let mut dep = String::new();
    for n in &chosen {
        if let Some((path, _, line)) = by_name.get(n) {
            files.push(path.clone());
            dep.push_str(line);
            dep.push('\n');
        }
    }
    files.sort();
    let alias = alias_text
        .lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some("alias") && w.nth(1).is_some_and(|m| chosen.contains(&name_of(m)))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let softdep = softdep_text
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|m| chosen.contains(&name_of(m)))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    Ok(Selection {
        files,
        dep,
        alias,
        softdep,
        builtin: builtin_text,
    })
}

/// Firmware file names the selected modules ask for (modinfo firmware=).
pub fn firmware_names(kernel: &Kernel, files: &[String]) -> anyhow::Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    let dir = kernel.dir();
    for chunk in files.chunks(64) {
        let out = Command::new("modinfo")
            .args(["-F", "firmware"])
            .args(chunk.iter().map(|f| dir.join(f)))
            .output()
            .context("running modinfo (run ci/setup: package kmod)")?;
        if !out.status.success() {
            bail!("modinfo failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.trim();
            if !name.is_empty() {
                names.insert(name.to_string());
            }
        }
    }
    Ok(names)
}
