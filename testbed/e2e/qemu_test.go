//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway/testbed"
)

const qemuConfig = lanBase + `
log: {level: debug}
dhcp:
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
	bootfiles := "/var/cache/slipway-e2e/bootfiles"
	if _, err := os.Stat(filepath.Join(bootfiles, "ipxe.efi")); err != nil {
		if out, err := exec.Command("bash", "../../netboot/bootfiles.sh", bootfiles).CombinedOutput(); err != nil {
			t.Fatalf("bootfiles.sh: %v\n%s", err, out)
		}
	}
	lan := newLAN(t, "10.88.0.1/24")
	a := serveBootImage(t, lan, img, qemuConfig)
	copyFile(t, filepath.Join(bootfiles, "ipxe.efi"), filepath.Join(a.tftpRoot, "ipxe.efi"))
	bootQEMU(t, lan, a, "52:54:00:e2:e0:03", uefiFirmware)
	if !strings.Contains(a.logs(), `msg="file sent" part=tftp file=ipxe.efi`) {
		t.Errorf("the firmware did not load ipxe.efi over TFTP:\n%s", a.logs())
	}
}

const ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"

// firmware adds QEMU's firmware and NIC arguments for one kind of machine.
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

// TestQEMUNetbootsThroughProxyDHCP: dnsmasq on another host of the LAN
// gives the addresses; Slipway in proxy mode gives only the boot answer.
func TestQEMUNetbootsThroughProxyDHCP(t *testing.T) {
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
	bootQEMU(t, lan, a, "52:54:00:e2:e0:02", biosIPXE)
	leases, _ := os.ReadFile(filepath.Join(dir, "leases"))
	if !strings.Contains(string(leases), "52:54:00:e2:e0:02") {
		t.Errorf("the address did not come from dnsmasq; its leases: %s", leases)
	}
	if strings.Contains(a.logs(), "lease granted") {
		t.Errorf("Slipway granted a lease in proxy mode")
	}
}

func bootImage(t *testing.T) testbed.BootImage {
	t.Helper()
	requireCommands(t, map[string]string{"qemu-system-x86_64": "qemu-system-x86", "apt-get": "apt", "dpkg-deb": "dpkg"})
	if _, err := os.Stat(ipxeROM); err != nil {
		missingPeer(t, "%s is missing: install Debian's ipxe-qemu", ipxeROM)
	}
	img, err := testbed.BuildBootImage(context.Background(), "/var/cache/slipway-e2e")
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
	qctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	args := append([]string{"-machine", "pc,accel=tcg", "-m", "512", "-smp", "1",
		"-display", "none", "-monitor", "none", "-no-reboot", "-serial", "file:" + serial,
		"-netdev", "tap,id=n0,ifname=" + tap.Iface + ",script=no,downscript=no"}, fw(t, mac)...)
	qemu := tap.Command(qctx, "qemu-system-x86_64", append(args, extra...)...)
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
