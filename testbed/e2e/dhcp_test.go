//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway/testbed"
)

const dhcpConfig = lanBase + `
dhcp:
  mode: full
  range: {start: 10.88.0.100, end: 10.88.0.199}
  lease_time: 2h
  router: 10.88.0.1
  dns: [10.88.0.1]
  domain: lab.example
  ntp: [10.88.0.1]
  reservations:
    - {mac: "02:00:00:00:00:77", ip: 10.88.0.77, hostname: reserved-node}
`

// clientScript records what a DHCP client was told, one KEY=value a line,
// instead of configuring anything: the test reads it back.
const clientScript = `#!/bin/sh
out="$(dirname "$0")/result"
case "$1" in
  bound|renew) # udhcpc
    echo "reason=$1 ip=$ip mask=$mask subnet=$subnet router=$router dns=$dns domain=$domain hostname=$hostname lease=$lease ntpsrv=$ntpsrv serverid=$serverid" >> "$out" ;;
esac
case "$reason" in
  BOUND|REBOOT|RENEW) # dhclient
    echo "reason=$reason ip=$new_ip_address mask=$new_subnet_mask router=$new_routers dns=$new_domain_name_servers domain=$new_domain_name hostname=$new_host_name lease=$new_dhcp_lease_time ntpsrv=$new_ntp_servers serverid=$new_dhcp_server_identifier" >> "$out" ;;
esac
exit 0
`

// dhcpClient is a namespace with a MAC and a directory for its client's files.
type dhcpClient struct {
	host testbed.Host
	dir  string
}

func newDHCPClient(t *testing.T, lan *testbed.LAN, name, mac string) dhcpClient {
	t.Helper()
	h, err := lan.AddHost(context.Background(), name, "")
	if err != nil {
		t.Fatal(err)
	}
	return newDHCPClientOn(t, h, mac)
}

// lastResult is the last line the client's script recorded, as a map.
func (c dhcpClient) lastResult(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.dir, "result"))
	if err != nil {
		t.Fatalf("the client recorded no lease: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	out := map[string]string{}
	for _, kv := range strings.Fields(lines[len(lines)-1]) {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

// dhclient runs ISC dhclient once on c until it is bound, then stops it
// without releasing, as a machine that reboots would.
func (c dhcpClient) dhclient(t *testing.T) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pid := filepath.Join(c.dir, "dhclient.pid")
	out, err := c.host.Run(ctx, "dhclient", "-1", "-v", "-lf", filepath.Join(c.dir, "leases"), "-pf", pid, "-sf", filepath.Join(c.dir, "script"), "eth0")
	if err != nil {
		t.Fatalf("dhclient: %v\n%s", err, out)
	}
	if data, err := os.ReadFile(pid); err == nil {
		c.host.Run(context.Background(), "kill", strings.TrimSpace(string(data)))
	}
	return c.lastResult(t)
}

// udhcpc runs busybox's udhcpc once on c, with args added (-V PXEClient…
// to say it netboots).
func (c dhcpClient) udhcpc(t *testing.T, args ...string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := c.host.Run(ctx, "udhcpc", append([]string{"-i", "eth0", "-n", "-q", "-f", "-t", "5", "-s", filepath.Join(c.dir, "script"), "-O", "ntpsrv", "-O", "hostname"}, args...)...)
	if err != nil {
		t.Fatalf("udhcpc: %v\n%s", err, out)
	}
	return c.lastResult(t)
}

func expect(t *testing.T, client string, got map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %q, want %q (all: %v)", client, k, got[k], v, got)
		}
	}
}

