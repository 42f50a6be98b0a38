// Package image holds the appliance image: a USB stick or ISO that boots
// any x86_64 or ARM64 box into a running Slipway. Nothing here is linked
// into the slipway binary; "make image" runs build.sh, which assembles it
// from Debian's packages with Debian's tools (xorriso, mtools, dosfstools,
// grub-mkimage):
//
//	build.sh        the builder: packages → initramfs → GRUB → hybrid image
//	grub.cfg        the boot menu (normal, and a recovery shell)
//	slipway.yaml    the configuration the FAT partition "SLIPWAY" starts with
//	README.txt      what an operator finds beside it on that partition
//	rootfs/         the start-up (busybox init): drivers, configuration and
//	                state partition, the service and its restarts, the
//	                status screen on the display and the serial console
//
// The tests here check that what the image ships is valid for the binary
// it ships with; the end-to-end test boots it in QEMU (testbed/e2e).
// docs/image.md is the operator's guide.
package image
