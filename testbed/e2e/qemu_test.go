//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway/testbed"
)

const qemuConfig = lanBase + `
log: {level: debug}
` + testbedProfile

// testbedProfile boots every machine into the testbed's image.
const testbedProfile = `dhcp:
  range: {start: 10.88.0.100, end: 10.88.0.199}
profiles:
  testbed:
    kernel: testbed/vmlinuz
    initrd: testbed/initrd.gz
    cmdline: "` + testbed.BootImageCmdline + `"
default_profile: testbed
`

// TestQEMUNetbootsThroughSlipway boots a virtual machine with QEMU's iPXE
// ROM on the namespace LAN: DHCP, /boot.ipxe, kernel and initramfs over
// HTTP, then the booted system fetches its cloud-init user-data by MAC,
// reports its onboarding by heartbeat and says so on the
// serial console. It measures power-on to kernel and to the marker.
func TestQEMUNetbootsThroughSlipway(t *testing.T) {
	img := bootImage(t)
	lan := newLAN(t, "10.88.0.1/24")
	a := serveBootImage(t, lan, img, qemuConfig)
	bootQEMU(t, lan, a, "52:54:00:e2:e0:01", biosIPXE)
	if !strings.Contains(a.logs(), "lease granted") {
		t.Errorf("no DHCP lease in the log")
	}
}

// TestQEMUUEFIChainloadsIPXEOverTFTP boots with UEFI firmware (Debian's
// OVMF) and its own PXE client, not an iPXE ROM: the firmware gets
// ipxe.efi over TFTP (Debian's, fetched as make bootfiles does), iPXE asks
// DHCP again, and the rest is as with BIOS.
func TestQEMUUEFIChainloadsIPXEOverTFTP(t *testing.T) {
	if _, err := os.Stat(ovmfCode); err != nil {
		missingPeer(t, "%s is missing: install Debian's ovmf", ovmfCode)
	}
	img := bootImage(t)
	lan := newLAN(t, "10.88.0.1/24")
	a := serveBootImage(t, lan, img, qemuConfig)
	copyFile(t, filepath.Join(bootFiles(t), "ipxe.efi"), filepath.Join(a.tftpRoot, "ipxe.efi"))
	bootQEMU(t, lan, a, "52:54:00:e2:e0:03", uefiFirmware)
	if !strings.Contains(a.logs(), `msg="file sent" part=tftp file=ipxe.efi`) {
		t.Errorf("the firmware did not load ipxe.efi over TFTP:\n%s", a.logs())
	}
}

const ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"

// bootFiles is a directory of Debian's first-stage loaders (iPXE, shim,
// signed GRUB, for x86_64 and ARM64), fetched once as make bootfiles does.
func bootFiles(t *testing.T) string {
	t.Helper()
	dir := "/var/cache/slipway-e2e/bootfiles"
	if _, err := os.Stat(filepath.Join(dir, "arm64", "grubnetaa64-http.efi")); err != nil {
		if out, err := exec.Command("bash", "../../netboot/bootfiles.sh", dir).CombinedOutput(); err != nil {
			t.Fatalf("bootfiles.sh: %v\n%s", err, out)
		}
	}
	return dir
}

// firmware adds QEMU's firmware and NIC arguments for one kind of
// machine; the first may name the QEMU to run (qemu-system-x86_64 if not).
type firmware func(t *testing.T, mac string) []string

func biosIPXE(_ *testing.T, mac string) []string {
	return []string{"-device", "virtio-net-pci,netdev=n0,mac=" + mac + ",romfile=" + ipxeROM + ",disable-legacy=on"}
}

func uefiFirmware(t *testing.T, mac string) []string {
	vars := filepath.Join(t.TempDir(), "OVMF_VARS.fd")
	copyFile(t, "/usr/share/OVMF/OVMF_VARS_4M.fd", vars)
	return []string{
		"-drive", "if=pflash,format=raw,readonly=on,file=" + ovmfCode,
		"-drive", "if=pflash,format=raw,file=" + vars,
		// romfile= (empty): no iPXE ROM, so OVMF's own PXE client boots.
		"-device", "virtio-net-pci,netdev=n0,mac=" + mac + ",romfile=",
	}
}