func TestRealDHCPClientsGetLeases(t *testing.T) {
	requireCommands(t, map[string]string{"dhclient": "isc-dhcp-client", "udhcpc": "udhcpc", "curl": "curl"})
	lan := newLAN(t, "10.88.0.1/24")
	a := serveReady(t, lan, dhcpConfig)

	isc := newDHCPClient(t, lan, "isc", "02:00:00:00:00:01")
	got := isc.dhclient(t)
	expect(t, "dhclient", got, map[string]string{"reason": "BOUND", "mask": "255.255.255.0", "router": "10.88.0.1",
		"dns": "10.88.0.1", "domain": "lab.example", "lease": "7200", "serverid": "10.88.0.1", "ntpsrv": "10.88.0.1"})
	first := got["ip"]
	if !strings.HasPrefix(first, "10.88.0.1") || first == "10.88.0.1" {
		t.Fatalf("dhclient got %q, outside the pool", first)
	}

	busybox := newDHCPClient(t, lan, "bb", "02:00:00:00:00:02")
	got = busybox.udhcpc(t)
	expect(t, "udhcpc", got, map[string]string{"reason": "bound", "subnet": "255.255.255.0", "router": "10.88.0.1",
		"dns": "10.88.0.1", "domain": "lab.example", "lease": "7200", "serverid": "10.88.0.1", "ntpsrv": "10.88.0.1"})
	if got["ip"] == first || got["ip"] == "" {
		t.Fatalf("udhcpc got %q; dhclient holds %q", got["ip"], first)
	}

	reserved := newDHCPClient(t, lan, "res", "02:00:00:00:00:77")
	expect(t, "reserved udhcpc", reserved.udhcpc(t), map[string]string{"ip": "10.88.0.77", "hostname": "reserved-node"})

	// Restart Slipway: dhclient, rebooting with its lease file, keeps its address.
	a.stop(t)
	a.launch(t)
	waitReady(t, a)
	again := isc.dhclient(t)
	if again["ip"] != first {
		t.Fatalf("after a restart dhclient got %q, it had %q", again["ip"], first)
	}
	// Its lease was written moments ago (well inside dhcp.cache_threshold):
	// the reboot is answered from the cache, for the time the lease has
	// left, and dhclient takes it.
	if left, err := strconv.Atoi(again["lease"]); err != nil || left >= 7200 || left < 7000 {
		t.Errorf("dhclient rebooting a moment later was given %q s, want what is left of its 7200 s lease", again["lease"])
	}
	if metrics, err := lan.Server.Run(context.Background(), "curl", "-fsS", "-u", e2eUser+":"+e2ePassword, lanURL+"/metrics"); err != nil || !strings.Contains(metrics, "slipway_dhcp_leases_cached_total 1\n") {
		t.Errorf("after one answer from the lease cache, /metrics (%v):\n%s", err, metricLines(metrics, "slipway_dhcp_leases_cached"))
	}

	// A dhclient that remembers another address asks for it (INIT-REBOOT):
	// NAKed, as RFC 2131 §4.3.2 says, it starts over and keeps its own.
	// One MAC, one bound lease.
	leaseFile := filepath.Join(isc.dir, "leases")
	remembered, err := os.ReadFile(leaseFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(leaseFile, []byte(strings.ReplaceAll(string(remembered), "fixed-address "+first+";", "fixed-address 10.88.0.180;")), 0o644); err != nil {
		t.Fatal(err)
	}
	if again := isc.dhclient(t); again["ip"] != first {
		t.Errorf("dhclient remembering 10.88.0.180 ended with %q, want its lease %q", again["ip"], first)
	}
	if n := boundLeases(t, a, "02:00:00:00:00:01"); n != 1 {
		t.Errorf("%d bound leases for dhclient's MAC", n)
	}

	// The leases are in the API's lease list; plain DHCP clients (not
	// netbooting firmware) are not made machines.
	out, err := lan.Server.Run(context.Background(), "curl", "-fsS", "-u", e2eUser+":"+e2ePassword, lanURL+"/api/v1/leases")
	if err != nil {
		t.Fatal(err)
	}
	for _, mac := range []string{"02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:77"} {
		if !strings.Contains(out, fmt.Sprintf("%q", mac)) {
			t.Errorf("%s's lease is not listed: %s", mac, out)
		}
	}
	if out, err := lan.Server.Run(context.Background(), "curl", "-fsS", "-u", e2eUser+":"+e2ePassword, lanURL+"/api/v1/machines"); err != nil || strings.Contains(out, "mac-0200000000") {
		t.Errorf("plain DHCP clients were made machines (%v): %s", err, out)
	}
}
