# Variant dracut, sourced by build.sh: BIOS, MBR, ext4 root, UUID= names, dracut host-only image made on the source hardware.
chroot_mount "$r"
cp /etc/resolv.conf "$r/etc/resolv.conf"
log "installing dracut"
{ chroot "$r" apt-get -q update && chroot "$r" apt-get -q -y install dracut; } >"$work/dracut-install.log" 2>&1 \
    || { tail -n 30 "$work/dracut-install.log" >&2; exit 1; }
rm -f "$r/var/cache/apt/archives/"*.deb
# The configuration of a host-only machine: strict, and the emulated-disk
# drivers left out by name (dracut adds ata_piix/ahci for the q35 controllers
# it sees even on a virtio-only machine).
printf 'hostonly="yes"\nhostonly_mode="strict"\nomit_drivers+=" ata_piix ahci ata_generic pata_acpi "\n' \
    >"$r/etc/dracut.conf.d/10-hostonly.conf"
# Fast compression: the fix-up rebuilds it under TCG in the appliance tests.
printf 'compress="zstd -q -3"\n' >"$r/etc/dracut.conf.d/20-compress.conf"
# The image host-only mode makes on the source hardware: its drivers only.
chroot "$r" dracut -q -f --no-hostonly --drivers "$source_drivers" --kver "$kver"
check_source_only "$(chroot "$r" lsinitrd "/boot/initrd.img-$kver")"
chroot_umount "$r"
root_uuid=$(cat /proc/sys/kernel/random/uuid)
cat >"$r/etc/fstab" <<EOF
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
UUID=$root_uuid	/	ext4	errors=remount-ro	0	1
tmpfs	/tmp	tmpfs	defaults,nosuid,nodev	0	0
EOF
cat >"$r/etc/default/grub" <<'EOF'
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_CMDLINE_LINUX="console=ttyS0,115200 rd.timeout=120"
GRUB_TERMINAL=serial
EOF
mkdir -p "$r/boot/grub"
cat >"$r/boot/grub/grub.cfg" <<EOF
set default="0"
set timeout=0
$grub_serial
menuentry 'Debian GNU/Linux' --class debian --class gnu-linux --class gnu --class os {
	insmod gzio
	insmod part_msdos
	insmod ext2
	search --no-floppy --fs-uuid --set=root $root_uuid
	linux	/boot/vmlinuz-$kver root=UUID=$root_uuid ro console=ttyS0,115200 rd.timeout=120
	initrd	/boot/initrd.img-$kver
}
EOF
truncate -s 2G "$image"
printf 'label: dos\n,,L,*\n' | sfdisk -q "$image"
bios_grub "$r" "$image"
read -r off size < <(part_offset "$image" 1)
mkfs.ext4 -q -U "$root_uuid" -d "$r" "$(loop "$image" "$off" "$size")"
