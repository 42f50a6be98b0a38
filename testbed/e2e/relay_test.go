//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway/testbed"
	"github.com/slipway/slipway/testbed/testkit"
)

const relayConfig = dhcpConfig + `  subnets:
    - subnet: 10.89.0.0/24
      router: 10.89.0.1
      range: {start: 10.89.0.100, end: 10.89.0.199}
      lease_time: 3h
      domain: rack2.example
      reservations:
        - {mac: "02:00:00:00:89:77", ip: 10.89.0.77, hostname: rack2-reserved}
`

// TestRelayedSubnetThroughISCDhcrelay: a rack on its own subnet, behind a
// router running ISC's dhcrelay, gets addresses from that subnet's pool,
// with its router, lease time and reservations, and then reaches the box
// through the router. dhcrelay adds option 82 and drops any reply that
// does not echo it; with -U it also names the link by RFC 3527 link
// selection, and the relay's giaddr is then its LAN address.
func TestRelayedSubnetThroughISCDhcrelay(t *testing.T) {
	requireCommands(t, map[string]string{"dhcrelay": "isc-dhcp-relay", "dhclient": "isc-dhcp-client", "curl": "curl"})
	lan := newLAN(t, "10.88.0.1/24")
	ctx := context.Background()
	router, err := lan.AddHost(ctx, "rtr", "10.88.0.2/24")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lan.Server.Run(ctx, "ip", "route", "add", "10.89.0.0/24", "via", "10.88.0.2"); err != nil {
		t.Fatal(err)
	}
	rack, err := lan.AddRoutedSubnet(ctx, router, "rack", "10.89.0.1/24")
	if err != nil {
		t.Fatal(err)
	}
	a := serveReady(t, lan, relayConfig)

	for _, tc := range []struct {
		name, mac  string
		relayFlags []string
		wantIP     string // "" for any address of the relayed range
		wantRelay  string // the giaddr the box saw
	}{
		{"giaddr", "02:00:00:00:89:01", nil, "", "10.89.0.1"},
		{"link selection", "02:00:00:00:89:02", []string{"-U", "eth0"}, "", "10.88.0.2"},
		{"reservation", "02:00:00:00:89:77", nil, "10.89.0.77", "10.89.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stop := startDhcrelay(t, router, tc.relayFlags...)
			defer stop()
			client := newDHCPClientOn(t, rack, tc.mac)
			got := client.dhclient(t)
			expect(t, "dhclient behind dhcrelay", got, map[string]string{"reason": "BOUND", "mask": "255.255.255.0",
				"router": "10.89.0.1", "domain": "rack2.example", "lease": "10800", "serverid": "10.88.0.1"})
			if tc.wantIP != "" && got["ip"] != tc.wantIP || !strings.HasPrefix(got["ip"], "10.89.0.") {
				t.Fatalf("dhclient behind the relay got %q", got["ip"])
			}
			granted := "mac=" + tc.mac + " ip=" + got["ip"]
			if !strings.Contains(a.logs(), granted) || !strings.Contains(a.logs(), "subnet=10.89.0.0/24 relay="+tc.wantRelay) {
				t.Fatalf("no grant through relay %s logged:\n%s", tc.wantRelay, a.logs())
			}
			// Rebooting, it asks for its address again through the relay
			// (INIT-REBOOT) and keeps it.
			if again := client.dhclient(t); again["ip"] != got["ip"] || again["reason"] != "REBOOT" {
				t.Fatalf("after a reboot: %v, had %s", again, got["ip"])
			}
			// With the address configured, the box answers across the router.
			for _, args := range [][]string{{"addr", "flush", "dev", "eth0"}, {"addr", "add", got["ip"] + "/24", "dev", "eth0"}, {"route", "replace", "default", "via", "10.89.0.1"}} {
				if out, err := rack.Run(ctx, "ip", args...); err != nil {
					t.Fatalf("%v: %s", err, out)
				}
			}
			if out, err := rack.Run(ctx, "curl", "-fsS", "--max-time", "10", lanURL+"/readyz"); err != nil {
				t.Fatalf("the relayed machine cannot reach the box: %v: %s", err, out)
			}
			if n := boundLeases(t, a, tc.mac); n != 1 {
				t.Fatalf("%d bound leases for %s", n, tc.mac)
			}
		})
	}
}

// startDhcrelay runs ISC's dhcrelay on router between its eth1 (the rack's
// subnet) and eth0 (the LAN), forwarding to the box.
func startDhcrelay(t *testing.T, router testbed.Host, flags ...string) (stop func()) {
	t.Helper()
	args := append([]string{"-4", "-d", "-a", "-pf", filepath.Join(t.TempDir(), "dhcrelay.pid"), "-id", "eth1", "-iu", "eth0"}, flags...)
	cmd := router.Command(context.Background(), "dhcrelay", append(args, "10.88.0.1")...)
	out := &testkit.LockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// It prints the interfaces it listens on once it is ready.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "Sending on") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	return func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("dhcrelay said:\n%s", out.String())
		}
	}
}

// newDHCPClientOn is newDHCPClient for a host already made (off the LAN).
func newDHCPClientOn(t *testing.T, h testbed.Host, mac string) dhcpClient {
	t.Helper()
	if out, err := h.Run(context.Background(), "ip", "link", "set", "eth0", "address", mac); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "script"), []byte(clientScript), 0o755); err != nil {
		t.Fatal(err)
	}
	return dhcpClient{host: h, dir: dir}
}

// boundLeases counts mac's bound leases in the API.
func boundLeases(t *testing.T, a *appliance, mac string) int {
	t.Helper()
	out, err := a.host.Run(context.Background(), "curl", "-fsS", "-u", e2eUser+":"+e2ePassword, lanURL+"/api/v1/leases")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Leases []struct{ IP, MAC, State string }
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("leases: %v: %s", err, out)
	}
	n := 0
	for _, l := range list.Leases {
		if l.MAC == mac && l.State == "bound" {
			n++
		}
	}
	return n
}
