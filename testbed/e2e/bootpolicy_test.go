//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// localDiskMarker is what the test disk's boot sector prints on COM1.
const localDiskMarker = "SLIPWAY-TEST-LOCAL-DISK"

// localDisk writes a 1 MiB disk whose boot sector prints localDiskMarker
// on the first serial port and then resets the machine (an empty interrupt
// table and int3: a triple fault), which QEMU's -no-reboot turns into an
// exit. Seeing the marker proves the firmware booted the local disk.
func localDisk(t *testing.T) string {
	t.Helper()
	const base = 0x7C00
	code := []byte{
		0x31, 0xC0, // xor ax, ax
		0x8E, 0xD8, // mov ds, ax
		0xFC,             // cld
		0xBE, 0x00, 0x00, // mov si, msg (patched below)
		0xAC,       // loop: lodsb
		0x84, 0xC0, // test al, al
		0x74, 0x06, // jz done
		0xBA, 0xF8, 0x03, // mov dx, 0x3f8
		0xEE,       // out dx, al
		0xEB, 0xF5, // jmp loop
		0x0F, 0x01, 0x1E, 0x00, 0x00, // done: lidt [idt] (patched below)
		0xCC,       // int3: no handler, a triple fault
		0xF4,       // hlt
		0xEB, 0xFE, // jmp $
	}
	idt := len(code)
	code = append(code, 0, 0, 0, 0, 0, 0)
	msg := len(code)
	code = append(code, localDiskMarker+"\r\n\x00"...)
	code[6], code[7] = byte((base+msg)&0xFF), byte((base+msg)>>8)
	code[22], code[23] = byte((base+idt)&0xFF), byte((base+idt)>>8)
	disk := make([]byte, 1<<20)
	copy(disk, code)
	disk[510], disk[511] = 0x55, 0xAA
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, disk, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestQEMUReadyMachineBootsItsDiskUntilProvisioned: a machine installs
// through Slipway and is ready; powered on again with the network first in
// its boot order, it gets an address and no boot file, iPXE gives up, and
// the BIOS boots its disk, with nothing written to its history; once an
// operator provisions it, its next network boot installs again.
func TestQEMUReadyMachineBootsItsDiskUntilProvisioned(t *testing.T) {
	img := bootImage(t)
	lan := newLAN(t, "10.88.0.1/24")
	a := serveBootImage(t, lan, img, qemuConfig)
	const mac = "52:54:00:e2:e0:04"
	bootQEMU(t, lan, a, mac, biosIPXE)
	before := machineJSON(t, a, mac)

	disk := localDisk(t)
	vm := runQEMU(t, lan, a, mac, biosIPXE, localDiskMarker, "-boot", "order=nc",
		"-drive", "file="+disk+",format=raw,if=ide")
	t.Logf("ready machine: power-on → its own disk %.1fs", vm.markerAt.Seconds())
	if vm.kernelAt != 0 {
		t.Fatalf("the ready machine was given a kernel:\n%s", vm.serial)
	}
	if after := machineJSON(t, a, mac); after != before {
		t.Fatalf("the ready machine's record changed by netbooting:\nbefore %s\nafter  %s", before, after)
	}
	if !strings.Contains(a.logs(), "it boots its local disk") {
		t.Errorf("the log does not say why no boot file was given:\n%s", a.logs())
	}

	id := "mac-" + strings.ReplaceAll(mac, ":", "")
	out, err := a.host.Run(t.Context(), "curl", "-fsS", "-u", e2eUser+":"+e2ePassword, "-X", "POST", lanURL+"/api/v1/machines/"+id+"/provision")
	if err != nil || !strings.Contains(out, "waitingfordiscovery") {
		t.Fatalf("provision: %v\n%s", err, out)
	}
	bootQEMU(t, lan, a, mac, biosIPXE)
	if !strings.Contains(machineJSON(t, a, mac), "provisioned without a BMC") {
		t.Errorf("the reinstall is not in the machine's history")
	}
}
