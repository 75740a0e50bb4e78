//! The boot sequence of PID 1, in order: mounts, consoles, panic hook,
//! command line, modules and devices, boot medium, network, "ready", the
//! agent, the end.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use crate::cmdline::{self, InitConfig};
use crate::console::say;
use crate::devices::{self, human};
use crate::modules::{self, uevent::Listener, Loader, ModuleDb};
use crate::{agent, end, media, mounts, net};

pub const BUILD_ID_FILE: &str = "/etc/xenlift/build-id";

pub fn run() -> ! {
    let mount_problems = mounts::mount_all();
    crate::console::open_all();
    end::install_panic_hook(true);
    say(&format!(
        "xenlift appliance {} (build {})",
        env!("CARGO_PKG_VERSION"),
        build_id().unwrap_or_else(|| "unknown".into())
    ));
    for p in mount_problems {
        say(&p);
    }
    let cfg = match cmdline::read(Path::new("/proc/cmdline")) {
        Ok(c) => c,
        Err(e) => {
            say(&format!("reading /proc/cmdline: {e}; using defaults"));
            InitConfig::default()
        }
    };
    end::set_post(cfg.post);
    for w in &cfg.warnings {
        say(w);
    }
    let _ = nix::unistd::sethostname("xenlift");
    let _ = std::fs::create_dir_all("/run/xenlift");

    let mut loader = open_modules(&cfg);
    let listener = match Listener::open() {
        Ok(l) => Some(l),
        Err(e) => {
            say(&format!(
                "uevent socket: {e}; devices that appear late may be missed"
            ));
            None
        }
    };
    if std::path::Path::new("/sys/firmware/efi").exists() {
        loader.load_module("efivarfs");
        if let Some(problem) = mounts::mount_efivars() {
            say(&problem);
        }
    }
    let mut seen = BTreeSet::new();
    modules::coldplug(&mut loader, &mut seen);
    // isofs, sr_mod: to read the boot medium whatever the hardware. fuse,
    // loop: the guest fix-up opens /dev/fuse and /dev/loop-control, which
    // appear only once their modules are in (no static device nodes here).
    for m in ["isofs", "sr_mod", "fuse", "loop"]
        .iter()
        .copied()
        .chain(cfg.modules.iter().map(String::as_str))
    {
        loader.load_module(m);
    }
    devices::settle(
        &mut loader,
        listener.as_ref(),
        &mut seen,
        Duration::from_millis(1500),
        cfg.wait,
    );
    let all = devices::block_devices(Path::new("/sys/class/block"));
    let names: Vec<String> = all.iter().map(|d| d.name.clone()).collect();
    let boot_device = media::find_and_mount(&names, &build_id().unwrap_or_default());
    let disks: Vec<_> = devices::disks(&all)
        .into_iter()
        .filter(|d| boot_device.as_ref().is_none_or(|b| !b.ends_with(&d.name)))
        .collect();
    let disk_text = if disks.is_empty() {
        "none".to_string()
    } else {
        disks
            .iter()
            .map(|d| format!("{} ({})", d.name, human(d.bytes)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(dev) = &boot_device {
        say(&format!("boot medium: {}", dev.display()));
    }

    let mut facts = agent::Facts {
        boot_device: boot_device.as_ref().map(|d| d.display().to_string()),
        media: boot_device.as_ref().map(|_| media::MOUNT_POINT.to_string()),
        mac: None,
    };
    let net_text = match net::bring_up(&cfg.net, cfg.bootif, cfg.wait) {
        Ok(links) if links.is_empty() => "off".to_string(),
        Ok(links) => {
            facts.mac = links.first().map(|c| net::format_mac(c.link.mac));
            links
                .iter()
                .map(|c| {
                    format!(
                        "{} {}/{}{}",
                        c.link.name,
                        c.address,
                        c.prefix,
                        c.gateway.map(|g| format!(" via {g}")).unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
        Err(e) => {
            say(&format!("network: {e}"));
            "down".to_string()
        }
    };
    say(&format!(
        "ready after {:.1}s: firmware: {}; {} modules loaded; disks: {disk_text}; network: {net_text}",
        uptime().unwrap_or(0.0),
        mounts::firmware(),
        loader.loaded.len()
    ));

    let post = match agent::run(&facts) {
        Ok(code) => {
            say(&format!("agent exited with status {code}"));
            agent::requested_post().unwrap_or(cfg.post)
        }
        Err(e) => {
            say(&format!("agent: {e}"));
            cfg.post
        }
    };
    end::finish(post)
}

fn open_modules(cfg: &InitConfig) -> Loader {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = Path::new("/lib/modules").join(&release);
    let db = match ModuleDb::read(&dir) {
        Ok(db) => db,
        Err(e) => {
            say(&format!(
                "no module database in {}: {e}; only built-in drivers will work",
                dir.display()
            ));
            ModuleDb::default()
        }
    };
    Loader::new(db, cfg.debug)
}

fn build_id() -> Option<String> {
    std::fs::read_to_string(BUILD_ID_FILE)
        .ok()
        .map(|s| s.trim().to_string())
}

fn uptime() -> Option<f64> {
    std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
