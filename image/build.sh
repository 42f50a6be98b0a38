#!/usr/bin/env bash
# Build the Slipway appliance image for one architecture (make image runs
# it for amd64 and arm64):
#
#   image/build.sh ARCH SLIPWAY_BINARY OUTDIR
#
# writes OUTDIR/slipway-VERSION-ARCH.img (a hybrid ISO: dd it to a USB
# stick, or attach it as a CD or virtual media), its .sha256 and a
# .manifest of every Debian package inside. Everything comes from Debian's
# package archive (downloaded once into IMAGE_CACHE, never installed) and
# from this repository; the same inputs and SOURCE_DATE_EPOCH give the
# same bytes. Needs xorriso, mtools, dosfstools, cpio, kmod, zstd,
# grub-common, apt-get and dpkg-deb (make image-deps installs them).
#
# Layout of the image (docs/image.md):
#   partition 1  ISO 9660: GRUB, the kernel and the initramfs (everything
#                runs from RAM; nothing here is mounted at run time)
#   partition 2  EFI system partition: GRUB for UEFI
#   partition 3  FAT "SLIPWAY": slipway.yaml, and optionally a newer slipway binary
#   partition 4  made at first boot from 1 GiB to the end of the stick: ext4
#                "SLIPWAY-STATE", the data directory (not in the image file)
set -euo pipefail
arch=${1:?usage: build.sh ARCH SLIPWAY_BINARY OUTDIR}
binary=${2:?usage: build.sh ARCH SLIPWAY_BINARY OUTDIR}
outdir=${3:?usage: build.sh ARCH SLIPWAY_BINARY OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
version=${VERSION:-$(git -C "$repo" describe --tags --always --dirty 2>/dev/null || echo dev)}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 1)}
export TZ=UTC LC_ALL=C
umask 022
cache=${IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slipway-image}
name=slipway-$version-$arch

case $arch in
amd64) triplet=x86_64-linux-gnu loader=lib64/ld-linux-x86-64.so.2 grub_pkgs="grub-pc-bin grub-efi-amd64-bin" efi_name=BOOTX64.EFI grub_efi=x86_64-efi console="console=tty0 console=ttyS0,115200n8" ;;
arm64) triplet=aarch64-linux-gnu loader=lib/ld-linux-aarch64.so.1 grub_pkgs=grub-efi-arm64-bin efi_name=BOOTAA64.EFI grub_efi=arm64-efi console="console=tty0 console=ttyAMA0,115200 console=ttyS0,115200n8" ;;
*) echo "build.sh: architecture $arch is not built (amd64 or arm64)" >&2; exit 2 ;;
esac
for tool in xorriso mformat mcopy mmd mkfs.fat cpio depmod zstd grub-mkimage apt-get dpkg-deb; do
	command -v "$tool" >/dev/null || { echo "build.sh: $tool is missing: run make image-deps (as root)" >&2; exit 1; }
