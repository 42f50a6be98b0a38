package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// BootImage is a kernel and initramfs a simulated machine can netboot:
// Debian's kernel, and a busybox initramfs whose init gets an address by
// DHCP, fetches MarkerURL's answer from Slipway and prints Marker on the
// serial console, then powers off.
type BootImage struct {
	Kernel string
	Initrd string
}

// Marker is what the test image prints on ttyS0 once it fetched its
// cloud-init user-data from Slipway by MAC and reported its onboarding
// done by heartbeat.
const Marker = "SLIPWAY-TESTBED-BOOTED"

// BootActionsMarker is what the test image prints after it ran the boot
// actions of a deployment, followed by the content of BootActionsProbe (a
// file a boot action may write).
const (
	BootActionsMarker = "SLIPWAY-TESTBED-BOOTACTIONS"
	BootActionsProbe  = "/etc/slipway-e2e"
)

// BootImageCmdline is the profile command line the test image expects,
// on an x86_64 machine's serial port.
const BootImageCmdline = "console=ttyS0 panic=-1 slipway.server={{.ServerURL}} slipway.mac={{.MAC}}"

// BootImageCmdlineARM64 is BootImageCmdline for an ARM64 virtual machine,
// whose serial port is a PL011.
const BootImageCmdlineARM64 = "console=ttyAMA0 panic=-1 slipway.server={{.ServerURL}} slipway.mac={{.MAC}}"

