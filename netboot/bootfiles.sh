#!/usr/bin/env bash
# Fetch the first-stage boot loaders from Debian's packages into a TFTP root
# (make bootfiles TFTP_ROOT=...). Needs apt-get and dpkg-deb; nothing is
# installed: packages are downloaded and unpacked into a scratch directory.
#
#   undionly.kpxe, ipxe.efi, snponly.efi  iPXE for BIOS and x86_64 UEFI (package ipxe)
#   shimx64.efi, grubx64.efi              Secure Boot chain for x86_64 (shim-signed, grub-efi-amd64-signed)
#   arm64/shimaa64.efi, arm64/grubaa64.efi Secure Boot chain for ARM64 (the arm64 packages)
#   arm64/grubnetaa64-http.efi             GRUB with HTTP, for ARM64 UEFI HTTP Boot (built with
#                                          grub-mkimage from grub-common, if installed)
#
# BOOTFILES_MANIFEST, if set, names a file that gets one line per package
# used: "name version architecture".
#
# Debian ships no ARM64 build of iPXE; ARM64 machines boot the signed GRUB,
# which has TFTP but no HTTP: UEFI HTTP Boot needs a GRUB built with it.
set -euo pipefail
root=${1:?usage: bootfiles.sh TFTP_ROOT}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$root/arm64" "$scratch/x" "$scratch/lists/partial"

fetch() { # fetch ARCH PACKAGE...: download and unpack into $scratch/x/ARCH
	local arch=$1; shift
	local opts=()
	if [ "$arch" != "$(dpkg --print-architecture)" ]; then
		opts=(-o APT::Architecture="$arch" -o APT::Architectures="$arch" -o Dir::State::Lists="$scratch/lists")
	fi
	mkdir -p "$scratch/$arch" "$scratch/x/$arch"
	(cd "$scratch/$arch" && apt-get -q "${opts[@]}" download "$@")
	for deb in "$scratch/$arch"/*.deb; do
		dpkg-deb -x "$deb" "$scratch/x/$arch"
		dpkg-deb --showformat='${Package} ${Version} ${Architecture}\n' -W "$deb" >>"${BOOTFILES_MANIFEST:-/dev/null}"
	done
}

echo "fetching x86_64 boot files"
fetch amd64 ipxe shim-signed grub-efi-amd64-signed
x="$scratch/x/amd64"
# usr/lib/ipxe/ipxe.efi is a symlink to /boot/ipxe.efi in the package
install -m 0644 "$x/usr/lib/ipxe/undionly.kpxe" "$x/boot/ipxe.efi" "$x/usr/lib/ipxe/snponly.efi" "$root/"
install -m 0644 "$x/usr/lib/shim/shimx64.efi.signed" "$root/shimx64.efi"
install -m 0644 "$x/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed" "$root/grubx64.efi"

echo "fetching ARM64 boot files (a private package list; the system's apt setup is not changed)"
if apt-get -q -o APT::Architecture=arm64 -o APT::Architectures=arm64 -o Dir::State::Lists="$scratch/lists" update >/dev/null &&
	fetch arm64 shim-signed grub-efi-arm64-signed grub-efi-arm64-bin; then
	a="$scratch/x/arm64"
	install -m 0644 "$a/usr/lib/shim/shimaa64.efi.signed" "$root/arm64/shimaa64.efi"
	install -m 0644 "$a/usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed" "$root/arm64/grubaa64.efi"
	if command -v grub-mkimage >/dev/null; then
		# Its prefix is where Slipway's HTTP serves GRUB configs; it is not
		# signed: with Secure Boot on, HTTP Boot needs a signed loader.
		grub-mkimage -O arm64-efi -d "$a/usr/lib/grub/arm64-efi" -p /boot/grub -o "$root/arm64/grubnetaa64-http.efi" \
			efinet net http tftp linux normal configfile echo test gzio ls search part_gpt fat ext2
		chmod 0644 "$root/arm64/grubnetaa64-http.efi"
	else
		echo "grub-mkimage is missing (install Debian's grub-common): no arm64/grubnetaa64-http.efi, so ARM64 UEFI HTTP Boot has no loader" >&2
	fi
else
	echo "ARM64 packages could not be fetched; ARM64 machines will find no boot file" >&2
fi
echo "boot files in $root:"
(cd "$root" && find . -type f | sort)
