//! The build, step by step: inputs (binaries, Debian packages, lists) ->
//! cache key -> initramfs -> ISO tree + ESP -> xorriso -> PXE folder.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};

use crate::apt::{self, Apt, Deb};
use crate::initramfs::{Entry, Tree};
use crate::{binaries, bootcfg, esp, hash, iso, kernel, tools, BuildArgs};

pub const VOLUME_ID: &str = "XENLIFT";
const ESP_SIZE: usize = 8 << 20;

/// Packages besides the kernel, firmware and tools.
const BOOT_PACKAGES: [&str; 7] = [
    "shim-signed",
    "shim-helpers-amd64-signed",
    "grub-efi-amd64-signed",
    "isolinux",
    "syslinux-common",
    "pxelinux",
    "ipxe",
];

/// Lines of a list file without comments and blanks.
fn list(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect())
}

fn default_cache() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/root".into());
    home.join(".cache/xenlift/image-build")
}

pub fn build(args: &BuildArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let ws = binaries::workspace();
    let lists = ws.join("initramfs");
    let cache = args.cache.clone().unwrap_or_else(default_cache);
    fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;

    let bins = binaries::get(args.binaries.as_deref())?;
    let sources = fs::read_to_string(lists.join("sources.list"))?;
    let apt = Apt::new(&cache, &sources, args.refresh)?;
    let meta = apt.fetch("linux-image-amd64")?;
    let kernel_deb = apt.fetch(&apt.first_dependency(&meta)?)?;
    let firmware_debs = list(&lists.join("firmware-packages.list"))?
        .iter()
        .map(|p| apt.fetch(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let tools = tools::ToolsList::parse(&list(&lists.join("tools.list"))?)?;
    let mut boot: BTreeMap<&str, Deb> = BTreeMap::new();
    for p in BOOT_PACKAGES {
        boot.insert(p, apt.fetch(p)?);
    }
    let mut tool_debs = BTreeMap::new();
    for pkg in tools.packages() {
        let deb = apt.fetch(&pkg)?;
        tool_debs.insert(pkg, deb);
    }

    // Everything that decides the output bytes.
    let mut key = hash::Key::default();
    key.add(
        "image-build",
        hash::file_sha256(&std::env::current_exe()?)?.as_bytes(),
    );
    key.add("agent", hash::file_sha256(&bins.agent)?.as_bytes());
    key.add("init", hash::file_sha256(&bins.init)?.as_bytes());
    key.add("epoch", &args.source_date_epoch.to_le_bytes());
    for f in [
        "modules.list",
        "firmware-packages.list",
        "tools.list",
        "sources.list",
    ] {
        key.add(f, &fs::read(lists.join(f))?);
    }
    let all_debs = [&kernel_deb]
        .into_iter()
        .chain(firmware_debs.iter())
        .chain(boot.values())
        .chain(tool_debs.values());
    for d in all_debs {
        key.add(&d.package, d.sha256.as_bytes());
    }
    let key = key.hex();
    let build_id = hash::uuid_from(&key);
    let done_dir = cache.join("out").join(&key);

    if args.fresh || !done_dir.join(".done").exists() {
        let work = cache.join("work");
        if work.exists() {
            fs::remove_dir_all(&work)?;
        }
        fs::create_dir_all(&work)?;
        let staged = work.join("out");
        assemble(&Assembly {
            args,
            cache: &cache,
            lists: &lists,
            bins: &bins,
            kernel_deb: &kernel_deb,
            firmware_debs: &firmware_debs,
            boot: &boot,
            tools: &tools,
            tool_debs: &tool_debs,
            build_id: &build_id,
            work: &work,
            out: &staged,
        })?;
        fs::write(staged.join(".done"), "")?;
        if done_dir.exists() {
            fs::remove_dir_all(&done_dir)?;
        }
        fs::create_dir_all(done_dir.parent().context("cache path")?)?;
        fs::rename(&staged, &done_dir)?;
        let _ = fs::remove_dir_all(&work);
    } else {
        eprintln!("image-build: inputs unchanged, using the cached build {key}");
    }

    copy_tree(&done_dir, &args.out)?;
    let iso_size = fs::metadata(args.out.join("xenlift.iso"))?.len();
    let initrd_size = fs::metadata(args.out.join("pxe/initrd.img"))?.len();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "image-build: {} {:.1} MiB (budget {} MiB), initrd {:.1} MiB, build id {build_id}, {:.0}s",
        args.out.join("xenlift.iso").display(),
        mib(iso_size),
        args.budget_mib,
        mib(initrd_size),
        started.elapsed().as_secs_f64()
    );
    if iso_size > args.budget_mib << 20 {
        bail!(
            "the ISO is {:.1} MiB, over the {} MiB budget: trim initramfs/*.list",
            mib(iso_size),
            args.budget_mib
        );
    }
    Ok(())
}

struct Assembly<'a> {
    args: &'a BuildArgs,
    cache: &'a Path,
    lists: &'a Path,
    bins: &'a binaries::Binaries,
    kernel_deb: &'a Deb,
    firmware_debs: &'a [Deb],
    boot: &'a BTreeMap<&'static str, Deb>,
    tools: &'a tools::ToolsList,
    tool_debs: &'a BTreeMap<String, Deb>,
    build_id: &'a str,
    work: &'a Path,
    out: &'a Path,
}

