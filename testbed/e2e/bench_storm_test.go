//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/testkit"
)

// stormConfig: a /16 whose pool holds any storm, discovery without a cap
// (every machine of the storm is new to the box, the hardest case: each
// DISCOVER records a machine), and a profile with a kernel, an initrd and
// a cloud-init template, as a site would have. The caller check stays on:
// each machine speaks from its own leased address.
const stormConfig = lan16Base + `discovery: {max_machines: 0}
profiles:
  storm: {kernel: storm/vmlinuz, initrd: storm/initrd.img, cmdline: "console=ttyS0 ds=nocloud-net;s={{.ServerURL}}/cloud-init/", cloud_init: storm.yaml}
default_profile: storm
`

// TestBenchStorm is the boot storm (package testbed/storm): a site of
// machines (SLIPWAY_STORM_MACHINES, default 10,000) powered on at once
// against Slipway on a namespace LAN, each through DHCP, TFTP, DHCP as
// iPXE, HTTP, cloud-init and every heartbeat, with an MQTT subscriber, the
// console's event stream and the console itself in Chromium open. File sizes: SLIPWAY_STORM_LOADER,
// _KERNEL, _INITRD (bytes); more storm flags in SLIPWAY_STORM_ARGS. The
// report (table, CSV, SVG) goes to SLIPWAY_STORM_OUT (artifacts/storm).
// SLIPWAY_STORM_MEMORY_LIMIT is the server's memory_limit (a small box).
// What the storm saw is checked against what Slipway stored: no machine
// with two addresses, and every committed event published.
// With SLIPWAY_STORM_OUTAGE_AT (seconds), the site's events are bridged
// to an upstream mosquitto that stops that long into the storm and comes
// back SLIPWAY_STORM_OUTAGE_FOR seconds later (default 120): every state
// change must reach its subscriber, in order.
// SLIPWAY_BENCH=1 only (make bench-storm).
func TestBenchStorm(t *testing.T) {
	benchOnly(t, "bench-storm")
	out := os.Getenv("SLIPWAY_STORM_OUT")
	if out == "" {
		out = filepath.Join("..", "..", "artifacts", "storm")
	}
	site := stormSite{machines: envInt("SLIPWAY_STORM_MACHINES", 10000), loader: envInt("SLIPWAY_STORM_LOADER", 1<<20),
		kernel: envInt("SLIPWAY_STORM_KERNEL", 8<<20), initrd: envInt("SLIPWAY_STORM_INITRD", 4<<20), out: out,
		args: strings.Fields(os.Getenv("SLIPWAY_STORM_ARGS"))}
	if at := envInt("SLIPWAY_STORM_OUTAGE_AT", 0); at > 0 {
		site.outage = &stormOutage{at: time.Duration(at) * time.Second, lasts: time.Duration(envInt("SLIPWAY_STORM_OUTAGE_FOR", 120)) * time.Second}
	}
	runStorm(t, site)
}

// A small storm in every run, so that the storm, and the doors under many
// MACs at once, are exercised: 300 machines, small files, with lost DHCP
// packets, slow readers and a ramp; the site's upstream broker goes away
// 3 s into it and comes back 15 s later.
func TestStormOfThreeHundred(t *testing.T) {
	runStorm(t, stormSite{machines: 300, loader: 64 << 10, kernel: 1 << 20, initrd: 1 << 20, out: t.TempDir(),
		args:   []string{"-ramp", "2s", "-loss", "0.02", "-slow", "0.05", "-slow-rate", "4194304"},
		outage: &stormOutage{at: 3 * time.Second, lasts: 15 * time.Second}})
}

// stormSite is one storm's size.
type stormSite struct {
	machines, loader, kernel, initrd int
	out                              string
	args                             []string // more storm flags
	// outage, if set, bridges the site's events to an upstream mosquitto
	// on a host of its own, which stops mid-storm and comes back later.
	outage *stormOutage
}

// stormOutage is when the upstream broker stops (from the storm's start)
// and how long it stays down.
type stormOutage struct{ at, lasts time.Duration }

