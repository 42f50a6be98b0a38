package testbed

import (
	"os"
	"testing"
	"time"
)

func TestParseIPXE(t *testing.T) {
	tests := []struct {
		script, kernel, initrd string
	}{
		{"#!ipxe\nkernel http://a/k quiet\ninitrd http://a/i\nboot\n", "http://a/k", "http://a/i"},
		{"#!ipxe\nkernel http://a/k initrd=initrd x\ninitrd --name initrd http://a/i\nboot\n", "http://a/k", "http://a/i"},
		{"#!ipxe\necho no profile\nexit 1\n", "", ""},
	}
	for _, tt := range tests {
		k, i := ParseIPXE(tt.script)
		if k != tt.kernel || i != tt.initrd {
			t.Errorf("ParseIPXE(%q) = %q, %q; want %q, %q", tt.script, k, i, tt.kernel, tt.initrd)
		}
	}
}

func TestProcessFigures(t *testing.T) {
	pid := os.Getpid()
	start, err := CPUTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(200 * time.Millisecond); time.Now().Before(deadline); {
	}
	used, err := CPUTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	if used <= start {
		t.Errorf("CPU time went from %v to %v after 200 ms of spinning", start, used)
	}
	kib, err := ResidentKiB(pid)
	if err != nil || kib < 1024 {
		t.Errorf("resident memory %d KiB, %v", kib, err)
	}
	before, err := WriteCalls(pid)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := os.CreateTemp(t.TempDir(), "w"); err == nil {
		f.Write([]byte("x"))
		f.Close()
	}
	if after, err := WriteCalls(pid); err != nil || after <= before {
		t.Errorf("write calls went from %d to %d (%v) after a write", before, after, err)
	}
	if _, err := CPUTime(1 << 30); err == nil {
		t.Error("CPU time of a process that does not exist")
	}
	if _, err := WriteCalls(1 << 30); err == nil {
		t.Error("write calls of a process that does not exist")
	}
}
