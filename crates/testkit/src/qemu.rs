//! Boots machines in QEMU (TCG: KVM does not work on these hosts) for
//! end-to-end tests: guests before and after conversion, and the appliance.
//!
//! The serial console is a Unix socket: a thread copies everything the
//! machine prints into a log (and to the test's stderr when
//! `XENLIFT_TEST_CONSOLE=1`), and tests can type into it.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Firmware the machine starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    Bios,
    /// OVMF with an empty variable store: no boot entries, as on a new VM.
    Uefi,
    /// OVMF with Microsoft's keys enrolled and Secure Boot enforced.
    UefiSecureBoot,
}

/// How a disk is attached. Different buses give the guest different
/// drivers and device names, which is what conversion tests need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bus {
    Virtio,
    Ide,
    Ahci,
    /// USB mass storage (the appliance on a stick).
    Usb,
}

#[derive(Debug, Clone)]
struct DiskSpec {
    path: PathBuf,
    bus: Bus,
    format: &'static str,
    read_only: bool,
    snapshot: bool,
}

#[derive(Debug, Clone)]
struct NicSpec {
    model: String,
    mac: String,
    user_options: String,
}

/// A machine to boot.
#[derive(Debug, Clone)]
pub struct Machine {
    firmware: Firmware,
    memory_mib: u32,
    cpus: u32,
    disks: Vec<DiskSpec>,
    cdrom: Option<PathBuf>,
    nics: Vec<NicSpec>,
    kernel: Option<(PathBuf, PathBuf, String)>,
    boot: Option<String>,
    extra: Vec<String>,
}

impl Default for Machine {
    fn default() -> Self {
        Machine::new(Firmware::Bios)
    }
}

impl Machine {
    pub fn new(firmware: Firmware) -> Self {
        Machine {
            firmware,
            memory_mib: 1024,
            cpus: 1,
            disks: Vec::new(),
            cdrom: None,
            nics: Vec::new(),
            kernel: None,
            boot: None,
            extra: Vec::new(),
        }
    }

    pub fn memory_mib(mut self, mib: u32) -> Self {
        self.memory_mib = mib;
        self
    }

    pub fn cpus(mut self, cpus: u32) -> Self {
        self.cpus = cpus;
        self
    }

    /// A writable disk image (`format`: raw, vpc, qcow2).
    pub fn disk(mut self, path: &Path, bus: Bus, format: &'static str) -> Self {
        self.disks.push(DiskSpec {
            path: path.to_path_buf(),
            bus,
            format,
            read_only: false,
            snapshot: false,
        });
        self
    }

    /// A disk whose writes are thrown away when the machine stops, so the
    /// image file is left untouched.
    pub fn disk_snapshot(mut self, path: &Path, bus: Bus, format: &'static str) -> Self {
        self.disks.push(DiskSpec {
            path: path.to_path_buf(),
            bus,
            format,
            read_only: false,
            snapshot: true,
        });
        self
    }

    /// A read-only disk.
    pub fn disk_read_only(mut self, path: &Path, bus: Bus, format: &'static str) -> Self {
        self.disks.push(DiskSpec {
            path: path.to_path_buf(),
            bus,
            format,
            read_only: true,
            snapshot: false,
        });
        self
    }

    pub fn cdrom(mut self, iso: &Path) -> Self {
        self.cdrom = Some(iso.to_path_buf());
        self
    }

    /// A NIC on QEMU user networking, where the host's 127.0.0.1 is 10.0.2.2.
    /// `user_options` are appended to `-netdev user` (e.g. `tftp=DIR,bootfile=F`).
    pub fn nic(mut self, model: &str, mac: &str, user_options: &str) -> Self {
        self.nics.push(NicSpec {
            model: model.into(),
            mac: mac.into(),
            user_options: user_options.into(),
        });
        self
    }

    /// Direct kernel boot.
    pub fn kernel(mut self, vmlinuz: &Path, initrd: &Path, append: &str) -> Self {
        self.kernel = Some((vmlinuz.to_path_buf(), initrd.to_path_buf(), append.into()));
        self
    }

    /// Boot order (`c` disk, `d` CD, `n` network). A leading `d` or `n`
    /// also gives the CD or the first NIC boot index 0, ahead of the disks,
    /// for BIOS and UEFI alike.
    pub fn boot_order(mut self, order: &str) -> Self {
        self.boot = Some(order.into());
        self
    }