func runStorm(t *testing.T, site stormSite) {
	requireCommands(t, map[string]string{"mosquitto_sub": "mosquitto-clients", "curl": "curl"})
	n, out := site.machines, site.out
	roomForNeighbours(t, n)
	lan := newLAN(t, "10.88.0.1/16")
	// A subscriber nobody here wrote, on a host of its own, as a NICo
	// consumer would be: it must get every event Slipway commits.
	sub, err := lan.AddHost(context.Background(), "sub", "10.88.0.3/16")
	if err != nil {
		t.Fatal(err)
	}
	config := stormConfig
	var upstream *upstreamWatch
	if site.outage != nil {
		upstream = watchUpstream(t, sub)
		config += fmt.Sprintf("bridge: {url: %q, site: storm}\n", upstream.broker.URL())
	}
	if limit := os.Getenv("SLIPWAY_STORM_MEMORY_LIMIT"); limit != "" {
		config += "memory_limit: " + limit + "\n" // the server's, not the storm's own
	}
	a := prepareServe(t, lan.Server, config, func(dataDir string) {
		testkit.WriteRandomFile(t, filepath.Join(dataDir, "assets", "storm", "vmlinuz"), site.kernel)
		testkit.WriteRandomFile(t, filepath.Join(dataDir, "assets", "storm", "initrd.img"), site.initrd)
		os.MkdirAll(filepath.Join(dataDir, "templates"), 0o755)
		if err := os.WriteFile(filepath.Join(dataDir, "templates", "storm.yaml"), []byte(testbed.DemoUserData), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	testkit.WriteRandomFile(t, filepath.Join(a.tftpRoot, "ipxe.efi"), site.loader)
	waitReady(t, a)
	client, err := lan.AddHost(context.Background(), "storm", "10.88.0.2/16")
	if err != nil {
		t.Fatal(err)
	}
	mosquitto := countLines(t, sub.Command(context.Background(), "mosquitto_sub", "-h", "10.88.0.1", "-q", "1", "-t", "NICO/v1/#", "-t", "slipway/v1/#", "-F", "%t"))
	bin := filepath.Join(t.TempDir(), "storm")
	if b, err := exec.Command("go", "build", "-o", bin, "../cmd/storm").CombinedOutput(); err != nil {
		t.Fatalf("building the storm: %v\n%s", err, b)
	}
	args := []string{"-server", "10.88.0.1", "-machines", strconv.Itoa(n), "-http-port", "8080",
		"-api-user", e2eUser, "-api-password", e2ePassword, "-server-pid", strconv.Itoa(a.cmd.Process.Pid), "-out", out,
		"-pool", lan16PoolStart + "-" + lan16PoolEnd}
	// The console open in a browser throughout, as an operator keeps it.
	if _, err := os.Stat(chromium); err == nil {
		args = append(args, "-browser", chromium)
	} else if os.Getenv("CI") == "true" {
		missingPeer(t, "Debian's chromium is missing: apt-get install chromium (make e2e-deps installs it)")
	} else {
		t.Log("the storm runs without the console in a browser: Debian's chromium is missing (make e2e-deps installs it)")
	}
	args = append(args, site.args...)
	cmd := client.Command(context.Background(), bin, args...)
	var table strings.Builder
	cmd.Stdout = &table
	progress, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var outage <-chan time.Time // when the upstream stopped
	if site.outage != nil {
		outage = upstream.stopAfter(site.outage.at)
	}
	go func() {
		sc := bufio.NewScanner(progress)
		for sc.Scan() {
			t.Log(sc.Text())
		}
	}()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the storm: %v\n%s", err, table.String())
	}
	t.Logf("storm %s (report in %s):\n%s", strings.Join(args, " "), out, table.String())

	t.Logf("mosquitto_sub got %d messages", mosquitto.Load())
	if metrics, err := a.host.Run(context.Background(), "curl", "-fsS", lanURL+"/metrics"); err == nil {
		t.Logf("Slipway's counters after the storm:\n%s", metricLines(metrics, "slipway_dhcp_", "slipway_tftp_transfers", "slipway_node_requests_refused"))
	}
	if site.outage != nil {
		upstream.comeBack(t, a, <-outage, site.outage.lasts)
	}
	a.stop(t)
	checkStormStore(t, filepath.Join(a.dataDir, "slipway.db"), out, mosquitto.Load())
	if site.outage != nil {
		upstream.check(t, filepath.Join(a.dataDir, "slipway.db"))
	}
}

// countLines runs cmd until the test ends and counts the lines it prints.
func countLines(t *testing.T, cmd *exec.Cmd) *atomic.Int64 {
	var lines atomic.Int64
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines.Add(1)
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	time.Sleep(500 * time.Millisecond) // subscribed before the storm
	return &lines
}

// checkStormStore compares the store with what the storm saw: no MAC
// holds two bound leases, and mosquitto_sub got every committed event.
func checkStormStore(t *testing.T, path, out string, mosquitto int64) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var twice, machines, committed, unpublished int
	for _, q := range []struct {
		sql  string
		into *int
	}{
		{`SELECT count(*) FROM (SELECT mac FROM leases WHERE state = 'bound' GROUP BY mac HAVING count(*) > 1)`, &twice},
		{`SELECT count(*) FROM machines`, &machines},
		{`SELECT count(*) FROM outbox`, &committed},
		{`SELECT count(*) FROM outbox WHERE id > (SELECT last_id FROM outbox_cursors WHERE consumer = 'mqtt')`, &unpublished},
	} {
		if err := db.QueryRow(q.sql).Scan(q.into); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	summary, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		MQTTMessages, StreamEvents, Failed, DuplicateAddresses int
		Console                                                *struct {
			EventsHandled, Overflows int
			AllReadyShownAfter       time.Duration
		}
	}
	if err := json.Unmarshal(summary, &got); err != nil {
		t.Fatal(err)
	}
	t.Logf("store: %d machines, %d events committed (%d left unpublished), %d MACs with two bound leases; the subscriber got %d, the event stream %d",
		machines, committed, unpublished, twice, got.MQTTMessages, got.StreamEvents)
	if twice != 0 || got.DuplicateAddresses != 0 {
		t.Errorf("duplicate leases: %d MACs with two, %d addresses given twice", twice, got.DuplicateAddresses)
	}
	// mosquitto_sub is the consumer that counts: the storm's own
	// subscriber shares the storm's CPU with ten thousand machines and
	// may fall past its queue (mqtt.max_queued_per_client), where the
	// broker drops for it, as documented.
	if unpublished != 0 || mosquitto != int64(committed) {
		t.Errorf("events: %d committed, %d unpublished, mosquitto_sub got %d (the storm's subscriber %d)", committed, unpublished, mosquitto, got.MQTTMessages)
	}
	// The console in the browser saw the storm end, and every event its
	// stream was sent unless the server said it dropped some for it.
	if c := got.Console; c != nil && (c.AllReadyShownAfter < 0 || c.Overflows == 0 && c.EventsHandled != got.StreamEvents) {
		t.Errorf("the console in Chromium: every machine ready shown after %s (negative: never); %d events handled, %d overflows, the storm's stream got %d",
			c.AllReadyShownAfter, c.EventsHandled, c.Overflows, got.StreamEvents)
	}
	if got.Failed != 0 {
		t.Errorf("%d machines failed (see %s/machines.csv)", got.Failed, out)
	}
}

// roomForNeighbours raises the kernel's neighbour table limits, which are
// the whole machine's (not a namespace's), for a LAN of n hosts: past the
// default 1,024 entries the server's replies to new hosts are dropped
// ("neighbour table overflow"). An appliance on a LAN this size needs the
// same (docs/netboot.md). They are put back after.
func roomForNeighbours(t *testing.T, n int) {
	for i, name := range []string{"gc_thresh1", "gc_thresh2", "gc_thresh3"} {
		path := "/proc/sys/net/ipv4/neigh/default/" + name
		old, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want := (n + 1024) * (i + 1)
		if cur, _ := strconv.Atoi(strings.TrimSpace(string(old))); cur >= want {
			continue
		}
		if err := os.WriteFile(path, []byte(strconv.Itoa(want)), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.WriteFile(path, old, 0o644) })
	}
}
