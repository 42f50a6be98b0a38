//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed"
)

// TestBenchFootprint measures what Slipway costs at rest, with an empty
// store and with 10,000 machines in it (each with a MAC and a bound lease):
// the time from start to ready (the --ready-file written: every door
// listening), over five restarts of a box that has run before, and its
// resident memory once ready and idle for ten seconds. SLIPWAY_BENCH=1 only
// (make bench-footprint).
func TestBenchFootprint(t *testing.T) {
	benchOnly(t, "bench-footprint")
	var table strings.Builder
	fmt.Fprintf(&table, "| machines in the store | start → ready, median of 5 (min–max) | resident memory, idle after 10 s |\n|---|---|---|\n")
	for _, n := range []int{0, 10000} {
		t.Run(fmt.Sprintf("%d machines", n), func(t *testing.T) {
			lan := newLAN(t, "10.88.0.1/16")
			dir := t.TempDir()
			dataDir := filepath.Join(dir, "data")
			if err := fillMachines(filepath.Join(dataDir, "slipway.db"), n); err != nil {
				t.Fatal(err)
			}
			config := filepath.Join(dir, "slipway.yaml")
			os.MkdirAll(filepath.Join(dir, "tftp"), 0o755)
			if err := os.WriteFile(config, []byte(fmt.Sprintf(`
lan: {interface: lan0, address: 10.88.0.1/16}
data_dir: %s
http: {port: 8080}
tftp: {root: %s}
dhcp:
  range: {start: 10.88.1.1, end: 10.88.250.254}
users:
%s`, dataDir, filepath.Join(dir, "tftp"), e2eUserYAML)), 0o600); err != nil {
				t.Fatal(err)
			}
			// The first start makes the box's keys and certificate: what
			// is measured is a box restarting.
			startAndStop(t, lan.Server, config, dir, false)
			var starts []time.Duration
			var rss int
			for i := range 5 {
				took, kib := startAndStop(t, lan.Server, config, dir, i == 0)
				starts = append(starts, took)
				if i == 0 {
					rss = kib
				}
			}
			slices.Sort(starts)
			fmt.Fprintf(&table, "| %d | %.0f ms (%.0f–%.0f) | %.1f MiB |\n", n, ms(starts[2]), ms(starts[0]), ms(starts[4]), float64(rss)/1024)
		})
	}
	t.Logf("\n%s", table.String())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// startAndStop runs `slipway serve` until its ready file appears, and
// returns how long that took and, if idle is set, its resident memory
// after ten seconds of rest (KiB).
func startAndStop(t *testing.T, host testbed.Host, config, dir string, idle bool) (time.Duration, int) {
	t.Helper()
	ready := filepath.Join(dir, "ready")
	os.Remove(ready)
	cmd := host.Command(context.Background(), slipwayBinary, "serve", "--config", config, "--ready-file", ready)
	cmd.Env = os.Environ() // SLIPWAY_MEMPROFILE, for a developer asking where the memory goes
	var log strings.Builder
	cmd.Stderr = &log
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("not ready after 30 s:\n%s", log.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	took := time.Since(start)
	if !idle {
		return took, 0
	}
	time.Sleep(10 * time.Second)
	kib, err := testbed.ResidentKiB(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// What of it is Go's heap (the rest: the binary's pages, SQLite's
	// caches, stacks), for whoever goes after the figure.
	if out, err := host.Run(context.Background(), "curl", "-fsS", "-u", e2eUser+":"+e2ePassword, lanURL+"/metrics"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			for _, name := range []string{"go_memstats_heap_alloc_bytes ", "go_memstats_heap_sys_bytes ", "go_memstats_heap_released_bytes ", "go_goroutines "} {
				if strings.HasPrefix(line, name) {
					t.Log(line)
				}
			}
		}
	}
	if os.Getenv("SLIPWAY_MEMPROFILE") != "" {
		time.Sleep(6 * time.Second) // the profile is written 15 s after start
	}
	return took, kib
}

// fillMachines writes n machines to a new store at path, each with one MAC
// and a bound lease, as a site of n machines that has booted once.
func fillMachines(path string, n int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	s, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	first := netip.MustParseAddr("10.88.1.1")
	return s.Update(context.Background(), func(tx *store.Tx) error {
		ip := first
		for i := range n {
			mac := fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8, i&0xff)
			m := store.Machine{ID: fmt.Sprintf("r%03d-t%02d", i/40, i%40), MACs: []string{mac}, Hostname: fmt.Sprintf("node-%05d", i),
				RackID: fmt.Sprintf("r%03d", i/40), Tray: i % 40, Source: "config", State: "created", StateJSON: `{"state":"created"}`}
			if _, err := tx.CreateMachine(m, "bench"); err != nil {
				return err
			}
			if err := tx.PutLease(store.Lease{IP: ip.String(), MAC: mac, State: "bound", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				return err
			}
			ip = ip.Next()
		}
		return nil
	})
}