fn boot_file(a: &Assembly<'_>, package: &str, path: &str) -> anyhow::Result<PathBuf> {
    let deb = a
        .boot
        .get(package)
        .with_context(|| format!("package {package}"))?;
    let file = apt::extract(a.cache, deb)?.join(path);
    if !file.exists() {
        bail!("{package} has no {path}");
    }
    Ok(file)
}

fn assemble(a: &Assembly<'_>) -> anyhow::Result<()> {
    let epoch = a.args.source_date_epoch;
    let kernel = kernel::Kernel::open(&apt::extract(a.cache, a.kernel_deb)?)?;
    let initrd = initramfs_image(a, &kernel)?;

    // The ISO9660 tree.
    let tree = a.work.join("iso");
    let put = |rel: &str, data: &[u8]| -> anyhow::Result<()> {
        let p = tree.join(rel);
        fs::create_dir_all(p.parent().context("path")?)?;
        fs::write(&p, data).with_context(|| format!("writing {}", p.display()))
    };
    put("boot/vmlinuz", &fs::read(kernel.vmlinuz())?)?;
    put("boot/initrd.img", &initrd)?;
    put("boot/grub/grub.cfg", bootcfg::grub_iso().as_bytes())?;
    put(
        "isolinux/isolinux.bin",
        &fs::read(boot_file(a, "isolinux", "usr/lib/ISOLINUX/isolinux.bin")?)?,
    )?;
    put(
        "isolinux/ldlinux.c32",
        &fs::read(boot_file(
            a,
            "syslinux-common",
            "usr/lib/syslinux/modules/bios/ldlinux.c32",
        )?)?,
    )?;
    put("isolinux/isolinux.cfg", bootcfg::isolinux().as_bytes())?;
    put(
        ".disk/info",
        format!("xenlift appliance {}\n", a.build_id).as_bytes(),
    )?;
    put(&format!(".disk/id/{}", a.build_id), b"")?;
    put(
        media::ISO_EMBED_PATH,
        &media::embed::blank(media::embed::DEFAULT_AREA_SIZE),
    )?;
    set_mtimes(&tree, epoch)?;

    let shim = fs::read(boot_file(
        a,
        "shim-signed",
        "usr/lib/shim/shimx64.efi.signed",
    )?)?;
    let mok = fs::read(boot_file(
        a,
        "shim-helpers-amd64-signed",
        "usr/lib/shim/mmx64.efi.signed",
    )?)?;
    let grub_dir = "usr/lib/grub/x86_64-efi-signed";
    let gcd = fs::read(boot_file(
        a,
        "grub-efi-amd64-signed",
        &format!("{grub_dir}/gcdx64.efi.signed"),
    )?)?;
    let grubnet = fs::read(boot_file(
        a,
        "grub-efi-amd64-signed",
        &format!("{grub_dir}/grubnetx64.efi.signed"),
    )?)?;
    let volume_id = u32::from_str_radix(a.build_id.get(..8).unwrap_or("0"), 16).unwrap_or(0);
    let esp_image = esp::build(
        ESP_SIZE,
        volume_id,
        &[
            ("EFI/boot/bootx64.efi", shim.clone()),
            ("EFI/boot/grubx64.efi", gcd),
            ("EFI/boot/mmx64.efi", mok.clone()),
            (
                "boot/grub/grub.cfg",
                bootcfg::grub_esp_stub(a.build_id).into_bytes(),
            ),
        ],
    )?;
    let esp_path = a.work.join("efiboot.img");
    fs::write(&esp_path, esp_image)?;

    fs::create_dir_all(a.out)?;
    eprintln!("image-build: xorriso");
    iso::xorriso(&iso::IsoInputs {
        tree: &tree,
        isohdpfx: &boot_file(a, "isolinux", "usr/lib/ISOLINUX/isohdpfx.bin")?,
        esp: &esp_path,
        out: &a.out.join("xenlift.iso"),
        epoch,
    })?;

    // PXE: everything at the TFTP root, GRUB's files under grub/.
    let pxe = a.out.join("pxe");
    let put_pxe = |rel: &str, data: &[u8]| -> anyhow::Result<()> {
        let p = pxe.join(rel);
        fs::create_dir_all(p.parent().context("path")?)?;
        fs::write(&p, data).with_context(|| format!("writing {}", p.display()))
    };
    put_pxe("vmlinuz", &fs::read(kernel.vmlinuz())?)?;
    put_pxe("initrd.img", &initrd)?;
    put_pxe("boot.ipxe", bootcfg::ipxe().as_bytes())?;
    put_pxe(
        "undionly.kpxe",
        &fs::read(boot_file(a, "ipxe", "usr/lib/ipxe/undionly.kpxe")?)?,
    )?;
    put_pxe(
        "pxelinux.0",
        &fs::read(boot_file(a, "pxelinux", "usr/lib/PXELINUX/pxelinux.0")?)?,
    )?;
    put_pxe(
        "ldlinux.c32",
        &fs::read(boot_file(
            a,
            "syslinux-common",
            "usr/lib/syslinux/modules/bios/ldlinux.c32",
        )?)?,
    )?;
    put_pxe("pxelinux.cfg/default", bootcfg::pxelinux().as_bytes())?;
    put_pxe("shimx64.efi", &shim)?;
    put_pxe("grubx64.efi", &grubnet)?;
    put_pxe("mmx64.efi", &mok)?;
    put_pxe("grub/grub.cfg", bootcfg::grub_net().as_bytes())?;
    set_mtimes(&pxe, epoch)?;
    Ok(())
}

