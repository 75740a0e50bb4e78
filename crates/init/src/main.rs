//! `xenlift-init`, PID 1 of the xenlift appliance. The same binary is also
//! the kernel's modprobe helper (called as `modprobe`), and, run as a
//! normal program, prints what it would do with a given command line.

mod agent;
mod boot;
mod cmdline;
mod console;
mod devices;
mod end;
mod media;
mod modules;
mod mounts;
mod net;

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv0 = std::env::args().next().unwrap_or_default();
    if argv0.ends_with("modprobe") {
        return modprobe(std::env::args().skip(1));
    }
    if std::process::id() == 1 {
        boot::run();
    }
    end::install_panic_hook(false);
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, path] if flag == "--cmdline" => match cmdline::read(Path::new(path)) {
            Ok(cfg) => {
                println!("{cfg:#?}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("xenlift-init: reading {path}: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!(
                "xenlift-init is PID 1 of the xenlift appliance.\n\
                 usage: xenlift-init --cmdline FILE   show what a kernel command line configures"
            );
            ExitCode::from(2)
        }
    }
}

/// The kernel runs `modprobe -q -- NAME` for request_module (a file system
/// type, a crypto algorithm...).
fn modprobe(args: impl Iterator<Item = String>) -> ExitCode {
    let names: Vec<String> = args.filter(|a| !a.starts_with('-')).collect();
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let Ok(db) = modules::ModuleDb::read(&Path::new("/lib/modules").join(release)) else {
        return ExitCode::FAILURE;
    };
    let mut loader = modules::Loader::new(db, false);
    let mut ok = true;
    for name in names {
        if loader.db.resolve(&name).is_empty() {
            ok = false;
        }
        loader.load_alias(&name);
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