// TestQEMUSecureBootNetbootsShimGRUBAndASignedKernel: OVMF with
// Microsoft's keys enrolled and Secure Boot on loads Debian's signed shim
// over TFTP, shim the signed GRUB, GRUB its per-MAC config from Slipway
// and Debian's signed kernel; the firmware refuses an unsigned loader
// (Debian's iPXE).
func TestQEMUSecureBootNetbootsShimGRUBAndASignedKernel(t *testing.T) {
	for _, f := range []string{secureBootCode, secureBootVars} {
		if _, err := os.Stat(f); err != nil {
			missingPeer(t, "%s is missing: install Debian's ovmf", f)
		}
	}
	img := bootImage(t)
	files := bootFiles(t)
	t.Run("shim then GRUB then a signed kernel", func(t *testing.T) {
		lan := newLAN(t, "10.88.0.1/24")
		a := serveBootImage(t, lan, img, qemuConfig+"netboot:\n  boot_files: {uefi-x64: shimx64.efi}\n")
		copyFile(t, filepath.Join(files, "shimx64.efi"), filepath.Join(a.tftpRoot, "shimx64.efi"))
		copyFile(t, filepath.Join(files, "grubx64.efi"), filepath.Join(a.tftpRoot, "grubx64.efi"))
		mac := "52:54:00:e2:5b:01"
		bootQEMU(t, lan, a, mac, secureBootFirmware)
		// Debian's signed GRUB has no HTTP: the kernel comes over TFTP.
		for _, sent := range []string{"file=shimx64.efi", "file=grubx64.efi", "file=grub/grub.cfg-01-" + mac, "file=assets/testbed/vmlinuz"} {
			if !strings.Contains(a.logs(), sent) {
				t.Errorf("no %s in Slipway's log:\n%s", sent, a.logs())
			}
		}
	})
	t.Run("an unsigned loader is refused", func(t *testing.T) {
		lan := newLAN(t, "10.88.0.1/24")
		a := serveBootImage(t, lan, img, qemuConfig)
		copyFile(t, filepath.Join(files, "ipxe.efi"), filepath.Join(a.tftpRoot, "ipxe.efi"))
		vm := runQEMU(t, lan, a, "52:54:00:e2:5b:02", secureBootFirmware, "Access Denied", "-boot", "n")
		if strings.Contains(vm.serial, "iPXE") || !strings.Contains(a.logs(), "file=ipxe.efi") {
			t.Errorf("the unsigned iPXE ran, or was never fetched; serial:\n%s", vm.serial)
		}
	})
}

const (
	secureBootCode = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	secureBootVars = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd" // Microsoft's keys enrolled, Secure Boot on
)

// secureBootFirmware is OVMF with Secure Boot on: a q35 machine with SMM,
// as its secure variable store needs.
func secureBootFirmware(t *testing.T, mac string) []string {
	vars := filepath.Join(t.TempDir(), "OVMF_VARS.fd")
	copyFile(t, secureBootVars, vars)
	return []string{
		"-machine", "q35,smm=on,accel=tcg", "-global", "driver=cfi.pflash01,property=secure,value=on",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + secureBootCode,
		"-drive", "if=pflash,format=raw,unit=1,file=" + vars,
		"-device", "virtio-net-pci,netdev=n0,mac=" + mac + ",romfile=",
	}
}

