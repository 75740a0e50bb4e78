//! Boot loader configurations: one menu in each loader's syntax. The last
//! `console=` becomes /dev/console, so the serial port (IPMI
//! serial-over-LAN) comes last and the screen gets kernel messages too.

pub const CONSOLES: &str = "console=tty0 console=ttyS0,115200n8";

/// Menu entries: (title, extra kernel options).
const ENTRIES: [(&str, &str); 3] = [
    ("xenlift", "quiet"),
    ("xenlift, with kernel messages", ""),
    (
        "xenlift, rescue shell",
        "xenlift.run=interactive xenlift.post=shell",
    ),
];

fn append(extra: &str, more: &str) -> String {
    [CONSOLES, extra, more]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// /boot/grub/grub.cfg on the ISO (UEFI through shim and GRUB).
pub fn grub_iso() -> String {
    let mut s = String::from(
        "# xenlift appliance (UEFI). Kernel options: see README, section Appliance.\n\
         serial --unit=0 --speed=115200\n\
         terminal_input console serial\n\
         terminal_output console serial\n\
         set timeout=3\n\
         set default=0\n",
    );
    for (title, extra) in ENTRIES {
        s.push_str(&format!(
            "menuentry \"{title}\" {{\n  linux /boot/vmlinuz {}\n  initrd /boot/initrd.img\n}}\n",
            append(extra, "")
        ));
    }
    s
}

/// The ESP's /boot/grub/grub.cfg: finds this build's ISO9660 tree by its
/// unique marker (another Debian stick would also have /.disk/info) and
/// loads the real menu from it.
pub fn grub_esp_stub(build_id: &str) -> String {
    format!(
        "search --no-floppy --set=root --file /.disk/id/{build_id}\n\
         set prefix=($root)/boot/grub\n\
         configfile $prefix/grub.cfg\n"
    )
}

/// /isolinux/isolinux.cfg (BIOS, CD and USB).
pub fn isolinux() -> String {
    let mut s = String::from(
        "# xenlift appliance (BIOS). Kernel options: see README, section Appliance.\n\
         SERIAL 0 115200\n\
         DEFAULT xenlift0\n\
         PROMPT 1\n\
         TIMEOUT 30\n",
    );
    for (i, (title, extra)) in ENTRIES.iter().enumerate() {
        s.push_str(&format!(
            "LABEL xenlift{i}\n  MENU LABEL {title}\n  KERNEL /boot/vmlinuz\n  APPEND initrd=/boot/initrd.img {}\n",
            append(extra, "")
        ));
    }
    s
}

/// pxe/boot.ipxe: `set xenlift_args ...` before chaining it adds options.
pub fn ipxe() -> String {
    format!(
        "#!ipxe\n\
         # xenlift appliance over iPXE. To add kernel options (xenlift.config=URL...),\n\
         # `set xenlift_args ...` in the script that chains this one.\n\
         kernel vmlinuz initrd=initrd.img {} quiet ${{xenlift_args}}\n\
         initrd --name initrd.img initrd.img\n\
         boot\n",
        CONSOLES
    )
}

/// pxe/pxelinux.cfg/default (BIOS PXE with pxelinux).
pub fn pxelinux() -> String {
    format!(
        "# xenlift appliance over PXE (BIOS). Add options to APPEND.\n\
         SERIAL 0 115200\n\
         DEFAULT xenlift\n\
         LABEL xenlift\n  KERNEL vmlinuz\n  APPEND initrd=initrd.img {} quiet\n  IPAPPEND 2\n",
        CONSOLES
    )
}

/// pxe/grub/grub.cfg (UEFI Secure Boot PXE: shim, then signed grubnetx64).
/// Sites add options (xenlift.config=URL...) to the `linux` line; GRUB
/// cannot test for an optional file over TFTP, so there is no include.
pub fn grub_net() -> String {
    format!(
        "# xenlift appliance over PXE (UEFI). Add kernel options (xenlift.config=URL...)\n\
         # to the linux line; quote a value holding ${{mac}} with single quotes.\n\
         serial --unit=0 --speed=115200\n\
         terminal_input console serial\n\
         terminal_output console serial\n\
         set timeout=3\n\
         menuentry \"xenlift\" {{\n  linux /vmlinuz {} quiet\n  initrd /initrd.img\n}}\n",
        CONSOLES
    )
}
