#!/usr/bin/env bash
# The Debian 12 rootfs every guest variant starts from (called by build.sh):
#   base.sh ROOTFS MIRROR IFACE
# Kernel, systemd, both GRUB platforms, shim, LVM, initramfs-tools; the test
# marker service; systemd-networkd with DHCP on IFACE (the source NIC's name).
set -euo pipefail
r=$1 mirror=$2 iface=$3
here=$(cd "$(dirname "$0")" && pwd)
debootstrap --variant=minbase \
    --include=linux-image-amd64,systemd,systemd-sysv,udev,initramfs-tools,zstd,kmod,iproute2,lvm2,grub2-common,grub-pc-bin,grub-efi-amd64-bin,grub-efi-amd64-signed,shim-signed \
    bookworm "$r" "$mirror"
echo guest >"$r/etc/hostname"
install -m 0755 "$here/files/xenlift-marker" "$r/usr/local/sbin/"
install -m 0644 "$here/files/xenlift-marker.service" "$r/etc/systemd/system/"
chroot "$r" systemctl enable -q systemd-networkd xenlift-marker.service
# Timers that only slow a test boot down.
chroot "$r" systemctl disable -q apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer 2>/dev/null || true
printf '[Match]\nName=%s\n\n[Network]\nDHCP=ipv4\n' "$iface" >"$r/etc/systemd/network/50-wired.network"
rm -rf "$r/var/cache/apt/archives/"*.deb
