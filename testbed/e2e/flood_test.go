//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway/testbed"
	_ "modernc.org/sqlite"
)

// lan16Base starts the configurations of a /16 LAN whose pool (about
// 64,000 addresses) a flood or a storm cannot exhaust; more dhcp settings
// may follow it.
const lan16Base = `
lan: {interface: lan0, address: 10.88.0.1/16}
data_dir: DATA_DIR
http: {port: 8080}
tftp: {root: TFTP_ROOT}
log: {level: warn}
users:
` + e2eUserYAML + `
dhcp:
  range: {start: ` + lan16PoolStart + `, end: ` + lan16PoolEnd + `}
`

// The pool of lan16Base.
const lan16PoolStart, lan16PoolEnd = "10.88.1.1", "10.88.250.254"

// floodConfig: a /16, so that the DHCP flood cannot starve the pool (that
// is DHCP's own weakness, which reservations answer), and a discovery cap
// the flood reaches.
const floodConfig = lan16Base + `  reservations: [{mac: "02:00:00:00:0f:01", ip: 10.88.0.20}]
discovery: {max_machines: 2000}
profiles:
  debian: {kernel: debian/vmlinuz, cmdline: "console=ttyS0"}
default_profile: debian
`

// A host on the LAN floods each door in turn, as hard as one host can;
// after each the process's resident memory stays within a bound, and a
// well-behaved client on another host is still served, while the flood's
// connections are still held where it holds them: Debian's dhclient gets
// its address, tftp-hpa its file, curl the health probe, mosquitto_sub a
// retained state. The figures are logged.
func TestFloodsLeaveServiceStanding(t *testing.T) {
	requireCommands(t, map[string]string{"perfdhcp": "kea-admin", "dhclient": "isc-dhcp-client", "tftp": "tftp-hpa",
		"curl": "curl", "mosquitto_sub": "mosquitto-clients", "bash": "bash"})
	lan := newLAN(t, "10.88.0.1/16")
	a := prepareServe(t, lan.Server, floodConfig, func(string) {})
	if err := os.WriteFile(filepath.Join(a.tftpRoot, "ipxe.efi"), bytes.Repeat([]byte("x"), 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	waitReady(t, a)
	flood, err := lan.AddHost(context.Background(), "flood", "10.88.0.66/16")
	if err != nil {
		t.Fatal(err)
	}
	good := newDHCPClient(t, lan, "good", "02:00:00:00:0f:01")
	if out, err := good.host.Run(context.Background(), "ip", "addr", "add", "10.88.0.20/16", "dev", "eth0"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	rss := func() int {
		kb, err := testbed.ResidentKiB(a.cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		return kb >> 10
	}
	baseline := rss()
	t.Logf("resident memory at start: %d MiB", baseline)

	floods := []struct {
		door   string
		flood  []string // run on the flood host, in bash
		served func() error
	}{
		{"DHCP: 100,000 netbooting MACs at 4,000/s", []string{"perfdhcp", "-4", "-l", "eth0", "-r", "4000", "-R", "100000", "-p", "8",
			"-o", "60,505845436c69656e743a417263683a30303030373a554e44493a303033303136", "10.88.0.1"},
			func() error {
				got := good.dhclient(t)
				if got["ip"] != "10.88.0.20" {
					return fmt.Errorf("dhclient got %v", got)
				}
				return nil
			}},
		{"TFTP: 400 fetches of 4 MiB at once", []string{"bash", "-c", `for i in $(seq 400); do tftp 10.88.0.1 -m binary -c get ipxe.efi /dev/null & done; wait`},
			func() error {
				_, err := good.host.Run(context.Background(), "tftp", "10.88.0.1", "-m", "binary", "-c", "get", "ipxe.efi", "/dev/null")
				return err
			}},
		{"HTTP: 600 half-sent requests held open, and 3,000 quick ones", []string{"bash", "-c", `
for i in $(seq 600); do (exec 3<>/dev/tcp/10.88.0.1/8080 && printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n' >&3 && sleep 20) >/dev/null 2>&1 & done
seq 3000 | xargs -P 64 -I{} curl -s -o /dev/null --max-time 5 http://10.88.0.1:8080/healthz; sleep 1`},
			func() error {
				_, err := good.host.Run(context.Background(), "curl", "-fsS", "--max-time", "5", lanURL+"/healthz")
				return err
			}},
		{"MQTT: 1,500 CONNECTs claiming 256 MiB each", []string{"bash", "-c", `
for i in $(seq 1500); do (exec 3<>/dev/tcp/10.88.0.1/1883 && printf '\x10\xff\xff\xff\x7f' >&3 && sleep 20) >/dev/null 2>&1 & done; sleep 3`},
			func() error {
				_, err := good.host.Run(context.Background(), "mosquitto_sub", "-h", "10.88.0.1", "-t", "NICO/#", "-C", "1", "-W", "10")
				return err
			}},
		{"heartbeats: 3,000 forged for other MACs", []string{"bash", "-c",
			`seq 3000 | xargs -P 64 -I{} sh -c 'curl -s -o /dev/null -H "Content-Type: application/json" -d "{\"mac\":\"02:00:00:$(printf %02x $(({} / 65536 % 256))):$(printf %02x $(({} / 256 % 256))):$(printf %02x $(({} % 256)))\",\"stage\":\"install\",\"phase\":\"failed\"}" http://10.88.0.1:8080/heartbeat'`},
			func() error {
				_, err := good.host.Run(context.Background(), "curl", "-fsS", "--max-time", "5", lanURL+"/readyz")
				return err
			}},
	}
	peak := baseline
	for _, f := range floods {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		out, err := flood.Run(ctx, f.flood[0], f.flood[1:]...)
		cancel()
		if err != nil && !strings.Contains(out, "sent packets") && ctx.Err() != nil {
			t.Fatalf("%s: the flood did not finish: %v", f.door, err)
		}
		after := rss()
		peak = max(peak, after)
		if err := f.served(); err != nil {
			t.Errorf("%s: a well-behaved client was not served after it: %v", f.door, err)
		}
		t.Logf("%-62s %5.1fs   resident %4d MiB (%+d from start)", f.door, time.Since(start).Seconds(), after, after-baseline)
	}
	// Bounded: what the floods leave is what their bounds allow (2,000
	// discovered machines, tables of bounded size), not what they sent.
	if peak-baseline > 160 {
		t.Errorf("resident memory grew by %d MiB under the floods (from %d MiB)", peak-baseline, baseline)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(a.dataDir, "slipway.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var discovered, heartbeats int
	db.QueryRow(`SELECT count(*) FROM machines WHERE source = 'discovered'`).Scan(&discovered)
	db.QueryRow(`SELECT count(*) FROM stage_events`).Scan(&heartbeats)
	t.Logf("after the floods: %d discovered machines (discovery.max_machines 2000), %d heartbeats kept", discovered, heartbeats)
	if discovered > 2000+256 || discovered < 1000 {
		t.Errorf("%d discovered machines: the cap is 2000 (a commit's worth over, at most)", discovered)
	}
	if heartbeats != 0 {
		t.Errorf("%d forged heartbeats were kept", heartbeats)
	}
	if !strings.Contains(a.logs(), "discovery.max_machines") {
		t.Errorf("the discovery cap was reached without a word in the log")
	}
}
