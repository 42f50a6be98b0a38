//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A box short of file descriptors answers a file it cannot open now with
// 503 and Retry-After (never 404, the end of the boot). That real iPXE,
// QEMU's ROM, waits and asks again is what makes the answer worth giving:
// here, once the kernel has been answered, Slipway's open files limit is
// lowered so that nothing more can be opened (iPXE keeps its connection),
// so the initrd cannot be; the limit is raised again once the 503 has gone
// out, and the machine must then boot all the way to ready.
func TestQEMUIPXEWaitsOutATryAgain(t *testing.T) {
	img := bootImage(t)
	lan := newLAN(t, "10.88.0.1/24")
	a := serveBootImage(t, lan, img, qemuConfig)
	pid := a.cmd.Process.Pid
	var limit unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &limit); err != nil {
		t.Fatal(err)
	}
	shortage := make(chan error, 1)
	go func() { shortage <- shortOfDescriptorsForTheInitrd(a, pid, limit) }()
	bootQEMU(t, lan, a, "52:54:00:e2:e0:50", biosIPXE)
	if err := <-shortage; err != nil {
		t.Fatalf("%v:\n%s", err, a.logs())
	}
	var initrd []string
	for _, line := range strings.Split(a.logs(), "\n") {
		if strings.Contains(line, "path=/assets/testbed/initrd.gz") {
			initrd = append(initrd, line)
		}
	}
	t.Logf("the initrd's answers:\n%s", strings.Join(initrd, "\n"))
	if len(initrd) < 3 || !strings.Contains(initrd[0], "503") || !strings.Contains(initrd[len(initrd)-1], "status=200") {
		t.Errorf("the initrd was not answered 503 (said so) and then 200:\n%s", a.logs())
	}
}

// shortOfDescriptorsForTheInitrd waits for the kernel's answer, lowers
// the open files limit of process pid so that it can open nothing more,
// waits for a 503, and puts limit back (whatever happens, within four
// minutes).
func shortOfDescriptorsForTheInitrd(a *appliance, pid int, limit unix.Rlimit) error {
	defer unix.Prlimit(pid, unix.RLIMIT_NOFILE, &limit, nil)
	deadline := time.Now().Add(4 * time.Minute)
	await := func(what string) error {
		for !strings.Contains(a.logs(), what) {
			if time.Now().After(deadline) {
				return fmt.Errorf("no %q in Slipway's log", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return nil
	}
	if err := await("path=/assets/testbed/vmlinuz status=200"); err != nil {
		return err
	}
	tight, err := lowestFreeDescriptor(pid)
	if err != nil {
		return err
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: tight, Max: limit.Max}, nil); err != nil {
		return fmt.Errorf("lower slipway's open files limit: %w", err)
	}
	if err := await("answered with 503"); err != nil {
		return fmt.Errorf("with the open files limit at %d: %w", tight, err)
	}
	time.Sleep(200 * time.Millisecond) // inside the second iPXE waits
	return nil
}

// lowestFreeDescriptor is the lowest descriptor number process pid does
// not hold: the kernel gives every new descriptor the lowest free number,
// so with the limit there, nothing more can be opened even when a
// descriptor above it is closed meanwhile.
func lowestFreeDescriptor(pid int) (uint64, error) {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	held := map[uint64]bool{}
	for _, e := range entries {
		if n, err := strconv.ParseUint(e.Name(), 10, 32); err == nil {
			held[n] = true
		}
	}
	var free uint64
	for held[free] {
		free++
	}
	return free, nil
}
