//go:build e2e

package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway/slipway/testbed"
)

// The appliance image as an operator meets it: written to a USB stick,
// booted on a box with two NICs. Its first boot shows on the screen why it
// cannot serve (two wired NICs, "auto" cannot choose); a fix typed in its
// shell and saved to the stick gets it serving; a machine netboots from it
// to its onboarding heartbeat; the service killed is started again; a
// mistake in its configuration is shown on its screen; a hard
// reset, the image written again over the stick and a boot with the other
// firmware (BIOS after UEFI) keep every machine, lease and event; the
// power button stops it cleanly.
func TestApplianceImageServesAndKeepsItsState(t *testing.T) {
	img := applianceImage(t, "amd64")
	boot := bootImage(t)
	lan := newLAN(t, "10.88.0.2/24")
	const uplinkMAC, lanMAC, nodeMAC = "52:54:00:e2:17:00", "52:54:00:e2:17:01", "52:54:00:e2:17:10"
	stick := writeStick(t, img, map[string]string{
		"slipway.yaml":             textFile(t, imageConfig("auto")),
		"assets/testbed/vmlinuz":   boot.Kernel,
		"assets/testbed/initrd.gz": boot.Initrd,
	})

	vm := startApplianceVM(t, lan, stick, "uefi", uplinkMAC, lanMAC)
	start := time.Now()
	vm.waitSerial(t, "Service       NOT RUNNING", 4*time.Minute)
	vm.waitSerial(t, `"auto" found 2 wired NICs`, time.Minute)
	for _, mac := range []string{uplinkMAC, lanMAC} {
		vm.waitSerial(t, mac, time.Second)
	}
	t.Logf("UEFI power-on → the screen says why it does not serve: %.0fs", time.Since(start).Seconds())
	// The fix, as an operator types it at the box's serial console.
	vm.typeLine(t, "")
	vm.typeLine(t, "sed -i 's/interface: auto/interface: "+lanMAC+"/' /etc/slipway/slipway.yaml && save-config && echo FIXED-$((40+2))")
	vm.waitSerial(t, "FIXED-42", time.Minute)
	fingerprint := vm.waitServing(t, lan, lanURL+"/", 3*time.Minute)
	t.Logf("fix typed → serving: %.0fs; certificate %s", time.Since(start).Seconds(), fingerprint)

	a := &appliance{host: lan.Server, url: lanURL}
	bootQEMU(t, lan, a, nodeMAC, uefiFirmware) // ipxe.efi from the image's TFTP root
	before := machineJSON(t, a, nodeMAC)

	// The service dies: it is started again.
	vm.typeLine(t, "killall -9 slipway")
	vm.waitSerial(t, "Slipway stopped (status", time.Minute)
	vm.waitServing(t, lan, lanURL+"/", 2*time.Minute)

	// A mistake in the file: the screen shows the problem, its line and
	// fix; the file put right, it serves again.
	vm.typeLine(t, "cp /etc/slipway/slipway.yaml /tmp/good && echo 'dat_dir: /x' >>/etc/slipway/slipway.yaml && killall slipway")
	vm.waitSerial(t, "slipway.yaml is not valid, so Slipway is not running", time.Minute)
	vm.waitSerial(t, `unknown field; did you mean "data_dir"?`, time.Second)
	vm.typeLine(t, "cp /tmp/good /etc/slipway/slipway.yaml")
	vm.waitServing(t, lan, lanURL+"/", 2*time.Minute)

	// A power cut: the state partition comes back with all of it.
	vm.monitor(t, "system_reset")
	start = time.Now()
	vm.waitGone(t, lan)
	if got := vm.waitServing(t, lan, lanURL+"/", 4*time.Minute); got != fingerprint {
		t.Errorf("certificate after the reset %s, before %s: the state was not kept", got, fingerprint)
	}
	t.Logf("hard reset → serving again: %.0fs", time.Since(start).Seconds())
	checkKept(t, a, nodeMAC, before)
	vm.stop(t)

	// An upgrade as docs/image.md says: the image written again over the
	// stick, slipway.yaml put back; then the stick in a BIOS box.
	rewriteStick(t, stick, img, map[string]string{"slipway.yaml": textFile(t, imageConfig(lanMAC))})
	bios := startApplianceVM(t, lan, stick, "bios", uplinkMAC, lanMAC)
	start = time.Now()
	if got := bios.waitServing(t, lan, lanURL+"/", 4*time.Minute); got != fingerprint {
		t.Errorf("certificate after the stick was rewritten, under BIOS %s; before, under UEFI %s", got, fingerprint)
	}
	t.Logf("rewritten stick, BIOS power-on → serving: %.0fs", time.Since(start).Seconds())
	checkKept(t, a, nodeMAC, before)
	bios.waitSerial(t, "State         /dev/sda4", time.Minute)

	// The power button stops it cleanly.
	bios.monitor(t, "system_powerdown")
	select {
	case <-bios.done:
		bios.done <- nil
	case <-time.After(2 * time.Minute):
		t.Fatal("the box did not power off within 2 minutes of its power button")
	}
	bios.waitSerial(t, "Slipway stopped, its state written and unmounted", time.Second)
}