    /// Raw extra QEMU arguments.
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra.push(arg.into());
        self
    }

    /// Starts the machine.
    pub fn start(self) -> Running {
        let dir = tempfile::tempdir().expect("temp dir for qemu");
        let socket = dir.path().join("serial.sock");
        let mut args: Vec<String> = vec![
            "-accel".into(),
            "tcg".into(),
            "-m".into(),
            self.memory_mib.to_string(),
            "-smp".into(),
            self.cpus.to_string(),
            "-display".into(),
            "none".into(),
            "-no-reboot".into(),
            "-chardev".into(),
            format!("socket,id=con0,path={},server=on,wait=on", socket.display()),
            "-serial".into(),
            "chardev:con0".into(),
            "-monitor".into(),
            "none".into(),
        ];
        let secure = self.firmware == Firmware::UefiSecureBoot;
        // A PIIX IDE controller (ata_piix in the guest) exists only on the
        // i440fx machine; q35's own disks are AHCI.
        let piix = !secure && self.disks.iter().any(|d| d.bus == Bus::Ide);
        let machine = match (secure, piix) {
            (true, _) => "q35,smm=on",
            (false, true) => "pc",
            (false, false) => "q35",
        };
        args.extend(["-machine".into(), machine.into()]);
        if self.firmware != Firmware::Bios {
            let (code, vars) = if secure {
                ("OVMF_CODE_4M.ms.fd", "OVMF_VARS_4M.ms.fd")
            } else {
                ("OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd")
            };
            let vars_copy = dir.path().join("vars.fd");
            std::fs::copy(Path::new("/usr/share/OVMF").join(vars), &vars_copy)
                .expect("OVMF variable store (run ci/setup)");
            if secure {
                args.extend([
                    "-global".into(),
                    "driver=cfi.pflash01,property=secure,value=on".into(),
                ]);
            }
            args.extend([
                "-drive".into(),
                format!("if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/{code}"),
                "-drive".into(),
                format!("if=pflash,format=raw,unit=1,file={}", vars_copy.display()),
            ]);
        }
        // `boot_order("d...")` / `("n...")`: the CD or the first NIC boots
        // first, whatever the disks hold (bootindex beats -boot order). A
        // `-kernel` boot holds bootindex 0 itself (its option ROM).
        let first = self.boot.as_deref().and_then(|o| o.chars().next());
        let disk_base =
            usize::from(matches!(first, Some('d') | Some('n')) || self.kernel.is_some());
        let mut ahci_added = false;
        let mut usb_added = false;
        for (i, d) in self.disks.iter().enumerate() {
            let boot_index = i + disk_base;
            let mut drive = format!(
                "file={},format={},if=none,id=d{i},cache=unsafe",
                d.path.display(),
                d.format
            );
            if d.read_only {
                drive.push_str(",readonly=on");
            }
            if d.snapshot {
                drive.push_str(",snapshot=on");
            }
            args.extend(["-drive".into(), drive]);
            let device = match d.bus {
                Bus::Virtio => format!("virtio-blk-pci,drive=d{i},bootindex={boot_index}"),
                Bus::Ide => format!(
                    "ide-hd,drive=d{i},bus=ide.{},unit={},bootindex={boot_index}",
                    i / 2,
                    i % 2
                ),
                Bus::Ahci => {
                    if !ahci_added {
                        args.extend(["-device".into(), "ahci,id=ahci0".into()]);
                        ahci_added = true;
                    }
                    format!("ide-hd,drive=d{i},bus=ahci0.{i},bootindex={boot_index}")
                }
                Bus::Usb => {
                    if !usb_added {
                        args.extend(["-device".into(), "qemu-xhci,id=xhci".into()]);
                        usb_added = true;
                    }
                    format!("usb-storage,drive=d{i},bus=xhci.0,bootindex={boot_index}")
                }
            };
            args.extend(["-device".into(), device]);
        }
        if let Some(iso) = &self.cdrom {
            args.extend([
                "-drive".into(),
                format!(
                    "file={},format=raw,if=none,id=cd0,media=cdrom,readonly=on",
                    iso.display()
                ),
                "-device".into(),
                {
                    let index = if first == Some('d') { 0 } else { 10 };
                    if piix {
                        format!("ide-cd,drive=cd0,bus=ide.1,unit=1,bootindex={index}")
                    } else {
                        format!("ide-cd,drive=cd0,bus=ide.2,bootindex={index}")
                    }
                },
            ]);
        }
        if self.nics.is_empty() {
            args.extend(["-nic".into(), "none".into()]);
        }
        for (i, n) in self.nics.iter().enumerate() {
            let mut netdev = format!("user,id=n{i},restrict=off");
            if !n.user_options.is_empty() {
                netdev.push(',');
                netdev.push_str(&n.user_options);
            }
            args.extend([
                "-netdev".into(),
                netdev,
                "-device".into(),
                if i == 0 && first == Some('n') {
                    format!("{},netdev=n{i},mac={},bootindex=0", n.model, n.mac)
                } else {
                    format!("{},netdev=n{i},mac={}", n.model, n.mac)
                },
            ]);
        }
        if let Some((vmlinuz, initrd, append)) = &self.kernel {
            args.extend([
                "-kernel".into(),
                vmlinuz.display().to_string(),
                "-initrd".into(),
                initrd.display().to_string(),
                "-append".into(),
                append.clone(),
            ]);
        }
        if let Some(order) = &self.boot {
            args.extend(["-boot".into(), format!("order={order}")]);
        }
        args.extend(self.extra.iter().cloned());

        let child = Command::new("qemu-system-x86_64")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("qemu-system-x86_64 (run ci/setup)");
        let stream = connect_retrying(&socket);
        let log = Arc::new(Mutex::new(Vec::new()));
        let reader = stream.try_clone().expect("clone serial socket");
        let log_writer = Arc::clone(&log);
        let echo = std::env::var_os("XENLIFT_TEST_CONSOLE").is_some();
        thread::spawn(move || copy_console(reader, &log_writer, echo));
        Running {
            child,
            console: stream,
            log,
            seen: 0,
            args,
            _dir: dir,
        }
    }
}

