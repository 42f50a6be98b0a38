//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipway/slipway/appliance/bmc"
	"github.com/slipway/slipway/appliance/domain"
	"github.com/slipway/slipway/testbed/testkit"
)

// TestBenchBMCSweepAgainstSushy sweeps 2,000 emulated BMCs (50 ms added to
// every answer, in a process of their own) with Slipway's poller and with
// sushy, OpenStack Ironic's Redfish library, at the same concurrency, both
// collecting the same inventory. Two sweeps each: the first logs in, the
// second reuses the sessions (and Slipway writes nothing: nothing changed).
// It reports wall time and CPU per sweep, and their ratios.
//
// SLIPWAY_BENCH=1 only (make bench-bmc); SLIPWAY_BENCH_BMCS sets the count.
func TestBenchBMCSweepAgainstSushy(t *testing.T) {
	benchOnly(t, "bench-bmc")
	if err := exec.Command(debianPython, "-c", "import sushy").Run(); err != nil {
		missingPeer(t, "the peer is missing: apt-get install python3-sushy (make bench-bmc installs it)")
	}
	n, workers, latency := envInt("SLIPWAY_BENCH_BMCS", 2000), 50, 50*time.Millisecond
	farm := startEmulatedBMCs(t, n, latency)

	slipway := sweepWithSlipway(t, farm, workers)
	sushy := sweepWithSushy(t, farm, workers)
	t.Logf("%d BMCs, %s latency each, %d polls in flight", n, latency, workers)
	t.Logf("%-22s %10s %10s %12s %12s %14s %14s", "", "sweep 1", "sweep 2", "CPU sweep 1", "CPU sweep 2", "requests 1", "requests 2")
	for _, r := range []struct {
		name string
		s    sweeps
	}{{"slipway (gofish)", slipway}, {"sushy (python3-sushy)", sushy}} {
		t.Logf("%-22s %9.2fs %9.2fs %11.2fs %11.2fs %14d %14d", r.name, r.s.Sweep1, r.s.Sweep2, r.s.CPU1, r.s.CPU2, r.s.Requests1, r.s.Requests2)
	}
	t.Logf("slipway/sushy time: sweep 1 %.2f, sweep 2 %.2f; CPU: sweep 1 %.2f, sweep 2 %.2f; requests: sweep 1 %.2f, sweep 2 %.2f",
		slipway.Sweep1/sushy.Sweep1, slipway.Sweep2/sushy.Sweep2, slipway.CPU1/sushy.CPU1, slipway.CPU2/sushy.CPU2,
		float64(slipway.Requests1)/float64(sushy.Requests1), float64(slipway.Requests2)/float64(sushy.Requests2))
	if sushy.Incomplete > 0 {
		t.Errorf("sushy collected %d incomplete inventories", sushy.Incomplete)
	}
}

type sweeps struct {
	Sweep1     float64 `json:"sweep1_s"`
	Sweep2     float64 `json:"sweep2_s"`
	CPU1       float64 `json:"sweep1_cpu_s"`
	CPU2       float64 `json:"sweep2_cpu_s"`
	Incomplete int     `json:"incomplete"`
	// Requests the BMCs were sent in each sweep, as the emulator counts them.
	Requests1, Requests2 int64
}

// bmcFarm is `slipway emulate-bmcs` running: its BMCs' URLs, and a line to
// ask it how many requests they have been sent.
type bmcFarm struct {
	urls  []string
	stdin io.Writer
	out   *bufio.Scanner
}

// requests is how many requests the farm's BMCs have been sent so far.
func (f *bmcFarm) requests(t *testing.T) int64 {
	t.Helper()
	if _, err := io.WriteString(f.stdin, "requests\n"); err != nil {
		t.Fatal(err)
	}
	var n int64
	if !f.out.Scan() {
		t.Fatalf("emulate-bmcs did not answer: %v", f.out.Err())
	}
	if _, err := fmt.Sscanf(f.out.Text(), "requests %d", &n); err != nil {
		t.Fatalf("emulate-bmcs answered %q", f.out.Text())
	}
	return n
}