// The ARM64 image boots in QEMU's virt machine with AAVMF and serves on
// its only NIC with the configuration it ships with, but for two things an
// operator may do: the state on a disk of the box (empty, so formatted),
// and a slipway binary put on the stick (started in place of the image's).
func TestApplianceImageARM64Serves(t *testing.T) {
	img := applianceImage(t, "arm64")
	if _, err := os.Stat(aavmfCode); err != nil {
		missingPeer(t, "%s is missing: install Debian's qemu-efi-aarch64", aavmfCode)
	}
	lan := newLAN(t, "10.88.0.2/24")
	shipped, err := os.ReadFile("../../image/slipway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	stick := writeStick(t, img, map[string]string{
		"slipway.yaml": textFile(t, strings.Replace(string(shipped), `state_device: ""`, "state_device: /dev/vda", 1)),
		"slipway":      "../../dist/slipway-linux-arm64", // make image built it
	})
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 256<<20); err != nil {
		t.Fatal(err)
	}
	vm := startApplianceVM(t, lan, stick, "arm64", "", "52:54:00:e2:17:21", "-drive", "if=virtio,format=raw,file="+disk)
	start := time.Now()
	fingerprint := vm.waitServing(t, lan, "http://10.88.0.1/", 6*time.Minute)
	t.Logf("ARM64 power-on → serving: %.0fs (QEMU TCG); certificate %s", time.Since(start).Seconds(), fingerprint)
	vm.waitSerial(t, "LAN           eth0 52:54:00:e2:17:21 10.88.0.1/24, link up", time.Minute)
	vm.waitSerial(t, "First login   admin / ", time.Minute)
	vm.waitSerial(t, "State         /dev/vda", time.Minute)
	vm.waitSerial(t, "binary: slipway ", time.Minute)
}

// The same commit gives the same image, byte for byte.
func TestApplianceImageIsReproducible(t *testing.T) {
	first := applianceImage(t, "amd64")
	dir := t.TempDir()
	buildImages(t, dir, "amd64")
	second := filepath.Join(dir, filepath.Base(first))
	a, err := os.ReadFile(first + ".sha256")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(second + ".sha256")
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Errorf("two builds of one commit differ:\n%s%s", a, b)
	}
	manifest, err := os.ReadFile(strings.TrimSuffix(first, ".img") + ".manifest")
	if err != nil || !regexp.MustCompile(`(?m)^linux-image-\S+ \S+ amd64$`).Match(manifest) || !strings.Contains(string(manifest), "\nipxe ") {
		t.Errorf("manifest (%v):\n%s", err, manifest)
	}
	t.Logf("%s", a)
}

// imageConfig is the stick's slipway.yaml for the e2e LAN: the testbed
// profile, the e2e user, HTTP on lanURL's port.
func imageConfig(iface string) string {
	return `lan:
  interface: ` + iface + `
  address: 10.88.0.1/24
  configure: true
http: {port: 8080}
tftp: {root: /usr/share/slipway/tftp}
` + testbedProfile + `users:
` + e2eUserYAML
}

// checkKept: the machine, its lease and its history are as they were.
func checkKept(t *testing.T, a *appliance, mac, before string) {
	t.Helper()
	after := machineJSON(t, a, mac)
	for _, want := range []string{`"managed_host_state":{"state":"ready"}`, "cloud-init user-data served"} {
		if !strings.Contains(after, want) {
			t.Errorf("after a restart the machine lacks %q:\n%s\nbefore:\n%s", want, after, before)
		}
	}
	leases, err := a.host.Run(context.Background(), "curl", "-fsS", "-u", e2eUser+":"+e2ePassword, lanURL+"/api/v1/leases")
	if err != nil || !strings.Contains(leases, mac) {
		t.Errorf("after a restart no lease of %s: %v\n%s", mac, err, leases)
	}
}

var images struct {
	once sync.Once
	dir  string
	err  error
	log  string
}

