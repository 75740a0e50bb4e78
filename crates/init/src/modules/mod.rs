//! Kernel modules: loaded by modalias for the devices present (coldplug
//! from sysfs, then hotplug from uevents), by name on demand, and as the
//! kernel's `modprobe` helper (`request_module`, e.g. for `mount -t xfs`).

pub mod db;
pub mod glob;
pub mod load;
pub mod uevent;

use std::collections::BTreeSet;
use std::path::Path;

pub use db::ModuleDb;

/// Loads modules and remembers what it loaded or tried.
pub struct Loader {
    pub db: ModuleDb,
    tried: BTreeSet<String>,
    pub loaded: Vec<String>,
    pub debug: bool,
}

impl Loader {
    pub fn new(db: ModuleDb, debug: bool) -> Loader {
        let mut tried = BTreeSet::new();
        // Modules already in the kernel (an earlier run, a built-in list).
        if let Ok(text) = std::fs::read_to_string("/proc/modules") {
            for line in text.lines() {
                if let Some(name) = line.split_whitespace().next() {
                    tried.insert(name.to_string());
                }
            }
        }
        Loader {
            db,
            tried,
            loaded: Vec::new(),
            debug,
        }
    }

    /// Loads what matches a modalias (or a module name); returns the
    /// modules newly loaded.
    pub fn load_alias(&mut self, alias: &str) -> Vec<String> {
        let mut new = Vec::new();
        for module in self.db.resolve(alias) {
            new.extend(self.load_module(&module));
        }
        new
    }

    /// Loads one module with what it needs first.
    pub fn load_module(&mut self, name: &str) -> Vec<String> {
        let mut new = Vec::new();
        for m in self.db.load_order(&db::normalize(name)) {
            if self.db.is_builtin(&m) || !self.tried.insert(m.clone()) {
                continue;
            }
            let Some(path) = self.db.path(&m) else {
                continue;
            };
            match load::insert(&path) {
                Ok(()) => {
                    if self.debug {
                        crate::console::say(&format!("module {m} loaded"));
                    }
                    self.loaded.push(m.clone());
                    new.push(m);
                }
                Err(e) => {
                    // A driver refusing hardware it cannot drive is normal.
                    if self.debug {
                        crate::console::say(&format!("module {m}: {e}"));
                    }
                }
            }
        }
        new
    }
}

/// Every modalias in sysfs (devices present now).
pub fn sysfs_modaliases(root: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() && entry.file_name() == "modalias" {
                if let Ok(text) = std::fs::read_to_string(entry.path()) {
                    let alias = text.trim();
                    if !alias.is_empty() {
                        found.insert(alias.to_string());
                    }
                }
            }
        }
    }
    found
}

/// Loads drivers for every device in sysfs until nothing new appears
/// (a bus driver reveals the devices behind it).
pub fn coldplug(loader: &mut Loader, seen: &mut BTreeSet<String>) {
    loop {
        let now = sysfs_modaliases(Path::new("/sys/devices"));
        let fresh: Vec<String> = now.difference(seen).cloned().collect();
        if fresh.is_empty() {
            return;
        }
        for alias in fresh {
            loader.load_alias(&alias);
            seen.insert(alias);
        }
    }
}
