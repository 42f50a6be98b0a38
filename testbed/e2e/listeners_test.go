//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeListensOnTheLANOnly is the network stance: every socket slipway
// opens is bound to the LAN IP, or (DHCP, which must see broadcasts) to the
// LAN interface; the LAN reaches it; SIGTERM stops it cleanly.
func TestServeListensOnTheLANOnly(t *testing.T) {
	requireCommands(t, map[string]string{"ss": "iproute2", "curl": "curl"})
	lan := newLAN(t, "10.88.0.1/24")
	client, err := lan.AddHost(context.Background(), "cli", "10.88.0.2/24")
	if err != nil {
		t.Fatal(err)
	}
	a := serveReady(t, lan, dhcpConfig)

	out, err := lan.Server.Run(context.Background(), "ss", "-H", "-lntup")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ss -lntup in the server namespace:\n%s", out)
	var sockets int
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 || !strings.Contains(line, "slipway") {
			continue
		}
		sockets++
		local := fields[4]
		onLANIP := strings.HasPrefix(local, "10.88.0.1:")
		onLANInterface := strings.HasSuffix(local, "%lan0:67")
		if !onLANIP && !onLANInterface {
			t.Errorf("slipway listens on %s, which is neither the LAN IP nor the LAN interface:\n%s", local, line)
		}
	}
	for _, want := range []string{"udp", "0.0.0.0%lan0:67", "10.88.0.1:69", "10.88.0.1:8080", "10.88.0.1:1883", "10.88.0.1:8083"} {
		if !strings.Contains(out, want) {
			t.Errorf("ss shows no %s socket", want)
		}
	}
	if sockets < 5 {
		t.Fatalf("found %d slipway sockets; expected DHCP, TFTP, HTTP, MQTT and MQTT over WebSocket", sockets)
	}

	// The only raw socket is the IPv6 router advertisement responder's:
	// ICMPv6 (protocol 58) only. It is bound to lan0 with SO_BINDTODEVICE,
	// which ss does not print for raw sockets; TestRouterSolicitationsAreAnswered
	// shows it answering on the LAN.
	raw, err := lan.Server.Run(context.Background(), "ss", "-H", "-lnwp")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ss -lnwp:\n%s", raw)
	for _, line := range strings.Split(strings.TrimSpace(raw), "\n") {
		if fields := strings.Fields(line); len(fields) >= 4 && strings.Contains(line, "slipway") && fields[3] != "*:58" {
			t.Errorf("slipway has an unexpected raw socket: %s", line)
		}
	}

	// The LAN reaches it; metrics answer.
	if out, err := client.Run(context.Background(), "curl", "-fsS", "--max-time", "5", lanURL+"/metrics"); err != nil || !strings.Contains(out, "slipway_ready 1") {
		t.Fatalf("metrics from the LAN: %v\n%s", err, out)
	}

	a.stop(t)
	if !strings.Contains(a.logs(), "stopped cleanly") {
		t.Errorf("no clean stop in the log:\n%s", a.logs())
	}
	// A clean close checkpoints the WAL into the database file.
	if fi, err := os.Stat(filepath.Join(a.dataDir, "slipway.db-wal")); err == nil && fi.Size() > 0 {
		t.Errorf("WAL left with %d bytes after a clean stop", fi.Size())
	}
}

// TestServeRefusesAnAddressNotOnTheInterface: one clear line naming the field.
func TestServeRefusesAnAddressNotOnTheInterface(t *testing.T) {
	lan := newLAN(t, "10.88.0.1/24")
	a := startServe(t, lan.Server, strings.Replace(dhcpConfig, "10.88.0.1/24", "10.88.0.5/24", 1))
	err := <-a.done
	a.done <- err
	if err == nil {
		t.Fatal("slipway served an address that is not on its interface")
	}
	logs := strings.TrimSpace(a.logs())
	if strings.Count(logs, "\n") != 0 || !strings.HasPrefix(logs, "slipway: lan.address: 10.88.0.5 is not assigned to interface \"lan0\"") {
		t.Fatalf("want one line naming lan.address, got:\n%s", logs)
	}
}