// TestQEMUARM64UEFINetbootsThroughSlipway: an ARM64 virtual machine with
// Debian's AAVMF firmware netboots from Slipway to the heartbeat.
//
//   - PXE: DHCP says architecture 11, Slipway answers with the ARM64 loader
//     (Debian's signed GRUB, netboot.boot_files.uefi-arm64's default) over
//     TFTP; GRUB gets its per-MAC config and Debian's arm64 kernel.
//   - UEFI HTTP Boot: architecture 19 gets its own loader's URL
//     (uefi-arm64-http, a GRUB with HTTP that make bootfiles builds); the
//     PXE loader is made absent so that the firmware moves on to its HTTP
//     Boot entry, as a machine whose boot order puts HTTP first would.
//
// QEMU emulates the CPU (TCG): slow, so one boot each is the smoke test.
func TestQEMUARM64UEFINetbootsThroughSlipway(t *testing.T) {
	requireCommands(t, map[string]string{"qemu-system-aarch64": "qemu-system-arm"})
	for _, f := range []string{aavmfCode, aavmfVars} {
		if _, err := os.Stat(f); err != nil {
			missingPeer(t, "%s is missing: install Debian's qemu-efi-aarch64", f)
		}
	}
	img, err := testbed.BuildBootImage(context.Background(), "/var/cache/slipway-e2e", "arm64")
	if err != nil {
		t.Fatal(err)
	}
	files := bootFiles(t)
	config := strings.Replace(qemuConfig, testbed.BootImageCmdline, testbed.BootImageCmdlineARM64, 1)
	for _, tc := range []struct {
		name, mac, bootFiles string
		loader               []string // files under arm64/ in the TFTP root
		sent                 string   // the loader as Slipway logged it
	}{
		{"PXE", "52:54:00:a6:40:01", "", []string{"grubaa64.efi"}, "part=tftp file=arm64/grubaa64.efi"},
		{"UEFI HTTP Boot", "52:54:00:a6:40:02", "netboot:\n  boot_files: {uefi-arm64: arm64/absent.efi}\n",
			[]string{"grubnetaa64-http.efi"}, "path=/boot/arm64/grubnetaa64-http.efi status=200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lan := newLAN(t, "10.88.0.1/24")
			a := serveBootImage(t, lan, img, config+tc.bootFiles)
			if err := os.MkdirAll(filepath.Join(a.tftpRoot, "arm64"), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range tc.loader {
				copyFile(t, filepath.Join(files, "arm64", f), filepath.Join(a.tftpRoot, "arm64", f))
			}
			bootQEMU(t, lan, a, tc.mac, arm64Firmware)
			for _, sent := range []string{tc.sent, "grub.cfg-01-" + tc.mac} {
				if !strings.Contains(a.logs(), sent) {
					t.Errorf("no %s in Slipway's log:\n%s", sent, a.logs())
				}
			}
		})
	}
}

const (
	aavmfCode = "/usr/share/AAVMF/AAVMF_CODE.fd"
	aavmfVars = "/usr/share/AAVMF/AAVMF_VARS.fd"
)

func arm64Firmware(t *testing.T, mac string) []string {
	vars := filepath.Join(t.TempDir(), "AAVMF_VARS.fd")
	copyFile(t, aavmfVars, vars)
	return []string{"qemu-system-aarch64", "-machine", "virt,accel=tcg", "-cpu", "cortex-a57", "-m", "768",
		"-drive", "if=pflash,format=raw,readonly=on,file=" + aavmfCode,
		"-drive", "if=pflash,format=raw,file=" + vars,
		"-device", "virtio-net-pci,netdev=n0,mac=" + mac + ",romfile=",
	}
}

