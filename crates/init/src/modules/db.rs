//! What depmod wrote: modules.dep (paths and hard dependencies),
//! modules.alias (patterns to module names), modules.softdep (modules to
//! load before or after) and modules.builtin (names not to load at all).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::glob;

/// The module database of one kernel.
#[derive(Debug, Default)]
pub struct ModuleDb {
    pub dir: PathBuf,
    /// Module name -> path relative to `dir` and hard dependencies (names).
    modules: BTreeMap<String, (String, Vec<String>)>,
    aliases: Vec<(String, String)>,
    pre: BTreeMap<String, Vec<String>>,
    post: BTreeMap<String, Vec<String>>,
    builtin: BTreeSet<String>,
}

/// `kernel/drivers/net/e1000e/e1000e.ko.xz` -> `e1000e`; `-` and `_` are one.
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    normalize(stem)
}

pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

impl ModuleDb {
    /// Reads the database in `dir` (`/lib/modules/$(uname -r)`). Only
    /// modules.dep is required.
    pub fn read(dir: &Path) -> std::io::Result<ModuleDb> {
        let read_opt = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        let dep = std::fs::read_to_string(dir.join("modules.dep"))?;
        let mut db = ModuleDb::parse(
            &dep,
            &read_opt("modules.alias"),
            &read_opt("modules.softdep"),
            &read_opt("modules.builtin"),
        );
        db.dir = dir.to_path_buf();
        Ok(db)
    }

    pub fn parse(dep: &str, alias: &str, softdep: &str, builtin: &str) -> ModuleDb {
        let mut db = ModuleDb::default();
        for line in dep.lines() {
            let Some((path, deps)) = line.split_once(':') else {
                continue;
            };
            let deps = deps.split_whitespace().map(module_name).collect();
            db.modules
                .insert(module_name(path), (path.trim().to_string(), deps));
        }
        for line in alias.lines() {
            let mut w = line.split_whitespace();
            if let (Some("alias"), Some(pattern), Some(module)) = (w.next(), w.next(), w.next()) {
                db.aliases.push((pattern.to_string(), normalize(module)));
            }
        }
        for line in softdep.lines() {
            let mut w = line.split_whitespace();
            if w.next() != Some("softdep") {
                continue;
            }
            let Some(module) = w.next().map(normalize) else {
                continue;
            };
            let mut list = None;
            for word in w {
                match word {
                    "pre:" => list = Some(true),
                    "post:" => list = Some(false),
                    name => {
                        let target = match list {
                            Some(true) => &mut db.pre,
                            Some(false) => &mut db.post,
                            None => continue,
                        };
                        target
                            .entry(module.clone())
                            .or_default()
                            .push(normalize(name));
                    }
                }
            }
        }
        db.builtin = builtin.lines().map(module_name).collect();
        db
    }

    /// Module names whose alias pattern matches `modalias`, or the module
    /// called `modalias` itself.
    pub fn resolve(&self, modalias: &str) -> Vec<String> {
        let name = normalize(modalias);
        if self.modules.contains_key(&name) || self.builtin.contains(&name) {
            return vec![name];
        }
        let mut found: Vec<String> = self
            .aliases
            .iter()
            .filter(|(pattern, _)| glob::matches(pattern, modalias))
            .map(|(_, m)| m.clone())
            .collect();
        found.sort();
        found.dedup();
        found
    }

    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(name)
    }

    /// The file of a module, if the image has it.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.modules.get(name).map(|(p, _)| self.dir.join(p))
    }

    /// The order to load `name` in: soft "pre" modules and hard
    /// dependencies first (deepest first), the module, then soft "post" ones.
    pub fn load_order(&self, name: &str) -> Vec<String> {
        let mut order = Vec::new();
        let mut visiting = BTreeSet::new();
        self.visit(name, &mut order, &mut visiting);
        order
    }

    fn visit(&self, name: &str, order: &mut Vec<String>, visiting: &mut BTreeSet<String>) {
        if order.iter().any(|m| m == name) || !visiting.insert(name.to_string()) {
            return;
        }
        for pre in self.pre.get(name).into_iter().flatten() {
            self.visit(pre, order, visiting);
        }
        if let Some((_, deps)) = self.modules.get(name) {
            // depmod lists the modules a module needs with the one to load
            // last first; walking them in reverse loads the base first.
            for dep in deps.iter().rev() {
                self.visit(dep, order, visiting);
            }
        }
        if self.modules.contains_key(name) {
            order.push(name.to_string());
        }
        for post in self.post.get(name).into_iter().flatten() {
            self.visit(post, order, visiting);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/drivers/net/virtio_net.ko: kernel/net/core/failover.ko kernel/drivers/net/net_failover.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/fs/xfs/xfs.ko: kernel/lib/libcrc32c.ko
kernel/lib/libcrc32c.ko:
kernel/crypto/crc32c_generic.ko:
kernel/drivers/scsi/sr_mod.ko.xz: kernel/drivers/cdrom/cdrom.ko.xz
kernel/drivers/cdrom/cdrom.ko.xz:
";
    const ALIAS: &str = "\
# Aliases extracted from modules themselves.
alias virtio:d00000001v* virtio_net
alias fs-xfs xfs
alias scsi:t-0x05* sr_mod
alias pci:v*d*sv*sd*bc01sc06i01* ahci
";
    const SOFTDEP: &str = "softdep libcrc32c pre: crc32c_generic\n";
    const BUILTIN: &str = "kernel/drivers/ata/ahci.ko\n";

    fn db() -> ModuleDb {
        ModuleDb::parse(DEP, ALIAS, SOFTDEP, BUILTIN)
    }

    #[test]
    fn aliases_resolve_to_modules() {
        let db = db();
        let rows: &[(&str, &[&str])] = &[
            ("virtio:d00000001v00001AF4", &["virtio_net"]),
            ("fs-xfs", &["xfs"]),
            ("scsi:t-0x05", &["sr_mod"]),
            ("sr-mod", &["sr_mod"]),
            (
                "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01",
                &["ahci"],
            ),
            ("virtio:d00000009v00001AF4", &[]),
        ];
        for (i, (alias, want)) in rows.iter().enumerate() {
            assert_eq!(db.resolve(alias), *want, "row {i}: {alias}");
        }
        assert!(db.is_builtin("ahci"));
    }

    #[test]
    fn dependencies_load_first() {
        let db = db();
        let rows: &[(&str, &[&str])] = &[
            ("virtio_net", &["failover", "net_failover", "virtio_net"]),
            ("xfs", &["crc32c_generic", "libcrc32c", "xfs"]),
            ("sr_mod", &["cdrom", "sr_mod"]),
            ("nonexistent", &[]),
        ];
        for (i, (name, want)) in rows.iter().enumerate() {
            assert_eq!(db.load_order(name), *want, "row {i}: {name}");
        }
        assert!(db
            .path("cdrom")
            .unwrap()
            .ends_with("kernel/drivers/cdrom/cdrom.ko.xz"));
    }
}