// startEmulatedBMCs runs `slipway emulate-bmcs`.
func startEmulatedBMCs(t *testing.T, n int, latency time.Duration) *bmcFarm {
	t.Helper()
	f := &bmcFarm{}
	f.out, f.stdin = emulateBMCs(t, exec.Command(slipwayBinary, "emulate-bmcs", "--count", strconv.Itoa(n), "--latency", latency.String()))
	for f.out.Scan() && f.out.Text() != "ready" {
		f.urls = append(f.urls, f.out.Text())
	}
	if len(f.urls) != n {
		t.Fatalf("%d emulated BMCs started, want %d", len(f.urls), n)
	}
	return f
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// emulateBMCs starts an `emulate-bmcs` command, which serves until its
// stdin closes (when the test ends), and returns what it prints: the BMCs'
// URLs, then "ready"; and its stdin.
func emulateBMCs(t *testing.T, cmd *exec.Cmd) (*bufio.Scanner, io.Writer) {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	return bufio.NewScanner(stdout), stdin
}

// sweepWithSlipway registers the BMCs with a real poller (real SQLite,
// the inventory adopting each host) and times two sweeps.
func sweepWithSlipway(t *testing.T, farm *bmcFarm, workers int) sweeps {
	t.Helper()
	urls := farm.urls
	ctx := context.Background()
	dir := t.TempDir()
	db, commit := testkit.OpenStore(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	inv, err := domain.NewInventory(ctx, domain.InventoryConfig{DB: db, Commit: commit, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := bmc.OpenSealer(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := bmc.NewManager(ctx, bmc.Config{DB: db, Commit: commit, Sealer: sealer, Machines: inv, Log: quiet,
		Poll: bmc.PollConfig{Interval: time.Hour, Timeout: 30 * time.Second, Workers: workers}})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range urls {
		if _, err := m.Register(ctx, bmc.Registration{Endpoint: u, Username: "admin", Password: "admin", Source: "api"}); err != nil {
			t.Fatal(err)
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var s sweeps
	requests := farm.requests(t)
	start, cpu := time.Now(), cpuSeconds()
	go func() { m.Run(runCtx); close(done) }()
	waitPolls(t, m, int64(len(urls)))
	s.Sweep1, s.CPU1 = time.Since(start).Seconds(), cpuSeconds()-cpu
	s.Requests1, requests = farm.requests(t)-requests, farm.requests(t)
	for _, st := range m.Statuses() {
		if !st.Reachable || st.Inventory.Serial == "" || len(st.Inventory.Firmware) < 3 || st.MachineID == "" {
			t.Fatalf("after the first sweep: %+v", st)
		}
	}
	written := m.Stats().Written
	start, cpu = time.Now(), cpuSeconds()
	m.PollAll()
	waitPolls(t, m, int64(2*len(urls)))
	s.Sweep2, s.CPU2 = time.Since(start).Seconds(), cpuSeconds()-cpu
	s.Requests2 = farm.requests(t) - requests
	if st := m.Stats(); st.Written != written || st.Failed != 0 {
		t.Errorf("second sweep of unchanged BMCs: %+v (wrote %d)", st, st.Written-written)
	}
	cancel()
	<-done
	return s
}

func waitPolls(t *testing.T, m *bmc.Manager, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for m.Stats().Polls < want {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d polls after 10 minutes", m.Stats().Polls, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sweepWithSushy runs the sushy script, which says when its first sweep
// is done and waits for a line before the second, so that the requests of
// each are counted apart.
func sweepWithSushy(t *testing.T, farm *bmcFarm, workers int) sweeps {
	t.Helper()
	list := filepath.Join(t.TempDir(), "urls")
	if err := os.WriteFile(list, []byte(strings.Join(farm.urls, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(debianPython, "testdata/sushy_sweep.py", list, strconv.Itoa(workers), "admin", "admin")
	out, stdin := emulateBMCs(t, cmd)
	before := farm.requests(t)
	if !out.Scan() || out.Text() != "sweep 1 done" {
		t.Fatalf("sushy sweep: %q %v", out.Text(), out.Err())
	}
	middle := farm.requests(t)
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	if !out.Scan() {
		t.Fatalf("sushy sweep ended without its figures: %v", out.Err())
	}
	var s sweeps
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("sushy sweep printed %s", out.Text())
	}
	s.Requests1, s.Requests2 = middle-before, farm.requests(t)-middle
	return s
}