done
[ -x "$binary" ] || { echo "build.sh: $binary is not an executable" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$outdir" "$cache/$arch/debs"

step() { printf '== %s %s: %s\n' "$name" "$(date -u +%T)" "$*"; }

# --- Debian packages ----------------------------------------------------
# A foreign architecture's packages come through a private package list,
# kept in the cache: the system's apt setup is not changed.
apt_opts=()
if [ "$arch" != "$(dpkg --print-architecture)" ]; then
	apt_opts=(-o APT::Architecture="$arch" -o APT::Architectures="$arch" -o Dir::State::Lists="$cache/$arch/lists")
	if [ ! -d "$cache/$arch/lists" ] || [ -n "${IMAGE_REFRESH:-}" ]; then
		step "package lists for $arch"
		mkdir -p "$cache/$arch/lists/partial"
		apt-get -q "${apt_opts[@]}" update >/dev/null
	fi
fi
kernel_pkg=$(apt-cache "${apt_opts[@]}" depends "linux-image-$arch" | sed -n 's/^ *Depends: \(linux-image-[^ :]*\).*/\1/p' | head -n1)
[ -n "$kernel_pkg" ] || { echo "build.sh: no kernel package behind linux-image-$arch" >&2; exit 1; }
packages="$kernel_pkg busybox-static $grub_pkgs e2fsprogs libext2fs2 libcom-err2 libblkid1 libuuid1 fdisk libfdisk1 libsmartcols1 libreadline8 libtinfo6 libc6"

# fetch PACKAGE: the .deb of the candidate version, from the cache or apt.
fetch() {
	local info file
	info=$(apt-cache "${apt_opts[@]}" show --no-all-versions "$1") || { echo "build.sh: Debian has no package $1 for $arch" >&2; exit 1; }
	file=$(basename "$(sed -n 's/^Filename: //p' <<<"$info")")
	if [ ! -s "$cache/$arch/debs/$file" ]; then
		(cd "$cache/$arch/debs" && apt-get -qq "${apt_opts[@]}" download "$1" 2>&1 | grep -v "^W: Download is performed unsandboxed" >&2 || true)
		# apt names a file with an epoch with %3a where the archive has none.
		for got in "$cache/$arch/debs/$1"_*%3a*; do [ -e "$got" ] && mv "$got" "$cache/$arch/debs/$file"; done
	fi
	[ -s "$cache/$arch/debs/$file" ] || { echo "build.sh: could not download $1 ($arch)" >&2; exit 1; }
	echo "$cache/$arch/debs/$file"
}
step "Debian packages"
x=$work/x
for pkg in $packages; do
	deb=$(fetch "$pkg")
	# Unpacked once per .deb, then only read.
	unpacked=$cache/$arch/unpacked/$(basename "$deb" .deb)
	if [ ! -d "$unpacked" ]; then
		rm -rf "$unpacked.new" && mkdir -p "$unpacked.new"
		dpkg-deb -x "$deb" "$unpacked.new" && mv "$unpacked.new" "$unpacked"
	fi
	mkdir -p "$x" && ln -s "$unpacked" "$x/$pkg"
	dpkg-deb --showformat='${Package} ${Version} ${Architecture}\n' -W "$deb" >>"$work/manifest"
done

# --- root filesystem (the initramfs) ---------------------------------------
step "root filesystem"
root=$work/root
mkdir -p "$root"/{bin,sbin,dev,proc,sys,run,tmp,mnt,etc,var/lib/slipway,usr/bin,usr/sbin,usr/share/slipway,"lib/$triplet"}
cp -a "$here/rootfs/." "$root/"
install -m 0755 "$x/busybox-static/bin/busybox" "$root/bin/busybox"
install -m 0755 "$binary" "$root/usr/bin/slipway"
install -m 0644 "$here/slipway.yaml" "$root/usr/share/slipway/slipway.yaml"
# The tools the first boot formats its state partition with, and their libraries.
# Not in /sbin: busybox links its own, smaller mke2fs there.
mkdir -p "$root/usr/local/sbin"
install -m 0755 "$x/fdisk/sbin/sfdisk" "$x/e2fsprogs/sbin/mke2fs" "$x/e2fsprogs/sbin/e2fsck" "$root/usr/local/sbin/"
for lib in libext2fs2 libcom-err2 libblkid1 libuuid1 libfdisk1 libsmartcols1 libreadline8 libtinfo6; do
	find -H "$x/$lib" -name '*.so.*' \( -type f -o -type l \) -exec cp -a {} "$root/lib/$triplet/" \;
done
# libc6 ships under /lib (Debian 12) or /usr/lib (merged /usr, Debian 13).
libc() { if [ -e "$x/libc6/$1" ]; then echo "$x/libc6/$1"; else echo "$x/libc6/usr/$1"; fi; }
mkdir -p "$root/$(dirname "$loader")"
cp -L "$(libc "lib/$triplet/libc.so.6")" "$root/lib/$triplet/"
cp -L "$(libc "$loader")" "$root/$loader"
# The kernel, and the modules of the hardware an appliance meets: NICs,
# disks and USB sticks, keyboards, and the filesystems used here.
kdir=$x/$kernel_pkg
kver=$(basename "$(ls "$kdir"/boot/vmlinuz-*)" | sed 's/^vmlinuz-//')
mods=lib/modules/$kver/kernel
for sub in drivers/net/ethernet drivers/net/usb drivers/net/phy drivers/net/mdio drivers/net/pcs drivers/net/virtio_net.ko drivers/net/net_failover.ko drivers/net/mii.ko \
	drivers/virtio drivers/block drivers/scsi drivers/ata drivers/nvme drivers/usb drivers/hid drivers/mmc drivers/cdrom drivers/input/serio drivers/input/keyboard \
	drivers/char/hw_random drivers/ptp drivers/pps drivers/dca drivers/i2c/algos drivers/acpi/button.ko drivers/input/evdev.ko \
	fs/fat fs/isofs fs/ext4 fs/jbd2 fs/mbcache.ko fs/nls net/core/failover.ko net/packet block lib crypto; do
	[ -e "$kdir/$mods/$sub" ] || continue
	mkdir -p "$root/$mods/$(dirname "$sub")"
	cp -a "$kdir/$mods/$sub" "$root/$mods/$(dirname "$sub")/"
done
cp "$kdir/lib/modules/$kver/modules.builtin" "$kdir/lib/modules/$kver/modules.order" "$root/lib/modules/$kver/" 2>/dev/null || true
depmod -b "$root" "$kver"
# The boot loaders Slipway hands to the machines it netboots.
tftp=$cache/tftp
if [ ! -s "$cache/tftp.packages" ] || [ -n "${IMAGE_REFRESH:-}" ]; then
	step "netboot loaders"
	rm -rf "$tftp" "$cache/tftp.packages"
	BOOTFILES_MANIFEST=$cache/tftp.packages.new bash "$repo/netboot/bootfiles.sh" "$tftp" >/dev/null
	mv "$cache/tftp.packages.new" "$cache/tftp.packages"
fi
cp -a "$tftp" "$root/usr/share/slipway/tftp"
cat "$cache/tftp.packages" >>"$work/manifest"
cat >"$root/etc/slipway-image" <<INFO
version=$version
arch=$arch
kernel=$kver
INFO
cp "$work/manifest" "$root/usr/share/slipway/packages"
# Fixed owners, times and order: the same tree gives the same archive.
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$root" && find . -mindepth 1 | sort | cpio --quiet -o -H newc -R 0:0 --reproducible) | zstd -q -T1 -12 >"$work/initrd.img"

# --- ISO 9660 tree and boot loaders -------------------------------------
step "boot loaders"
iso=$work/iso
mkdir -p "$iso/slipway" "$iso/boot/grub"
cp "$kdir/boot/vmlinuz-$kver" "$iso/slipway/vmlinuz"
cp "$work/initrd.img" "$iso/slipway/initrd.img"
marker=/slipway/$name
: >"$iso$marker"
sed -e "s|@VERSION@|$version|g" -e "s|@CONSOLE@|$console|g" "$here/grub.cfg" >"$iso/boot/grub/grub.cfg"
if [ "$arch" = amd64 ]; then
	sed -i 's|^#serial ||' "$iso/boot/grub/grub.cfg"
fi
# GRUB finds the ISO by the image's own marker file, then reads its menu.
printf 'search --no-floppy --file --set=root %s\nset prefix=($root)/boot/grub\nconfigfile $prefix/grub.cfg\n' "$marker" >"$work/embed.cfg"
grub_modules="normal linux search search_fs_file configfile echo test ls iso9660 fat part_msdos part_gpt"
efidir=$x/${grub_pkgs##* }/usr/lib/grub/$grub_efi
grub-mkimage -O "$grub_efi" -d "$efidir" -p /boot/grub -c "$work/embed.cfg" -o "$work/$efi_name" $grub_modules efi_gop all_video serial terminal
if [ "$arch" = amd64 ]; then
	pcdir=$x/grub-pc-bin/usr/lib/grub/i386-pc
	mkdir -p "$iso/boot/grub/i386-pc"
	grub-mkimage -O i386-pc-eltorito -d "$pcdir" -p /boot/grub -c "$work/embed.cfg" -o "$iso/boot/grub/i386-pc/eltorito.img" $grub_modules biosdisk serial terminal
	cp "$pcdir/boot_hybrid.img" "$work/"
fi
# The EFI system partition and the operator's FAT partition, with fixed
# serial numbers and dates.
fat() { # fat FILE SIZE_MIB LABEL VOLID
	rm -f "$1"
	mkfs.fat -C --invariant -i "$4" -n "$3" "$1" $(($2 * 1024)) >/dev/null
}
export MTOOLS_SKIP_CHECK=1
fat "$work/efi.img" 8 EFI 5a1b0001
mmd -i "$work/efi.img" ::/EFI ::/EFI/BOOT
touch -d "@$SOURCE_DATE_EPOCH" "$work/$efi_name"
mcopy -m -i "$work/efi.img" "$work/$efi_name" ::/EFI/BOOT/
fat "$work/config.img" 128 SLIPWAY 5a1b0002
cp "$here/slipway.yaml" "$here/README.txt" "$work/"
touch -d "@$SOURCE_DATE_EPOCH" "$work/slipway.yaml" "$work/README.txt"
mcopy -m -i "$work/config.img" "$work/slipway.yaml" "$work/README.txt" ::/

# --- the hybrid image ----------------------------------------------------
step "image"
find "$iso" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
bios=()
if [ "$arch" = amd64 ]; then
	bios=(--grub2-mbr "$work/boot_hybrid.img" -b boot/grub/i386-pc/eltorito.img -no-emul-boot -boot-load-size 4 -boot-info-table --grub2-boot-info -eltorito-alt-boot)
fi
img=$outdir/$name.img
rm -f "$img"
xorriso -as mkisofs -quiet -o "$img" -iso-level 3 -R -J -V SLIPWAY -partition_offset 16 \
	"${bios[@]}" -e --interval:appended_partition_2:all:: -no-emul-boot \
	-append_partition 2 0xef "$work/efi.img" -append_partition 3 0x0c "$work/config.img" \
	"$iso"
size=$(stat -c %s "$img")
if [ "$size" -ge $((1024 * 1024 * 1024)) ]; then
	echo "build.sh: $img is $size bytes: past 1 GiB, where the state partition begins" >&2
	exit 1
fi
sort "$work/manifest" >"$outdir/$name.manifest"
(cd "$outdir" && sha256sum "$name.img" >"$name.img.sha256")
step "done: $img ($((size / 1024 / 1024)) MiB), $name.img.sha256, $name.manifest"