// applianceImage is the path of the arch image `make image` built in this
// run (both architectures are built once, by the first test that asks).
func applianceImage(t *testing.T, arch string) string {
	t.Helper()
	requireCommands(t, map[string]string{"xorriso": "xorriso", "mcopy": "mtools", "mkfs.fat": "dosfstools", "cpio": "cpio",
		"depmod": "kmod", "zstd": "zstd", "grub-mkimage": "grub-common", "qemu-system-x86_64": "qemu-system-x86", "qemu-system-aarch64": "qemu-system-arm"})
	images.once.Do(func() {
		images.dir = "/var/cache/slipway-e2e/image"
		images.log, images.err = makeImage(images.dir, "amd64 arm64")
	})
	if images.err != nil {
		t.Fatalf("make image: %v\n%s", images.err, images.log)
	}
	found, _ := filepath.Glob(filepath.Join(images.dir, "slipway-*-"+arch+".img"))
	if len(found) != 1 { // makeImage empties the folder first
		t.Fatalf("make image left %d %s images in %s:\n%s", len(found), arch, images.dir, images.log)
	}
	return found[0]
}

func buildImages(t *testing.T, dir, archs string) {
	t.Helper()
	if out, err := makeImage(dir, archs); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
}

// makeImage runs `make image` for archs into dir, emptied first.
func makeImage(dir, archs string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	old, _ := filepath.Glob(filepath.Join(dir, "slipway-*"))
	for _, f := range old {
		os.Remove(f)
	}
	out, err := exec.Command("make", "-C", "../..", "--no-print-directory", "image", "IMAGE_DIR="+dir, "IMAGE_ARCHS="+archs).CombinedOutput()
	return string(out), err
}

// writeStick copies img to a 2.5 GiB "stick" (room for the state
// partition) and puts files on its SLIPWAY partition.
func writeStick(t *testing.T, img string, files map[string]string) string {
	t.Helper()
	stick := filepath.Join(t.TempDir(), "stick.img")
	rewriteStick(t, stick, img, files)
	if err := os.Truncate(stick, 5<<29); err != nil {
		t.Fatal(err)
	}
	return stick
}