// TestQEMUNetbootsThroughProxyDHCP: dnsmasq on another host of the LAN
// gives the addresses; Slipway in proxy mode gives only the boot answer,
// to BIOS iPXE and to UEFI firmware's own PXE client, which loads ipxe.efi
// over TFTP. (EDK2 asks the PXE boot server port 4011 only for a proxy
// offer without PXE vendor options; Slipway's says "boot this file", as
// PXE discovery control 8.)
func TestQEMUNetbootsThroughProxyDHCP(t *testing.T) {
	t.Run("BIOS iPXE", func(t *testing.T) { netbootThroughProxyDHCP(t, "52:54:00:e2:e0:02", biosIPXE) })
	t.Run("UEFI PXE", func(t *testing.T) {
		if _, err := os.Stat(ovmfCode); err != nil {
			missingPeer(t, "%s is missing: install Debian's ovmf", ovmfCode)
		}
		a := netbootThroughProxyDHCP(t, "52:54:00:e2:e0:04", uefiFirmware)
		if !strings.Contains(a.logs(), `msg="file sent" part=tftp file=ipxe.efi`) {
			t.Errorf("the firmware did not load ipxe.efi:\n%s", a.logs())
		}
	})
}

func netbootThroughProxyDHCP(t *testing.T, mac string, fw firmware) *appliance {
	t.Helper()
	requireCommands(t, map[string]string{"dnsmasq": "dnsmasq-base"})
	img := bootImage(t)
	lan := newLAN(t, "10.88.0.1/24")
	other, err := lan.AddHost(context.Background(), "dhcp", "10.88.0.254/24")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stop := startPeerProcess(t, other.Command(context.Background(), "dnsmasq", "--keep-in-foreground", "--port=0",
		"--interface=eth0", "--bind-interfaces", "--dhcp-range=10.88.0.100,10.88.0.150,1h", "--no-ping",
		"--dhcp-leasefile="+filepath.Join(dir, "leases"), "--pid-file="+filepath.Join(dir, "pid"), "--log-facility=-"))
	defer stop()
	config := strings.Replace(qemuConfig, "dhcp:\n  range: {start: 10.88.0.100, end: 10.88.0.199}", "dhcp:\n  mode: proxy", 1)
	a := serveBootImage(t, lan, img, config)
	copyFile(t, filepath.Join(bootFiles(t), "ipxe.efi"), filepath.Join(a.tftpRoot, "ipxe.efi"))
	bootQEMU(t, lan, a, mac, fw)
	leases, _ := os.ReadFile(filepath.Join(dir, "leases"))
	if !strings.Contains(string(leases), mac) {
		t.Errorf("the address did not come from dnsmasq; its leases: %s", leases)
	}
	if strings.Contains(a.logs(), "lease granted") {
		t.Errorf("Slipway granted a lease in proxy mode")
	}
	return a
}

