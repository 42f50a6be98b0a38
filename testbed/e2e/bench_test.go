//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipway/slipway/testbed"
)

// dhcpPeer is a DHCP server run for the side-by-side benchmark.
type dhcpPeer struct {
	name  string
	start func(t *testing.T, lan *testbed.LAN, dir string) (stop func())
}

var achievedRate = regexp.MustCompile(`Rate: ([0-9.]+) 4-way exchanges/second`)

// TestBenchDHCPAgainstPeers measures the 4-way exchange rate perfdhcp gets
// from Slipway, Kea and dnsmasq, each with leases on disk, in the same
// namespace LAN, one after the other in one run. It runs only with
// SLIPWAY_BENCH=1 (make bench-dhcp), and writes its table to the log.
func TestBenchDHCPAgainstPeers(t *testing.T) {
	if os.Getenv("SLIPWAY_BENCH") == "" {
		t.Skip("a benchmark: run it with make bench-dhcp")
	}
	requireCommands(t, map[string]string{"perfdhcp": "kea-admin", "kea-dhcp4": "kea-dhcp4-server", "dnsmasq": "dnsmasq-base"})
	seconds := 15
	if s, err := strconv.Atoi(os.Getenv("SLIPWAY_BENCH_SECONDS")); err == nil && s > 0 {
		seconds = s
	}
	peers := []dhcpPeer{{"slipway", startSlipwayPeer}, {"kea", startKeaPeer}, {"dnsmasq", startDnsmasqPeer}}
	// New clients: every DISCOVER is a MAC never seen (Slipway also records
	// a machine for each). Known fleet: 2,000 MACs booting again and again.
	scenarios := []struct{ name, clients string }{{"new clients", "1000000"}, {"known fleet", "2000"}}
	var table strings.Builder
	fmt.Fprintf(&table, "| scenario | server | 4-way exchanges/s | DISCOVER drops | REQUEST drops |\n|---|---|---|---|---|\n")
	var ratios []string
	for _, sc := range scenarios {
		rates := map[string]float64{}
		for _, p := range peers {
			t.Run(sc.name+"/"+p.name, func(t *testing.T) {
				rate, res := benchOne(t, p, sc.clients, seconds)
				rates[p.name] = rate
				fmt.Fprintf(&table, "| %s | %s | %.0f | %d of %d | %d of %d |\n", sc.name, p.name, rate, res.drops["DO"], res.sent["DO"], res.drops["RA"], res.sent["RA"])
			})
		}
		if rates["kea"] > 0 && rates["dnsmasq"] > 0 {
			ratios = append(ratios, fmt.Sprintf("%s: slipway/kea = %.2f, slipway/dnsmasq = %.2f", sc.name, rates["slipway"]/rates["kea"], rates["slipway"]/rates["dnsmasq"]))
		}
	}
	fmt.Fprintf(&table, "\n%s\n(perfdhcp -r 20000 for %ds per run, %d cores shared by server and perfdhcp)\n", strings.Join(ratios, "\n"), seconds, runtime.NumCPU())
	t.Logf("\n%s", table.String())
	if out := os.Getenv("SLIPWAY_BENCH_OUT"); out != "" {
		os.WriteFile(out, []byte(table.String()), 0o644)
	}
}

// benchOne runs one server and one perfdhcp run against it on a fresh LAN.
func benchOne(t *testing.T, p dhcpPeer, clients string, seconds int) (float64, perfdhcpResult) {
	lan := newLAN(t, "10.88.0.1/16")
	client, err := lan.AddHost(context.Background(), "perf", "10.88.0.2/16")
	if err != nil {
		t.Fatal(err)
	}
	stop := p.start(t, lan, t.TempDir())
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+60)*time.Second)
	defer cancel()
	// Ask for far more than any of them answers: the achieved rate is the capacity.
	res := runPerfdhcp(t, ctx, client, "-4", "-l", "eth0", "-r", "20000", "-R", clients,
		"-p", strconv.Itoa(seconds), "-W", "1000000", "10.88.0.1")
	m := achievedRate.FindStringSubmatch(res.output)
	if m == nil {
		t.Fatalf("no rate in perfdhcp's output:\n%s", res.output)
	}
	rate, _ := strconv.ParseFloat(m[1], 64)
	return rate, res
}

func startSlipwayPeer(t *testing.T, lan *testbed.LAN, _ string) func() {
	a := serveReady(t, lan, perfConfig)
	return func() { a.stop(t) }
}

func startKeaPeer(t *testing.T, lan *testbed.LAN, dir string) func() {
	config := fmt.Sprintf(`{"Dhcp4": {
  "interfaces-config": {"interfaces": ["lan0"], "dhcp-socket-type": "raw"},
  "lease-database": {"type": "memfile", "persist": true, "name": %q, "lfc-interval": 0},
  "valid-lifetime": 3600,
  "subnet4": [{"id": 1, "subnet": "10.88.0.0/16", "pools": [{"pool": "10.88.1.1 - 10.88.250.254"}]}],
  "loggers": [{"name": "kea-dhcp4", "severity": "WARN", "output_options": [{"output": "stderr"}]}]
}}`, filepath.Join(dir, "kea-leases4.csv"))
	path := filepath.Join(dir, "kea.json")
	os.WriteFile(path, []byte(config), 0o644)
	cmd := lan.Server.Command(context.Background(), "kea-dhcp4", "-c", path)
	cmd.Env = append(os.Environ(), "KEA_PIDFILE_DIR="+dir, "KEA_LOCKFILE_DIR="+dir)
	return startPeerProcess(t, cmd)
}

func startDnsmasqPeer(t *testing.T, lan *testbed.LAN, dir string) func() {
	cmd := lan.Server.Command(context.Background(), "dnsmasq", "--keep-in-foreground", "--port=0", "--interface=lan0",
		"--bind-interfaces", "--dhcp-range=10.88.1.1,10.88.250.254,1h", "--dhcp-authoritative", "--no-ping",
		"--dhcp-lease-max=1000000", "--dhcp-leasefile="+filepath.Join(dir, "dnsmasq.leases"),
		"--pid-file="+filepath.Join(dir, "dnsmasq.pid"), "--log-facility=-", "--quiet-dhcp")
	return startPeerProcess(t, cmd)
}

func startPeerProcess(t *testing.T, cmd *exec.Cmd) func() {
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	// Children that keep the output pipes open (nginx's workers) must not
	// keep Wait waiting.
	cmd.WaitDelay = 3 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // no readiness probe: give it time to bind
	if cmd.ProcessState != nil {
		t.Fatalf("%s exited: %s", cmd.Path, log.String())
	}
	return func() {
		// SIGTERM first: a master process takes its workers down with it.
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", cmd.Args, log.String())
		}
	}
}
