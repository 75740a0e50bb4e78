# Variant uefi-lvm, sourced by build.sh: UEFI, GPT: ESP (shim + GRUB in \EFI\debian only), /boot ext4, root ext4 on LVM; by-path names.
boot_uuid=$(cat /proc/sys/kernel/random/uuid)
cat >"$r/etc/fstab" <<'EOF'
# /etc/fstab: static file system information.
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
/dev/mapper/vg0-root	/	ext4	errors=remount-ro	0	1
# /boot was on /dev/vda2 during installation
/dev/disk/by-path/pci-0000:00:02.0-part2	/boot	ext4	defaults	0	2
/dev/disk/by-path/pci-0000:00:02.0-part1	/boot/efi	vfat	umask=0077	0	1
EOF
cat >"$r/etc/default/grub" <<'EOF'
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0,115200 rootdelay=30 systemd.default_timeout_start_sec=900"
GRUB_TERMINAL=serial
EOF
chroot_mount "$r"
chroot "$r" update-initramfs -u -k all >/dev/null
chroot_umount "$r"
mkdir -p "$r/boot/grub/x86_64-efi"
cp "$r/usr/lib/grub/x86_64-efi/"*.mod "$r/usr/lib/grub/x86_64-efi/"*.lst "$r/boot/grub/x86_64-efi/"
mkdir -p "$r/boot/grub"
cat >"$r/boot/grub/grub.cfg" <<EOF
set default="0"
set timeout=0
$grub_serial
menuentry 'Debian GNU/Linux' --class debian --class gnu-linux --class gnu --class os {
	insmod part_gpt
	insmod ext2
	search --no-floppy --fs-uuid --set=root $boot_uuid
	echo	'Loading Linux $kver ...'
	linux	/vmlinuz-$kver root=/dev/mapper/vg0-root ro  console=ttyS0,115200 rootdelay=30 systemd.default_timeout_start_sec=900
	echo	'Loading initial ramdisk ...'
	initrd	/initrd.img-$kver
}
EOF
mv "$r/boot" "$work/bootfs"
mkdir -p "$r/boot/efi"
truncate -s 2560M "$image"
sgdisk -o -n1:2048:+64M -t1:ef00 -c1:EFI -n2:0:+384M -t2:8300 -n3:0:0 -t3:8e00 "$image" >/dev/null
read -r off size < <(part_offset "$image" 1)
esp=$(loop "$image" "$off" "$size")
mkfs.vfat -n ESP "$esp" >/dev/null
mmd -i "$esp" ::/EFI ::/EFI/debian
mcopy -i "$esp" "$r/usr/lib/shim/shimx64.efi.signed" ::/EFI/debian/shimx64.efi
mcopy -i "$esp" "$r/usr/lib/shim/mmx64.efi.signed" ::/EFI/debian/mmx64.efi
mcopy -i "$esp" "$r/usr/lib/shim/BOOTX64.CSV" ::/EFI/debian/BOOTX64.CSV
mcopy -i "$esp" "$r/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed" ::/EFI/debian/grubx64.efi
printf "search.fs_uuid %s root\nset prefix=(\$root)'/grub'\nconfigfile \$prefix/grub.cfg\n" "$boot_uuid" >"$work/esp-grub.cfg"
mcopy -i "$esp" "$work/esp-grub.cfg" ::/EFI/debian/grub.cfg
read -r off size < <(part_offset "$image" 2)
mkfs.ext4 -q -U "$boot_uuid" -d "$work/bootfs" "$(loop "$image" "$off" "$size")"
read -r off size < <(part_offset "$image" 3)
pv=$(loop "$image" "$off" "$size")
lvmconf="devices { filter=[\"a|^$pv\$|\",\"r|.*|\"] }"
pvcreate -q --config "$lvmconf" "$pv"
vgcreate -q --config "$lvmconf" vg0 "$pv"
# No device-mapper on the host: create without activating; the guest activates it.
lvcreate -q --config "$lvmconf" --driverloaded n -an -Zn -L 1900M -n root vg0
pe_start=$(pvs --config "$lvmconf" --noheadings --nosuffix --units b -o pe_start "$pv" | tr -d ' ')
extent=$(vgs --config "$lvmconf" --noheadings --nosuffix --units b -o vg_extent_size vg0 | tr -d ' ')
range=$(lvs --config "$lvmconf" --noheadings -o seg_pe_ranges vg0/root | tr -d ' ')
first=${range##*:}
first=${first%-*}
last=${range##*-}
mkfs.ext4 -q -d "$r" "$(loop "$image" $((off + pe_start + first * extent)) $(((last - first + 1) * extent)))"
