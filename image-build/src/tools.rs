//! Programs from Debian packages in the initramfs (initramfs/tools.list),
//! static or dynamic. A dynamic program's interpreter and DT_NEEDED
//! libraries, and theirs in turn, are looked up in the unpacked packages the
//! list names and copied to the one library folder the interpreter searches
//! by default (there is no ld.so.cache in the appliance).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};

use crate::elf;
use crate::initramfs::{Entry, Tree};

/// Where libraries go in the initramfs.
pub const LIB_DIR: &str = "lib/x86_64-linux-gnu";
/// Where libraries are looked for inside an unpacked package.
const SEARCH: [&str; 4] = [
    "lib/x86_64-linux-gnu",
    "usr/lib/x86_64-linux-gnu",
    "lib",
    "usr/lib",
];

/// One program line: `PACKAGE PATH DEST [LINKS...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    pub package: String,
    pub path: String,
    pub dest: String,
    pub links: Vec<String>,
}

/// tools.list: programs, and the packages searched for their libraries.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ToolsList {
    pub tools: Vec<Tool>,
    pub lib_packages: BTreeSet<String>,
}

impl ToolsList {
    /// Parses the lines of tools.list (comments and blanks already gone).
    pub fn parse(lines: &[String]) -> anyhow::Result<ToolsList> {
        let mut out = ToolsList::default();
        let mut dests = BTreeSet::new();
        for line in lines {
            let w: Vec<&str> = line.split_whitespace().collect();
            if w.first() == Some(&"libs:") {
                if w.len() < 2 {
                    bail!("initramfs/tools.list: {line:?}: `libs:` names no package");
                }
                out.lib_packages
                    .extend(w[1..].iter().map(|s| s.to_string()));
                continue;
            }
            let (Some(pkg), Some(path), Some(dest)) = (w.first(), w.get(1), w.get(2)) else {
                bail!("initramfs/tools.list: {line:?} is not PACKAGE PATH DEST [LINKS...] or libs: PACKAGE...");
            };
            let tool = Tool {
                package: pkg.to_string(),
                path: path.to_string(),
                dest: clean(dest),
                links: w[3..].iter().map(|l| clean(l)).collect(),
            };
            for d in std::iter::once(&tool.dest).chain(&tool.links) {
                if !dests.insert(d.clone()) {
                    bail!("initramfs/tools.list: {d} is listed twice");
                }
            }
            out.tools.push(tool);
        }
        Ok(out)
    }

    /// Every package the list needs, sorted.
    pub fn packages(&self) -> BTreeSet<String> {
        self.tools
            .iter()
            .map(|t| t.package.clone())
            .chain(self.lib_packages.iter().cloned())
            .collect()
    }
}

fn clean(p: &str) -> String {
    p.trim_start_matches('/').to_string()
}

/// What [`add`] put in the tree.
#[derive(Debug, Default)]
pub struct Added {
    pub programs: usize,
    pub libraries: BTreeMap<String, PathBuf>,
    pub bytes: u64,
}

/// Adds the programs of `list` to `tree`; `roots` maps each package of the
/// list to its unpacked folder.
pub fn add(
    tree: &mut Tree,
    list: &ToolsList,
    roots: &BTreeMap<String, PathBuf>,
) -> anyhow::Result<Added> {
    let mut added = Added::default();
    let mut wanted: BTreeMap<String, String> = BTreeMap::new(); // library -> who needs it
    for tool in &list.tools {
        let root = roots.get(&tool.package).context("tool package")?;
        let src = resolve_in(root, &tool.path).with_context(|| {
            format!(
                "initramfs/tools.list: {} has no {}",
                tool.package, tool.path
            )
        })?;
        let data = std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
        if data.starts_with(b"\x7fELF") {
            let needs = elf::needs(&data)
                .with_context(|| format!("reading {} of {} as ELF", tool.path, tool.package))?;
            note_needs(tree, &needs, &tool.dest, &mut wanted);
        }
        added.bytes += data.len() as u64;
        tree.add(
            &tool.dest,
            Entry::File {
                source: src,
                mode: 0o755,
            },
        );
        for link in &tool.links {
            tree.add(link, Entry::Symlink(format!("/{}", tool.dest)));
        }
        added.programs += 1;
    }

    // Libraries until none is missing; each is looked up in the packages
    // by name order, so the same inputs pick the same files.
    let mut queue: Vec<(String, String)> = wanted.into_iter().collect();
    while let Some((name, by)) = queue.pop() {
        if added.libraries.contains_key(&name) {
            continue;
        }
        let src = find_library(roots, &name).with_context(|| {
            format!(
                "{name} (needed by {by}) is in none of the packages of initramfs/tools.list: \
                 add its package to a `libs:` line"
            )
        })?;
        let data = std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
        let needs =
            elf::needs(&data).with_context(|| format!("reading {} as ELF", src.display()))?;
        let mut more = BTreeMap::new();
        note_needs(tree, &needs, &name, &mut more);
        queue.extend(more);
        added.bytes += data.len() as u64;
        tree.add(
            &format!("{LIB_DIR}/{name}"),
            Entry::File {
                source: src.clone(),
                mode: 0o755,
            },
        );
        added.libraries.insert(name, src);
    }
    Ok(added)
}