const testInit = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
exec >/dev/console 2>&1
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko; done
for x in $(cat /proc/cmdline); do
  case $x in
    slipway.server=*) SERVER=${x#*=} ;;
    slipway.mac=*) MAC=${x#*=} ;;
  esac
done
ip link set eth0 up
udhcpc -i eth0 -n -q -t 10 -s /bin/dhcp-script
# What an installer does first: fetch its cloud-init data by MAC, then
# report by heartbeat (busybox wget can POST).
beat() {
  wget -q -O /dev/null --header "Content-Type: application/json" \
    --post-data "{\"mac\":\"$MAC\",\"stage\":\"$1\",\"phase\":\"$2\",\"detail\":\"testbed initramfs\"}" "$SERVER/heartbeat"
}
if wget -q -O /tmp/user-data "$SERVER/cloud-init/user-data?mac=$MAC" && head -n 1 /tmp/user-data | grep -q "^#cloud-config" &&
   beat boot started && beat complete done; then
  # A machine deployed from a site design runs its boot actions, as an
  # installer without cloud-init would: the standalone script, with busybox.
  if wget -q -O /tmp/bootactions.sh "$SERVER/cloud-init/bootactions.sh?mac=$MAC"; then
    sh /tmp/bootactions.sh
    echo "` + BootActionsMarker + ` $(cat ` + BootActionsProbe + ` 2>/dev/null)"
  fi
  echo "` + Marker + ` mac=$MAC ip=$(cat /tmp/ip)"
else
  echo "SLIPWAY-TESTBED-FAILED: could not fetch $SERVER/cloud-init/user-data?mac=$MAC or post a heartbeat"
fi
sleep 2
poweroff -f
`

const testDHCPScript = `#!/bin/sh
if [ "$1" = bound ]; then ifconfig "$interface" "$ip" netmask "$subnet" up; echo "$ip" > /tmp/ip; fi
exit 0
`

// BuildBootImage downloads Debian's kernel package for arch ("amd64" or
// "arm64") into cacheDir/arch (once) and builds the initramfs there. It
// needs apt-get, dpkg-deb and Debian's busybox-static (for another
// architecture than this machine's, it fetches busybox-static too, with a
// private package list: the system's apt setup is not changed).
func BuildBootImage(ctx context.Context, cacheDir, arch string) (BootImage, error) {
	cacheDir = filepath.Join(cacheDir, arch)
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return BootImage{}, err
	}
	apt := aptFor(arch, cacheDir)
	busybox, err := apt.busybox(ctx)
	if err != nil {
		return BootImage{}, err
	}
	root, err := apt.unpacked(ctx, "linux-image-"+arch, "kernel", "boot")
	if err != nil {
		return BootImage{}, err
	}
	kernels, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(kernels) != 1 {
		return BootImage{}, fmt.Errorf("expected one kernel in %s/boot, found %v", root, kernels)
	}
	version := strings.TrimPrefix(filepath.Base(kernels[0]), "vmlinuz-")
	modules := filepath.Join(root, "lib", "modules", version, "kernel")
	files := map[string]InitramfsFile{
		"init":            {Data: []byte(testInit), Mode: 0o755},
		"bin/busybox":     {Source: busybox, Mode: 0o755},
		"bin/dhcp-script": {Data: []byte(testDHCPScript), Mode: 0o755},
		"tmp/.keep":       {},
		"proc/.keep":      {},
		"sys/.keep":       {},
		"dev/.keep":       {},
	}
	// Debian builds virtio networking as modules: load them in dependency
	// order (an architecture that builds one in has no file for it).
	var order []string
	for _, m := range []string{"drivers/virtio/virtio_ring", "drivers/virtio/virtio", "drivers/virtio/virtio_pci_modern_dev",
		"drivers/virtio/virtio_pci_legacy_dev", "drivers/virtio/virtio_pci", "net/core/failover", "drivers/net/net_failover", "drivers/net/virtio_net"} {
		name, file := filepath.Base(m), filepath.Join(modules, m+".ko")
		if _, err := os.Stat(file); err != nil {
			continue
		}
		files["lib/modules/"+name+".ko"] = InitramfsFile{Source: file}
		order = append(order, name)
	}
	files["lib/modules/order"] = InitramfsFile{Data: []byte(strings.Join(order, " ") + "\n")}
	initrd := filepath.Join(cacheDir, "initrd.gz")
	f, err := os.Create(initrd)
	if err != nil {
		return BootImage{}, err
	}
	if err := WriteInitramfs(f, files); err != nil {
		f.Close()
		return BootImage{}, err
	}
	if err := f.Close(); err != nil {
		return BootImage{}, err
	}
	return BootImage{Kernel: kernels[0], Initrd: initrd}, nil
}

// debianPackages fetches Debian packages of one architecture with
// apt-get download; for a foreign one, through a private package list.
type debianPackages struct {
	arch, dir string
	opts      []string // apt options for a foreign architecture
}

func aptFor(arch, dir string) debianPackages {
	d := debianPackages{arch: arch, dir: dir}
	if native, err := exec.Command("dpkg", "--print-architecture").Output(); err != nil || strings.TrimSpace(string(native)) != arch {
		d.opts = []string{"-o", "APT::Architecture=" + arch, "-o", "APT::Architectures=" + arch,
			"-o", "Dir::State::Lists=" + filepath.Join(dir, "lists")}
	}
	return d
}

// busybox is a static busybox of the architecture.
func (d debianPackages) busybox(ctx context.Context) (string, error) {
	if d.opts == nil {
		busybox := "/bin/busybox"
		if out, err := exec.Command(busybox, "--help").CombinedOutput(); err != nil || !bytes.Contains(out, []byte("BusyBox")) {
			return "", errors.New("/bin/busybox is missing: install Debian's busybox-static")
		}
		return busybox, nil
	}
	root, err := d.unpacked(ctx, "busybox-static", "busybox", "bin/busybox")
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin", "busybox"), nil
}

// unpacked returns dir/name holding the unpacked package pkg (or, for a
// metapackage such as linux-image-arm64, the linux-image-* it depends
// on), downloading it unless want (a path inside) is already there.
func (d debianPackages) unpacked(ctx context.Context, pkg, name, want string) (string, error) {
	root := filepath.Join(d.dir, name)
	if _, err := os.Stat(filepath.Join(root, want)); err == nil {
		return root, nil
	}
	if d.opts != nil {
		if err := os.MkdirAll(filepath.Join(d.dir, "lists", "partial"), 0o755); err != nil {
			return "", err
		}
		if out, err := d.apt(ctx, "apt-get", "-q", "update").CombinedOutput(); err != nil {
			return "", fmt.Errorf("apt-get update for %s: %w: %s", d.arch, err, out)
		}
	}
	if strings.HasPrefix(pkg, "linux-image-") {
		dep, err := d.kernelPackage(ctx, pkg)
		if err != nil {
			return "", err
		}
		pkg = dep
	}
	dl := d.apt(ctx, "apt-get", "download", pkg)
	dl.Dir = d.dir
	if out, err := dl.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get download %s (%s): %w: %s", pkg, d.arch, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(d.dir, pkg+"_*.deb"))
	if len(debs) == 0 {
		return "", fmt.Errorf("apt-get download %s left no .deb in %s", pkg, d.dir)
	}
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		return "", fmt.Errorf("dpkg-deb -x %s: %w: %s", debs[0], err, out)
	}
	os.Remove(debs[0])
	return root, nil
}

// kernelPackage is the linux-image-<version> a kernel metapackage names.
func (d debianPackages) kernelPackage(ctx context.Context, meta string) (string, error) {
	out, err := d.apt(ctx, "apt-cache", "depends", meta).Output()
	if err != nil {
		return "", fmt.Errorf("find Debian's kernel package (apt-cache depends %s): %w", meta, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if dep, ok := strings.CutPrefix(strings.TrimSpace(line), "Depends: "); ok && strings.HasPrefix(dep, "linux-image-") {
			return strings.TrimSuffix(dep, ":"+d.arch), nil
		}
	}
	return "", fmt.Errorf("no kernel package in: %s", out)
}

func (d debianPackages) apt(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, name, append(slices.Clone(d.opts), args...)...)
}