func bootImage(t *testing.T) testbed.BootImage {
	t.Helper()
	requireCommands(t, map[string]string{"qemu-system-x86_64": "qemu-system-x86", "apt-get": "apt", "dpkg-deb": "dpkg"})
	if _, err := os.Stat(ipxeROM); err != nil {
		missingPeer(t, "%s is missing: install Debian's ipxe-qemu", ipxeROM)
	}
	img, err := testbed.BuildBootImage(context.Background(), "/var/cache/slipway-e2e", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	return img
}

const ipxeROM = "/usr/lib/ipxe/qemu/pxe-virtio.rom"

// serveBootImage runs Slipway with the boot image as the testbed profile.
func serveBootImage(t *testing.T, lan *testbed.LAN, img testbed.BootImage, config string) *appliance {
	t.Helper()
	a := prepareServe(t, lan.Server, config, func(dataDir string) {
		assets := filepath.Join(dataDir, "assets", "testbed")
		if err := os.MkdirAll(assets, 0o755); err != nil {
			t.Fatal(err)
		}
		copyFile(t, img.Kernel, filepath.Join(assets, "vmlinuz"))
		copyFile(t, img.Initrd, filepath.Join(assets, "initrd.gz"))
	})
	waitReady(t, a)
	return a
}

// bootQEMU powers on a virtual machine with mac on the LAN and waits for the
// booted system's marker on its serial console; the machine must then be
// ready, having fetched its cloud-init, and the system must power off.
func bootQEMU(t *testing.T, lan *testbed.LAN, a *appliance, mac string, fw firmware) {
	t.Helper()
	vm := runQEMU(t, lan, a, mac, fw, testbed.Marker, "-boot", "n")
	t.Logf("power-on → kernel %.1fs, → booted system fetched cloud-init and reported done %.1fs (QEMU TCG)", vm.kernelAt.Seconds(), vm.markerAt.Seconds())
	t.Logf("serial: %s", strings.SplitN(vm.serial[strings.Index(vm.serial, testbed.Marker):], "\n", 2)[0])
	if !vm.poweredOff {
		t.Error("the booted system did not power off")
	}
	// The real firmware's boot drove the lifecycle all the way.
	out := machineJSON(t, a, mac)
	if !strings.Contains(out, `"managed_host_state":{"state":"ready"}`) || !strings.Contains(out, "cloud-init user-data served") {
		t.Errorf("machine of %s after its boot:\n%s", mac, out)
	}
}

// machineJSON is GET /api/v1/machines/{id} of the machine mac made.
func machineJSON(t *testing.T, a *appliance, mac string) string {
	t.Helper()
	id := "mac-" + strings.ReplaceAll(mac, ":", "")
	out, err := a.host.Run(context.Background(), "curl", "-fsS", "-u", e2eUser+":"+e2ePassword, lanURL+"/api/v1/machines/"+id)
	if err != nil {
		t.Fatalf("machine %s: %v\n%s", id, err, out)
	}
	return out
}

// vmRun is what a virtual machine's run showed: its serial console, when
// the kernel and the marker appeared there (0: never), and whether it
// powered off by itself within 30 s of the marker.
type vmRun struct {
	serial             string
	kernelAt, markerAt time.Duration
	poweredOff         bool
}

// runQEMU powers on a virtual machine with mac on the LAN (extra adds
// QEMU arguments: boot order, disks) and waits for marker on its serial
// console. It leaves no QEMU running.
func runQEMU(t *testing.T, lan *testbed.LAN, a *appliance, mac string, fw firmware, marker string, extra ...string) vmRun {
	t.Helper()
	ctx := context.Background()
	a.vms++
	tap, err := lan.AddTap(ctx, fmt.Sprintf("tap%d", a.vms))
	if err != nil {
		t.Fatal(err)
	}
	serial := filepath.Join(t.TempDir(), "serial.log")
	qctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	fwArgs, binary := fw(t, mac), "qemu-system-x86_64"
	if len(fwArgs) > 0 && strings.HasPrefix(fwArgs[0], "qemu-system-") {
		binary, fwArgs = fwArgs[0], fwArgs[1:]
	}
	args := append([]string{"-m", "512", "-smp", "1",
		"-display", "none", "-monitor", "none", "-no-reboot", "-serial", "file:" + serial,
		"-netdev", "tap,id=n0,ifname=" + tap.Iface + ",script=no,downscript=no"}, fwArgs...)
	if !slices.Contains(args, "-machine") {
		args = append(args, "-machine", "pc,accel=tcg")
	}
	qemu := tap.Command(qctx, binary, append(args, extra...)...)
	start := time.Now()
	if err := qemu.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- qemu.Wait() }()
	var vm vmRun
	seen := func() bool {
		log, _ := os.ReadFile(serial)
		vm.serial = string(log)
		if vm.kernelAt == 0 && strings.Contains(vm.serial, "Linux version") {
			vm.kernelAt = time.Since(start)
		}
		if strings.Contains(vm.serial, marker) {
			vm.markerAt = time.Since(start)
			return true
		}
		return false
	}
	for !seen() {
		select {
		case err := <-exited:
			if seen() { // it wrote the marker just before it stopped
				vm.poweredOff = true
				return vm
			}
			t.Fatalf("QEMU stopped (%v) before %q; serial:\n%s\nslipway:\n%s", err, marker, vm.serial, a.logs())
		case <-time.After(500 * time.Millisecond):
		}
	}
	select {
	case <-exited:
		vm.poweredOff = true
	case <-time.After(30 * time.Second):
		qemu.Process.Kill()
		<-exited
	}
	return vm
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