/// Records the libraries `needs` names; the interpreter becomes a link to
/// its copy in [`LIB_DIR`].
fn note_needs(
    tree: &mut Tree,
    needs: &elf::Needs,
    by: &str,
    wanted: &mut BTreeMap<String, String>,
) {
    if let Some(interp) = &needs.interpreter {
        let base = Path::new(interp)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if clean(interp) != format!("{LIB_DIR}/{base}") {
            tree.add(interp, Entry::Symlink(format!("/{LIB_DIR}/{base}")));
        }
        wanted.entry(base).or_insert_with(|| by.to_string());
    }
    for lib in &needs.libraries {
        wanted.entry(lib.clone()).or_insert_with(|| by.to_string());
    }
}

fn find_library(roots: &BTreeMap<String, PathBuf>, name: &str) -> Option<PathBuf> {
    roots
        .values()
        .flat_map(|root| SEARCH.iter().map(move |d| (root, format!("{d}/{name}"))))
        .find_map(|(root, rel)| resolve_in(root, &rel))
}

/// `rel` inside the unpacked package at `root`, symbolic links followed
/// as if `root` were `/`. None when it does not exist or is not a file.
pub fn resolve_in(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut parts: Vec<String> = Vec::new();
    let mut todo: Vec<String> = rel.split('/').rev().map(str::to_string).collect();
    let mut hops = 0;
    while let Some(part) = todo.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                parts.pop();
                continue;
            }
            _ => {}
        }
        parts.push(part);
        let here = root.join(parts.join("/"));
        let meta = std::fs::symlink_metadata(&here).ok()?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = std::fs::read_link(&here).ok()?;
            parts.pop();
            if target.is_absolute() {
                parts.clear();
            }
            for c in target.components().rev() {
                if let Component::Normal(s) = c {
                    todo.push(s.to_string_lossy().into_owned());
                } else if c == Component::ParentDir {
                    todo.push("..".into());
                }
            }
        }
    }
    let path = root.join(parts.join("/"));
    path.is_file().then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn parses_programs_links_and_library_packages() {
        let list = ToolsList::parse(&lines(
            "busybox-static bin/busybox bin/busybox bin/sh /bin/ls\n\
             libs: libc6 libblkid1\n\
             mount sbin/losetup sbin/losetup\n\
             libs: libuuid1",
        ))
        .unwrap();
        assert_eq!(list.tools.len(), 2);
        assert_eq!(list.tools[0].links, ["bin/sh", "bin/ls"]);
        assert_eq!(
            list.packages().into_iter().collect::<Vec<_>>(),
            ["busybox-static", "libblkid1", "libc6", "libuuid1", "mount"]
        );
    }

    #[test]
    fn rejects_bad_lines_and_a_destination_listed_twice() {
        for bad in [
            "mount sbin/losetup",
            "libs:",
            "a x bin/mount\nb y bin/x bin/mount",
        ] {
            assert!(ToolsList::parse(&lines(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn follows_links_relative_and_absolute_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("lib/x86_64-linux-gnu")).unwrap();
        std::fs::create_dir_all(r.join("lib64")).unwrap();
        std::fs::write(r.join("lib/x86_64-linux-gnu/libz.so.1.2"), b"z").unwrap();
        std::os::unix::fs::symlink("libz.so.1.2", r.join("lib/x86_64-linux-gnu/libz.so.1"))
            .unwrap();
        std::os::unix::fs::symlink("/lib/x86_64-linux-gnu/libz.so.1", r.join("lib64/libz.so.1"))
            .unwrap();
        std::os::unix::fs::symlink("../lib/nothing", r.join("lib64/dangling")).unwrap();
        let real = r.join("lib/x86_64-linux-gnu/libz.so.1.2");
        assert_eq!(
            resolve_in(r, "lib/x86_64-linux-gnu/libz.so.1"),
            Some(real.clone())
        );
        assert_eq!(resolve_in(r, "/lib64/libz.so.1"), Some(real));
        assert_eq!(resolve_in(r, "lib64/dangling"), None);
        assert_eq!(resolve_in(r, "lib64"), None);
    }
}