fn connect_retrying(socket: &Path) -> UnixStream {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match UnixStream::connect(socket) {
            Ok(s) => return s,
            Err(e) if Instant::now() > deadline => panic!("qemu serial socket: {e}"),
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn copy_console(mut from: UnixStream, log: &Mutex<Vec<u8>>, echo: bool) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        if echo {
            let _ = std::io::stderr().write_all(&buf[..n]);
        }
        log.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(&buf[..n]);
    }
}

/// A running machine; killed on drop.
#[derive(Debug)]
pub struct Running {
    child: Child,
    console: UnixStream,
    log: Arc<Mutex<Vec<u8>>>,
    /// Console bytes already matched by `wait_for`, so each wait looks at new output.
    seen: usize,
    args: Vec<String>,
    _dir: TempDir,
}

impl Running {
    /// Everything the console printed so far.
    pub fn console_text(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// Waits until the console prints `needle` after the previous match.
    /// Returns the console text up to and including the match. The limit
    /// only guards against hangs; it asserts nothing about speed.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> Result<String, String> {
        self.wait_for_any(&[needle], limit).map(|(_, text)| text)
    }

    /// Waits for the first of several needles; returns which one and the text.
    pub fn wait_for_any(
        &mut self,
        needles: &[&str],
        limit: Duration,
    ) -> Result<(usize, String), String> {
        let deadline = Instant::now() + limit;
        loop {
            let text = self.console_text();
            let fresh = text.get(self.seen..).unwrap_or("");
            let hit = needles
                .iter()
                .enumerate()
                .filter_map(|(i, n)| fresh.find(n).map(|at| (at, i, n.len())))
                .min();
            if let Some((at, i, len)) = hit {
                self.seen += at + len;
                return Ok((i, text[..self.seen].to_string()));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.failure(&format!("qemu exited ({status}) before {needles:?}")));
            }
            if Instant::now() > deadline {
                return Err(self.failure(&format!("no {needles:?} within {limit:?}")));
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Types into the serial console.
    pub fn send(&mut self, text: &str) {
        self.console
            .write_all(text.as_bytes())
            .expect("write to serial console");
    }

    /// Waits for QEMU to exit (the guest powered off; `-no-reboot` turns a
    /// reboot into an exit too). Returns whether it exited within `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            thread::sleep(Duration::from_millis(200));
        }
        false
    }

    fn failure(&mut self, what: &str) -> String {
        let mut stderr = String::new();
        if let Ok(Some(_)) = self.child.try_wait() {
            if let Some(mut e) = self.child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
        }
        let text = self.console_text();
        let tail: String = text
            .chars()
            .rev()
            .take(6000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!(
            "{what}\nqemu {}\nqemu stderr: {stderr}\n--- console (tail) ---\n{tail}",
            self.args.join(" ")
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