/// The compressed initramfs.
fn initramfs_image(a: &Assembly<'_>, kernel: &kernel::Kernel) -> anyhow::Result<Vec<u8>> {
    let mut tree = Tree::default();
    for d in [
        "dev", "proc", "sys", "run", "tmp", "root", "etc", "usr/bin", "usr/sbin",
    ] {
        tree.add(d, Entry::Dir);
    }
    tree.add(
        "dev/console",
        Entry::CharDevice {
            major: 5,
            minor: 1,
            mode: 0o600,
        },
    );
    tree.add(
        "init",
        Entry::File {
            source: a.bins.init.clone(),
            mode: 0o755,
        },
    );
    tree.add("sbin/modprobe", Entry::Symlink("/init".into()));
    tree.add(
        "bin/xenlift",
        Entry::File {
            source: a.bins.agent.clone(),
            mode: 0o755,
        },
    );
    tree.add(
        "etc/xenlift/build-id",
        Entry::Bytes {
            data: format!("{}\n", a.build_id).into_bytes(),
            mode: 0o644,
        },
    );
    tree.add(
        "etc/hostname",
        Entry::Bytes {
            data: b"xenlift\n".to_vec(),
            mode: 0o644,
        },
    );

    // Modules and their database.
    let wanted = list(&a.lists.join("modules.list"))?;
    let sel = kernel::select(kernel, &wanted)?;
    let mod_root = format!("lib/modules/{}", kernel.version);
    for f in &sel.files {
        tree.add(
            &format!("{mod_root}/{f}"),
            Entry::File {
                source: kernel.dir().join(f),
                mode: 0o644,
            },
        );
    }
    for (name, text) in [
        ("modules.dep", &sel.dep),
        ("modules.alias", &sel.alias),
        ("modules.softdep", &sel.softdep),
        ("modules.builtin", &sel.builtin),
    ] {
        tree.add(
            &format!("{mod_root}/{name}"),
            Entry::Bytes {
                data: text.clone().into_bytes(),
                mode: 0o644,
            },
        );
    }

    // Firmware the modules name, from the firmware packages.
    let names = kernel::firmware_names(kernel, &sel.files)?;
    let roots: Vec<PathBuf> = a
        .firmware_debs
        .iter()
        .map(|d| apt::extract(a.cache, d).map(|p| p.join("lib/firmware")))
        .collect::<anyhow::Result<_>>()?;
    let mut missing = Vec::new();
    let mut firmware_count = 0;
    for name in &names {
        match roots.iter().map(|r| r.join(name)).find(|p| p.exists()) {
            Some(p) => {
                let real = fs::canonicalize(&p)?;
                tree.add(
                    &format!("lib/firmware/{name}"),
                    Entry::File {
                        source: real,
                        mode: 0o644,
                    },
                );
                firmware_count += 1;
            }
            None => missing.push(name.as_str()),
        }
    }
    eprintln!(
        "image-build: {} modules, {firmware_count} firmware files ({} named files not in the firmware packages)",
        sel.files.len(),
        missing.len()
    );

    // Programs from tools.list, with their shared libraries.
    let roots = a
        .tool_debs
        .iter()
        .map(|(p, d)| Ok((p.clone(), apt::extract(a.cache, d)?)))
        .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
    let added = tools::add(&mut tree, a.tools, &roots)?;
    eprintln!(
        "image-build: {} programs, {} shared libraries, {:.1} MiB uncompressed",
        added.programs,
        added.libraries.len(),
        added.bytes as f64 / (1 << 20) as f64
    );
    // e2fsck and mount look here for what is mounted.
    tree.add("etc/mtab", Entry::Symlink("/proc/self/mounts".into()));
    eprintln!(
        "image-build: initramfs of {} entries, compressing",
        tree.count()
    );
    let cpio = tree.cpio(a.args.source_date_epoch)?;
    let zst = crate::initramfs::compress(&cpio)?;
    eprintln!(
        "image-build: initramfs {:.1} MiB, compressed {:.1} MiB",
        cpio.len() as f64 / (1 << 20) as f64,
        zst.len() as f64 / (1 << 20) as f64
    );
    Ok(zst)
}

/// Every file and folder under `root` gets the same mtime.
fn set_mtimes(root: &Path, epoch: u32) -> anyhow::Result<()> {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(epoch));
    let mut stack = vec![root.to_path_buf()];
    let mut dirs = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let p = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(p);
            } else {
                fs::File::options()
                    .write(true)
                    .open(&p)?
                    .set_modified(time)?;
            }
        }
        dirs.push(dir);
    }
    // Folders last: writing into them changed their times.
    for d in dirs.iter().rev() {
        fs::File::open(d)?.set_modified(time)?;
    }
    Ok(())
}

/// Copies the finished build (files only) into `out`.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".done" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type()?.is_dir() {
            fs::create_dir_all(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::create_dir_all(to)?;
            fs::copy(entry.path(), &target)
                .with_context(|| format!("copying to {}", target.display()))?;
        }
    }
    Ok(())
}
