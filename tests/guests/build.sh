#!/usr/bin/env bash
# Builds a Debian 12 guest disk image for the guest fix-up tests and prints its path.
#
#   tests/guests/build.sh VARIANT      VARIANT: bios-mbr | uefi-lvm | dracut
#
# Images are cached under $XENLIFT_CACHE (default /var/cache/xenlift-test), keyed by
# a hash of this directory, so they are rebuilt only when the recipe changes. One
# debootstrap rootfs is shared by all variants. Needs root, debootstrap,
# sfdisk/sgdisk, lvm2, dosfstools and mtools (ci/setup installs them).
#
#   bios-mbr  BIOS, MBR, ext4 root + swap; fstab, grub and resume name /dev/vdaN;
#             initramfs-tools with MODULES=dep generated on the source (virtio) hardware;
#             systemd-networkd names the virtio NIC's predictable name; a stale
#             70-persistent-net.rules pins an old MAC.
#   uefi-lvm  UEFI, GPT: ESP (shim + signed grub under \EFI\debian only, no
#             \EFI\BOOT fallback), /boot ext4, root ext4 on LVM (vg0/root); fstab
#             names /boot and the ESP by /dev/disk/by-path.
#   dracut    BIOS, MBR, dracut host-only image generated on the source hardware;
#             root=UUID= everywhere, so only the initramfs stands in the way.
#
# The source hardware is QEMU q35 with a virtio disk and a virtio NIC at PCI slot 5
# with MAC 52:54:00:12:34:56 (the tests boot it the same way); the initramfs holds
# the drivers of that hardware only, as the guest's own rebuild there would.
set -euo pipefail