// rewriteStick writes img over the start of stick, as dd does (what lies
// past the image, the state partition, stays), and copies files (name on
// the partition → file here) onto its SLIPWAY partition, as an operator's
// laptop would.
func rewriteStick(t *testing.T, stick, img string, files map[string]string) {
	t.Helper()
	in, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(stick, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	target := fmt.Sprintf("%s@@%d", stick, fatOffset(t, stick))
	made := map[string]bool{}
	for name, src := range files {
		parts := strings.Split(filepath.Dir(name), "/")
		for i := range parts { // parents first
			if dir := strings.Join(parts[:i+1], "/"); dir != "." && !made[dir] {
				made[dir] = true
				mtools(t, "mmd", "-i", target, "::"+dir)
			}
		}
		mtools(t, "mcopy", "-o", "-i", target, src, "::"+name)
	}
}

// textFile is a temporary file holding content.
func textFile(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func mtools(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
}

// fatOffset is where partition 3 (the FAT partition SLIPWAY) starts, in
// bytes, from the image's MBR.
func fatOffset(t *testing.T, img string) int64 {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mbr := make([]byte, 512)
	if _, err := io.ReadFull(f, mbr); err != nil {
		t.Fatal(err)
	}
	entry := mbr[446+2*16 : 446+3*16]
	if entry[4] != 0x0c {
		t.Fatalf("partition 3 has type %#x, want FAT32 LBA (0x0c)", entry[4])
	}
	return int64(binary.LittleEndian.Uint32(entry[8:12])) * 512
}

// applianceVM is the image running in QEMU: its first NIC on QEMU's user
// network (an uplink), its second on the LAN.
type applianceVM struct {
	cmd     *exec.Cmd
	serial  string // the serial console's log
	monSock string // QEMU's monitor
	serSock string // the serial console, to type at
	done    chan error
}

func startApplianceVM(t *testing.T, lan *testbed.LAN, stick, firmware, uplinkMAC, lanMAC string, extra ...string) *applianceVM {
	t.Helper()
	dir := t.TempDir()
	vm := &applianceVM{serial: filepath.Join(dir, "serial.log"), monSock: filepath.Join(dir, "mon.sock"),
		serSock: filepath.Join(dir, "serial.sock"), done: make(chan error, 1)}
	tap, err := lan.AddTap(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	binary := "qemu-system-x86_64"
	args := []string{"-m", "1024", "-smp", "2", "-display", "none",
		"-monitor", "unix:" + vm.monSock + ",server=on,wait=off",
		"-chardev", "socket,id=ser,path=" + vm.serSock + ",server=on,wait=off,logfile=" + vm.serial,
		"-serial", "chardev:ser",
		"-device", "qemu-xhci", "-drive", "if=none,id=stick,format=raw,file=" + stick, "-device", "usb-storage,drive=stick,bootindex=0",
		"-netdev", "tap,id=lan,ifname=" + tap.Iface + ",script=no,downscript=no"}
	if uplinkMAC != "" {
		args = append(args, "-netdev", "user,id=up", "-device", "virtio-net-pci,netdev=up,romfile=,mac="+uplinkMAC)
	}
	args = append(args, "-device", "virtio-net-pci,netdev=lan,romfile=,mac="+lanMAC)
	switch firmware {
	case "uefi":
		vars := filepath.Join(dir, "OVMF_VARS.fd")
		copyFile(t, "/usr/share/OVMF/OVMF_VARS_4M.fd", vars)
		args = append(args, "-machine", "q35,accel=tcg", "-drive", "if=pflash,format=raw,readonly=on,file="+ovmfCode,
			"-drive", "if=pflash,format=raw,file="+vars)
	case "bios":
		args = append(args, "-machine", "q35,accel=tcg")
	case "arm64":
		vars := filepath.Join(dir, "AAVMF_VARS.fd")
		copyFile(t, aavmfVars, vars)
		binary = "qemu-system-aarch64"
		args = append(args, "-machine", "virt,accel=tcg", "-cpu", "cortex-a57", "-drive", "if=pflash,format=raw,readonly=on,file="+aavmfCode,
			"-drive", "if=pflash,format=raw,file="+vars)
	}
	vm.cmd = tap.Command(context.Background(), binary, append(args, extra...)...)
	out := &strings.Builder{}
	vm.cmd.Stdout, vm.cmd.Stderr = out, out
	if err := vm.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { vm.done <- vm.cmd.Wait() }()
	t.Cleanup(func() {
		vm.stop(t)
		if t.Failed() {
			log, _ := os.ReadFile(vm.serial)
			t.Logf("appliance serial console (%s):\n%s\nQEMU: %s", firmware, tail(string(log), 6000), out)
		}
	})
	return vm
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (vm *applianceVM) stop(t *testing.T) {
	if vm.cmd.ProcessState == nil && vm.cmd.Process != nil {
		vm.cmd.Process.Kill()
		<-vm.done
		vm.cmd.ProcessState = &os.ProcessState{}
	}
}

// waitSerial waits for text on the serial console.
func (vm *applianceVM) waitSerial(t *testing.T, text string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		log, _ := os.ReadFile(vm.serial)
		if strings.Contains(string(log), text) {
			return
		}
		select {
		case err := <-vm.done:
			vm.done <- err
			t.Fatalf("QEMU stopped (%v) before %q on the serial console", err, text)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q on the serial console within %s", text, within)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// waitServing waits until the console answers over TLS on the LAN and
// the box's screen says it serves, and returns the certificate's
// fingerprint, checked to be the one the screen shows. plainURL is the
// console's plain HTTP address, which must send a browser to TLS.
func (vm *applianceVM) waitServing(t *testing.T, lan *testbed.LAN, plainURL string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	var out string
	var err error
	for {
		out, err = lan.Server.Run(context.Background(), "curl", "-ksS", "-m", "3", "https://10.88.0.1/api/v1/version")
		if err == nil && strings.Contains(out, "tls_fingerprint") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the console did not answer on https://10.88.0.1 within %s: %v %s", within, err, out)
		}
		time.Sleep(time.Second)
	}
	m := regexp.MustCompile(`"tls_fingerprint":"([0-9A-F:]+)"`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no fingerprint in %s", out)
	}
	vm.waitSerial(t, "Certificate   SHA-256 "+m[1], time.Minute)
	vm.waitSerial(t, "Service       ready", time.Minute)
	vm.waitSerial(t, "Console       https://10.88.0.1:443", time.Second)
	// The console itself, as a browser reaches it: plain HTTP is sent to TLS.
	if page, err := lan.Server.Run(context.Background(), "curl", "-ksSL", "-m", "5", plainURL); err != nil || !strings.Contains(page, "<html") {
		t.Errorf("the console page: %v\n%.300s", err, page)
	}
	return m[1]
}

// waitGone waits until the console stops answering (the box went down).
func (vm *applianceVM) waitGone(t *testing.T, lan *testbed.LAN) {
	t.Helper()
	for i := 0; i < 60; i++ {
		if _, err := lan.Server.Run(context.Background(), "curl", "-ksS", "-m", "1", "https://10.88.0.1/api/v1/version"); err != nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatal("the console still answers 30 s after the reset")
}

// typeLine types a line at the serial console.
func (vm *applianceVM) typeLine(t *testing.T, line string) {
	t.Helper()
	vm.send(t, vm.serSock, line+"\r")
	time.Sleep(2 * time.Second)
}

// monitor sends one command to QEMU's monitor.
func (vm *applianceVM) monitor(t *testing.T, command string) {
	t.Helper()
	vm.send(t, vm.monSock, command+"\n")
	time.Sleep(time.Second)
}

func (vm *applianceVM) send(t *testing.T, sock, text string) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
}
