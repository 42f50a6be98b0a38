//go:build e2e

package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// A /16, so that perfdhcp's clients cannot exhaust the pool.
const perfConfig = `
lan:
  interface: lan0
  address: 10.88.0.1/16
data_dir: DATA_DIR
http: {port: 8080}
tftp: {root: TFTP_ROOT}
log: {level: warn}
dhcp:
  range: {start: 10.88.1.1, end: 10.88.250.254}
  lease_time: 1h
`

// perfdhcpResult is what a perfdhcp run reports.
type perfdhcpResult struct {
	sent, received, drops map[string]int     // by exchange: DO (DISCOVER-OFFER), RA (REQUEST-ACK)
	avgDelay              map[string]float64 // milliseconds, by exchange
	rate                  float64            // 4-way exchanges a second achieved
	output                string
}

var (
	perfCounter = regexp.MustCompile(`(?m)^\s*(sent packets|received packets|drops|rejected leases):\s*(\d+)`)
	perfDelay   = regexp.MustCompile(`^\s*avg delay:\s*([0-9.]+) ms`)
)

// runPerfdhcp runs ISC perfdhcp from host against the LAN.
func runPerfdhcp(t *testing.T, ctx context.Context, host interface {
	Run(context.Context, string, ...string) (string, error)
}, args ...string) perfdhcpResult {
	t.Helper()
	out, err := host.Run(ctx, "perfdhcp", args...)
	if err != nil && !strings.Contains(out, "sent packets") {
		t.Fatalf("perfdhcp: %v\n%s", err, out)
	}
	res := perfdhcpResult{sent: map[string]int{}, received: map[string]int{}, drops: map[string]int{}, avgDelay: map[string]float64{}, output: out}
	exchange := ""
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.Contains(line, "DISCOVER-OFFER"):
			exchange = "DO"
		case strings.Contains(line, "REQUEST-ACK"):
			exchange = "RA"
		}
		if m := perfDelay.FindStringSubmatch(line); m != nil && exchange != "" {
			res.avgDelay[exchange], _ = strconv.ParseFloat(m[1], 64)
		}
		if m := perfCounter.FindStringSubmatch(line); m != nil && exchange != "" {
			n, _ := strconv.Atoi(m[2])
			switch m[1] {
			case "sent packets":
				res.sent[exchange] = n
			case "received packets":
				res.received[exchange] = n
			case "drops":
				res.drops[exchange] = n
			}
		}
	}
	return res
}

// TestPerfdhcpTenThousandExchanges drives 10,000 full DORA exchanges from
// 10,000 distinct clients at a steady rate below saturation: every request
// is answered, and no address is bound to two clients.
func TestPerfdhcpTenThousandExchanges(t *testing.T) {
	requireCommands(t, map[string]string{"perfdhcp": "kea-admin"})
	lan := newLAN(t, "10.88.0.1/16")
	client, err := lan.AddHost(context.Background(), "perf", "10.88.0.2/16")
	if err != nil {
		t.Fatal(err)
	}
	a := serveReady(t, lan, perfConfig)

	const exchanges, rate = 10000, 250
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	res := runPerfdhcp(t, ctx, client, "-4", "-l", "eth0", "-r", strconv.Itoa(rate), "-R", strconv.Itoa(exchanges),
		"-n", strconv.Itoa(exchanges), "-W", "2000000", "10.88.0.1")
	t.Logf("perfdhcp: %d DORA exchanges at %d/s in %s; sent %v received %v drops %v",
		exchanges, rate, time.Since(start).Round(time.Second), res.sent, res.received, res.drops)
	if res.sent["DO"] < exchanges || res.received["DO"] != res.sent["DO"] || res.received["RA"] != res.sent["RA"] || res.sent["RA"] != res.sent["DO"] {
		t.Fatalf("unanswered requests below saturation:\n%s", res.output)
	}
	if !strings.Contains(res.output, "non unique addresses: 0") || strings.Count(res.output, "rejected leases: 0") != 2 {
		t.Fatalf("perfdhcp saw duplicate or rejected addresses:\n%s", res.output)
	}

	// Check the leases in the database once Slipway has stopped.
	a.stop(t)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(a.dataDir, "slipway.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var bound, distinctMACs, macsWithTwo int
	if err := db.QueryRow(`SELECT count(*), count(DISTINCT mac) FROM leases WHERE state = 'bound'`).Scan(&bound, &distinctMACs); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM (SELECT mac FROM leases WHERE state = 'bound' GROUP BY mac HAVING count(*) > 1)`).Scan(&macsWithTwo); err != nil {
		t.Fatal(err)
	}
	// perfdhcp now and then runs one exchange more than asked, and its
	// random MACs may repeat: a client that comes back renews its own lease.
	// So every ACK is a bound lease of a distinct MAC, give or take repeats.
	acked := res.received["RA"]
	if bound > acked || bound < acked-acked/1000 || distinctMACs != bound || macsWithTwo != 0 {
		t.Fatalf("%d bound leases for %d distinct MACs (%d MACs hold two) after %d ACKs", bound, distinctMACs, macsWithTwo, res.received["RA"])
	}
	fmt.Printf("%d leases bound, one address per client\n", bound)
}