variant=${1:?usage: build.sh bios-mbr|uefi-lvm|dracut}
case $variant in bios-mbr | uefi-lvm | dracut) ;; *) echo "unknown variant $variant" >&2; exit 2 ;; esac
for tool in debootstrap sfdisk sgdisk pvcreate mkfs.vfat mcopy mkfs.ext4 mkswap flock; do
    command -v "$tool" >/dev/null || { echo "missing $tool: run ci/setup" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "build.sh needs root (loop devices, chroot)" >&2; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
cache=${XENLIFT_CACHE:-/var/cache/xenlift-test}
mkdir -p "$cache"
# A variant's images change with the common recipe and its own, not the others'.
key=$(cd "$here" && sha256sum build.sh base.sh files/* "variants/$variant.sh" | sha256sum | cut -c1-16)
base_key=$(cd "$here" && sha256sum base.sh files/* | sha256sum | cut -c1-16)
image=$cache/guest-$variant-$key.img
mirror=${XENLIFT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
source_iface=enp0s5

# One build per variant at a time; the shared rootfs under its own lock.
exec 9>"$cache/lock-$variant"
flock 9
if [ -e "$image.done" ]; then
    echo "$image"
    exit 0
fi
# Images of older recipes are dead weight.
find "$cache" -maxdepth 1 \( -name "guest-$variant-*" -o -name "work-$variant-*" \) ! -name "*-$key*" -exec rm -rf {} +

work=$cache/work-$variant-$key
loops=$cache/loops-$variant
mounts=()
detach_loops() {
    local l
    [ -e "$loops" ] || return 0
    while read -r l; do losetup -d "$l" 2>/dev/null || true; done <"$loops"
    rm -f "$loops"
}
cleanup() {
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[i]}" 2>/dev/null || true; done
    detach_loops
    rm -rf "$work"
}
trap cleanup EXIT
log() { echo "build.sh[$variant]: $*" >&2; }

loop() { # FILE OFFSET SIZE -> device
    local dev
    dev=$(losetup --find --show --offset "$2" --sizelimit "$3" "$1")
    echo "$dev" >>"$loops"
    echo "$dev"
}

chroot_mount() {
    local r=$1
    for d in proc sys dev; do
        mount --bind "/$d" "$r/$d"
        mounts+=("$r/$d")
    done
}

chroot_umount() {
    local r=$1
    for d in dev sys proc; do umount -l "$r/$d"; done
    mounts=()
}

part_offset() { sfdisk -J "$1" | python3 -c "import json,sys; p=json.load(sys.stdin)['partitiontable']['partitions'][$2-1]; print(p['start']*512, p['size']*512)"; }

# --- the shared rootfs (its own key: variant recipes change more often) ---------------
base=$cache/base-$base_key
exec 8>"$cache/lock-base"
flock 8
find "$cache" -maxdepth 1 -name 'base-*' ! -name "base-$base_key" -exec rm -rf {} +
if [ ! -e "$base/.done" ]; then
    rm -rf "$base"
    log "debootstrap from $mirror"
    "$here/base.sh" "$base/rootfs" "$mirror" "$source_iface" >"$cache/debootstrap.log" 2>&1 \
        || { tail -n 30 "$cache/debootstrap.log" >&2; exit 1; }
    touch "$base/.done"
fi
flock -u 8

kver=$(ls "$base/rootfs/lib/modules" | sort -V | tail -n 1)
rm -rf "$work"
mkdir -p "$work"
r=$work/rootfs
log "copying the rootfs"
cp -a "$base/rootfs" "$r"
# Debian compresses the initramfs with zstd -19, which takes minutes under
# TCG; a lower level changes nothing the tests look at.
echo 'COMPRESSLEVEL=3' >"$r/etc/initramfs-tools/conf.d/compress-level"

grub_serial='serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console'

# The initramfs an installed machine holds after the distribution rebuilt it on
# its own hardware (MODULES=dep, dracut host-only): only the source's drivers.
# Made here in a chroot with that driver list given by name, because the
# chroot would otherwise see the build host's hardware, and a first boot under
# TCG to let the guest do it takes many minutes.
source_drivers="virtio_pci virtio_blk ext4 crc32c_generic"

# Fails unless the initramfs LISTING holds virtio_blk and no emulated-disk
# driver: otherwise the unfixed guest would boot on IDE/AHCI and the failure
# tests would prove nothing.
check_source_only() {
    grep -q '/virtio_blk\.ko' <<<"$1" || { log "the source initramfs lacks virtio_blk (cannot list it?)"; exit 1; }
    if grep -E '/(ata_piix|ahci|ata_generic)\.ko' <<<"$1" >&2; then
        log "the source initramfs holds emulated-disk drivers (above)"
        exit 1
    fi
}

# initramfs-tools with MODULES=dep as the source made it: built from the list,
# then the configuration put back to dep.
source_initramfs_tools() { # ROOTFS
    local r=$1 conf=$1/etc/initramfs-tools
    chroot_mount "$r"
    cp "$conf/modules" "$work/modules.orig"
    printf '%s\n' $source_drivers >>"$conf/modules"
    sed -i 's/^MODULES=.*/MODULES=list/' "$conf/initramfs.conf"
    chroot "$r" update-initramfs -u -k all >/dev/null
    cp "$work/modules.orig" "$conf/modules"
    sed -i 's/^MODULES=.*/MODULES=dep/' "$conf/initramfs.conf"
    check_source_only "$(chroot "$r" lsinitramfs "/boot/initrd.img-$kver")"
    chroot_umount "$r"
}
bios_grub() { # ROOTFS IMAGE: core image in the MBR gap, modules under /boot/grub
    local r=$1 img=$2
    mkdir -p "$r/boot/grub/i386-pc"
    cp "$r/usr/lib/grub/i386-pc/"*.mod "$r/usr/lib/grub/i386-pc/"*.lst "$r/usr/lib/grub/i386-pc/boot.img" "$r/boot/grub/i386-pc/"
    chroot "$r" grub-mkimage -O i386-pc -o /boot/grub/i386-pc/core.img \
        -p '(hd0,msdos1)/boot/grub' biosdisk part_msdos ext2
    dd if="$r/boot/grub/i386-pc/boot.img" of="$img" bs=440 count=1 conv=notrunc status=none
    dd if="$r/boot/grub/i386-pc/core.img" of="$img" bs=512 seek=1 conv=notrunc status=none
}

# shellcheck source=/dev/null
source "$here/variants/$variant.sh"

detach_loops
touch "$image.done"
log "built $image"
echo "$image"
