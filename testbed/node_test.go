package testbed

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/slipway/slipway/testbed/testkit"
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

// A process tree's CPU counts its grandchildren's, and not the process's
// own siblings.
func TestTreeCPUTime(t *testing.T) {
	// A shell that spins, then waits in a child of its own (sleep).
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; sleep 30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var spun time.Duration
	testkit.WaitFor(t, "the shell spun and waits on its sleep", func() bool {
		spun, _ = CPUTime(cmd.Process.Pid)
		return spun > 0 && hasChild(cmd.Process.Pid)
	})
	tree, err := TreeCPUTime(cmd.Process.Pid)
	if err != nil || tree < spun {
		t.Errorf("the shell's tree used %v (%v), the shell alone %v", tree, err, spun)
	}
	own, _ := CPUTime(os.Getpid())
	if withShell, err := TreeCPUTime(os.Getpid()); err != nil || withShell < own+spun {
		t.Errorf("this test's tree used %v (%v): less than itself (%v) and the shell it started (%v)", withShell, err, own, spun)
	}
	if _, err := TreeCPUTime(1 << 30); err == nil {
		t.Error("CPU time of a tree whose root does not exist")
	}
}

// hasChild says whether some process's parent is pid.
func hasChild(pid int) bool {
	all, _ := processes()
	for _, p := range all {
		if p.parent == pid {
			return true
		}
	}
	return false
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
